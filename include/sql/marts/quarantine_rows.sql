-- Landing lines the run could not read (CONTRACT 2), with their file, line and every reason.
-- The published table is replaced file by file, so reloading a file never duplicates its rows.
with

stg_credits as (
    select * from staging.stg_imagineone__credits
),

stg_client_rules as (
    select * from staging.stg_imagineone__client_rules
),

stg_transactions as (
    select * from staging.stg_imaginepay__transactions
    where file_date <= getvariable('as_of_date')
),

rejected as (
    select
        source_file,
        line_number,
        raw_line,
        dq_error
    from stg_credits
    where dq_error is not null
    union all
    select
        source_file,
        line_number,
        raw_line,
        dq_error
    from stg_client_rules
    where dq_error is not null
    union all
    select
        source_file,
        line_number,
        raw_line,
        dq_error
    from stg_transactions
    where dq_error is not null
),

final as (
    select
        source_file,
        line_number,
        -- A line that cannot be typed arrives marked (pipe_feed.readable): kept without the mark.
        mask_card_numbers(unmarked(raw_line)) as raw_line,
        dq_error as error
    from rejected
)

select * from final
