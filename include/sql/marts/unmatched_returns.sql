-- Refund rows of D's payment file whose refund_id we never sent: recorded and reported, never
-- posted (CONTRACT 5).
with

payments_matched as (
    select * from intermediate.int_payments_matched_to_refunds
    where outcome = 'UNMATCHED'
),

final as (
    select
        getvariable('as_of_date') as as_of_date,
        source_file,
        line_number,
        payment_id,
        client_id,
        account_id,
        txn_id,
        refund_id,
        payment_amount,
        status,
        response_code,
        response_message,
        processed_date
    from payments_matched
)

select * from final
