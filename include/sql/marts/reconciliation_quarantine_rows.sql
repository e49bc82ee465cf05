-- Lines of D's payment file that could not be read (CONTRACT 2 applies to every input file).
with

stg_payments as (
    select * from staging.stg_imaginepay__payments
    where dq_error is not null
),

final as (
    select
        source_file,
        line_number,
        -- A line that cannot be typed arrives marked (pipe_feed.readable): kept without the mark.
        mask_card_numbers(unmarked(raw_line)) as raw_line,
        dq_error as error
    from stg_payments
)

select * from final
