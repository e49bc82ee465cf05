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
        -- A line that is not UTF-8 arrives marked (landing.readable): kept without the mark.
        mask_card_numbers(ltrim(raw_line, chr(1))) as raw_line,
        dq_error as error
    from stg_payments
)

select * from final
