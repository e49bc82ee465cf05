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

renamed as (
    select
        source_file,
        line_number,
        raw_line,
        len(parsed_fields) as field_count,
        field_text(parsed_fields, 1) as credit_id,
        field_text(parsed_fields, 2) as client_id,
        field_text(parsed_fields, 3) as account_id,
        field_text(parsed_fields, 4) as credit_amount_text,
        field_text(parsed_fields, 5) as credit_date_text
    from split
),

typed as (
    select
        *,
        money_value(credit_amount_text) as credit_amount,
        iso_date_value(credit_date_text) as credit_date,
        count(credit_id) over (partition by credit_id) as rows_with_credit_id
    from renamed
),

final as (
    select
        source_file,
        line_number,
        raw_line,
        credit_id,
        client_id,
        account_id,
        credit_amount,
        credit_date,
        -- A line of the wrong shape gets that one reason: its fields mean nothing.
        case
            when field_count is null then 'line is not valid CSV (broken quoting)'
            when field_count <> 5 then 'expected 5 fields, found ' || field_count
            else joined_errors([
                case when credit_id is null then 'credit_id is empty' end,
                case
                    when rows_with_credit_id > 1
                        then
                            'credit_id ' || credit_id || ' appears on '
                            || rows_with_credit_id || ' lines of this file'
                end,
                money_error('credit_amount', credit_amount_text),
                iso_date_error('credit_date', credit_date_text),
            ])
        end as dq_error
    from typed
)

select * from final
