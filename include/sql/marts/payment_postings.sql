-- The postings of D for ImagineOne (CONTRACT 5): every APPROVED ordinary payment of D's file and
-- every APPROVED refund that matched what we sent, as negative payments. A payment already
-- posted on another date is never posted again, nor a refund (to_post: its first approval).
with

stg_payments as (
    select * from staging.stg_imaginepay__payments
    where dq_error is null
),

payments_matched as (
    select * from intermediate.int_payments_matched_to_refunds
),

posted_before as (
    select payment_id from main.payment_postings
    where as_of_date <> getvariable('as_of_date')
),

ordinary_payments as (
    select
        payment_id,
        client_id,
        account_id,
        txn_id,
        refund_id,
        payment_amount,
        processed_date
    from stg_payments
    where refund_id is null and status = 'APPROVED'
),

matched_refunds as (
    select
        payment_id,
        client_id,
        account_id,
        txn_id,
        refund_id,
        payment_amount,
        processed_date
    from payments_matched
    where to_post
),

final as (
    select
        getvariable('as_of_date') as as_of_date,
        postings.*
    from (
        select * from ordinary_payments
        union all
        select * from matched_refunds
    ) as postings
    anti join posted_before
        on postings.payment_id = posted_before.payment_id
)

select * from final
