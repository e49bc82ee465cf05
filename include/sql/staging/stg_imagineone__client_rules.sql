-- ImagineOne's per-client settings, typed. A client_id on two lines is ambiguous, so both
-- lines are quarantined and the client counts as not enrolled until the file is fixed.
with

landing_client_rules as (
    select * from landing.imagineone__client_rules
),

-- How many columns each file's header has: 4, or 5 with the optional refund_deadline_days.
landing_files as (
    select
        source_file,
        header_fields
    from landing.files
    where file_kind = 'client_rules'
),

split as (
    select
        landing_client_rules.source_file,
        landing_client_rules.line_number,
        landing_client_rules.raw_line,
        csv_fields(landing_client_rules.raw_line) as parsed_fields,
        coalesce(landing_files.header_fields, 4) as header_fields
    from landing_client_rules
    left join landing_files
        on landing_client_rules.source_file = landing_files.source_file
),

renamed as materialized (
    select
        source_file,
        line_number,
        raw_line,
        header_fields,
        len(parsed_fields) as field_count,
        id_text(parsed_fields) as client_id,
        lower(field_text(parsed_fields, 2)) as auto_refunds_enabled_text,
        field_text(parsed_fields, 3) as min_balance_threshold_text,
        field_text(parsed_fields, 4) as refund_window_days_text,
        -- Null in a file without the column (a list read past its end is null).
        field_text(parsed_fields, 5) as refund_deadline_days_text
    from split
),

-- Ids on more than one line of one file: every such line is ambiguous.
duplicated_ids as (
    select
        source_file,
        client_id,
        count(*) as rows_with_client_id
    from renamed
    where client_id is not null
    group by source_file, client_id
    having count(*) > 1
),

typed as (
    select
        renamed.*,
        duplicated_ids.rows_with_client_id,
        case renamed.auto_refunds_enabled_text
            when 'true' then true
            when 'false' then false
        end as auto_refunds_enabled,
        money_value(renamed.min_balance_threshold_text) as min_balance_threshold,
        case
            when regexp_full_match(renamed.refund_window_days_text, '[0-9]{1,6}')
                then renamed.refund_window_days_text::integer
        end as refund_window_days,
        case
            when regexp_full_match(renamed.refund_deadline_days_text, '[0-9]{1,6}')
                then renamed.refund_deadline_days_text::integer
        end as refund_deadline_days
    from renamed
    left join duplicated_ids
        on
            renamed.source_file = duplicated_ids.source_file
            and renamed.client_id = duplicated_ids.client_id
),

-- Read by the macro quarantine_masked(checked) below, a use sqlfluff does not see.
checked as (  -- noqa: ST03
    select
        source_file,
        line_number,
        raw_line,
        client_id,
        auto_refunds_enabled,
        min_balance_threshold,
        refund_window_days,
        refund_deadline_days,
        coalesce(
            line_shape_error(raw_line, field_count, header_fields),
            -- concat_ws skips the checks that passed (null).
            nullif(concat_ws(
                '; ',
                case when client_id is null then 'client_id is empty' end,
                case
                    when rows_with_client_id > 1
                        then
                            'client_id ' || client_id || ' appears on '
                            || rows_with_client_id || ' lines of this file'
                end,
                case
                    when auto_refunds_enabled is null
                        then
                            'auto_refunds_enabled must be true or false, found '
                            || coalesce(auto_refunds_enabled_text, 'nothing')
                end,
                case
                    when min_balance_threshold_text is not null
                        then money_error('min_balance_threshold', min_balance_threshold_text)
                end,
                case
                    when refund_window_days_text is not null and refund_window_days is null
                        then
                            'refund_window_days is not a whole number of days: '
                            || refund_window_days_text
                end,
                case
                    when refund_deadline_days_text is not null and refund_deadline_days is null
                        then
                            'refund_deadline_days is not a whole number of days: '
                            || refund_deadline_days_text
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
