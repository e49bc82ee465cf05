-- Each answer of D's payment file to a refund we sent, on its first line in the file, and whether
-- D acted on it (int_payments_matched_to_refunds, acts); publish replaces D's rows of
-- main.payment_answers with these, in the transaction that raises D's exceptions, so that the
-- answers D acted on and the exceptions D raised are committed together.
with

payments_matched as (
    select * from intermediate.int_payments_matched_to_refunds
    where outcome <> 'UNMATCHED' and answer_line_rank = 1
),

final as (
    select
        getvariable('as_of_date') as as_of_date,
        refund_id,
        status,
        payment_amount,
        response_code,
        outcome,
        source_file,
        line_number,
        payment_id,
        acts as acted
    from payments_matched
)

select * from final
