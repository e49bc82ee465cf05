-- The credit balance snapshot of the run date D, one row per landing line, typed.
-- dq_error says why a line cannot be used; such lines are quarantined, never refunded.
with

landing_credits as (
    select * from landing.imagineone__credits
    where file_date = getvariable('as_of_date')
),

split as (
    select
        source_file,
        line_number,
        raw_line,
        csv_fields(raw_line) as parsed_fields
    from landing_credits
),

renamed as materialized (
    select
        source_file,
        line_number,
        raw_line,
        len(parsed_fields) as field_count,
        id_text(parsed_fields) as credit_id,
        field_text(parsed_fields, 2) as client_id,
        field_text(parsed_fields, 3) as account_id,
        field_text(parsed_fields, 4) as credit_amount_text,
        field_text(parsed_fields, 5) as credit_date_text
    from split
),

-- Ids on more than one line of one file: every such line is ambiguous.
duplicated_ids as (
    select
        source_file,
        credit_id,
        count(*) as rows_with_credit_id
    from renamed
    where credit_id is not null
    group by source_file, credit_id
    having count(*) > 1
),

typed as (
    select
        renamed.*,
        duplicated_ids.rows_with_credit_id,
        money_value(renamed.credit_amount_text) as credit_amount,
        iso_date_value(renamed.credit_date_text) as credit_date
    from renamed
    left join duplicated_ids
        on
            renamed.source_file = duplicated_ids.source_file
            and renamed.credit_id = duplicated_ids.credit_id
),

-- Read by the macro quarantine_masked(checked) below, a use sqlfluff does not see.
checked as (  -- noqa: ST03
    select
        source_file,
        line_number,
        raw_line,
        credit_id,
        client_id,
        account_id,
        credit_amount,
        credit_date,
        coalesce(
            line_shape_error(raw_line, field_count, 5),
            -- concat_ws skips the checks that passed (null).
            nullif(concat_ws(
                '; ',
                case when credit_id is null then 'credit_id is empty' end,
                case
                    when rows_with_credit_id > 1
                        then
                            'credit_id ' || credit_id || ' appears on '
                            || rows_with_credit_id || ' lines of this file'
                end,
                -- The error texts are built only for the values that failed to read.
                case
                    when credit_amount is null
                        then money_error('credit_amount', credit_amount_text)
                end,
                case
                    when credit_date is null
                        then iso_date_error('credit_date', credit_date_text)
                end
            ), '')
        ) as dq_error
    from typed
),

-- The line kept on the lines that are quarantined, it and the error masked (CONTRACT 7).
final as (
    select * from quarantine_masked(checked)
)

select * from final
