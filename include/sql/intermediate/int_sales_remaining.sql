-- remaining(t) (CONTRACT 3) of every sale a credit of D could be refunded against: a settled
-- sale dated on or before D. Which credits share its client and account is for
-- int_credit_candidates to join: a semi-join to the credits' accounts here too only probed every
-- sale once more (docs/design.md, "remaining(t) and the candidates"). remaining(t) is its
-- amount, less the processor's settled and pending refunds against it, less the refunds this
-- system requested against it in the runs of other dates and that were not declined. A refund
-- seen both ways (the processor's merchant_reference is our refund_id) counts once, at the
-- processor's amount.
with

-- Read twice (sales, then refunds), each time only the columns that use needs: held whole, the
-- known transactions spilled to disk at the benchmark's larger size (docs/design.md).
transactions as not materialized (
    select * from intermediate.int_imaginepay__transactions_known_at_date
),

refund_ledger as (
    select * from main.refund_ledger
),

sales as (
    select transactions.* from transactions
    where
        transactions.txn_type = 'SALE'
        and transactions.status = 'SETTLED'
        and transactions.txn_date <= getvariable('as_of_date')
),

-- The refunds of D itself are being decided again by this run. Counting the processor's echo
-- of one of them would make a rerun of D refuse the very refund it sent.
refunds_of_this_run as (
    select refund_id from refund_ledger
    where requested_date = getvariable('as_of_date')
),

processor_refunds as (
    select
        transactions.original_txn_id,
        transactions.merchant_reference,
        transactions.amount
    from transactions
    anti join refunds_of_this_run
        on transactions.merchant_reference = refunds_of_this_run.refund_id
    where
        transactions.txn_type = 'REFUND'
        and transactions.status in ('SETTLED', 'PENDING')
        and transactions.original_txn_id is not null
),

requested_refunds as (
    select
        refund_ledger.original_txn_id,
        refund_ledger.refund_amount as amount
    from refund_ledger
    anti join processor_refunds
        on refund_ledger.refund_id = processor_refunds.merchant_reference
    where
        refund_ledger.requested_date <> getvariable('as_of_date')
        and refund_ledger.status <> 'DECLINED'
),

refunds as (
    select
        original_txn_id,
        amount
    from processor_refunds
    union all
    select
        original_txn_id,
        amount
    from requested_refunds
),

refunded_per_sale as (
    select
        original_txn_id as txn_id,
        sum(amount) as refunded_amount
    from refunds
    group by original_txn_id
),

final as (
    -- Only what the rules read: every column written here is paid for on every sale.
    select
        sales.txn_id,
        sales.client_id,
        sales.account_id,
        sales.txn_date,
        sales.amount,
        sales.card_type,
        sales.cvm,
        sales.card_exp,
        sales.card_token,
        sales.card_last4,
        (sales.amount - coalesce(refunded_per_sale.refunded_amount, 0))::decimal(18, 2)
            as remaining_amount
    from sales
    left join refunded_per_sale
        on sales.txn_id = refunded_per_sale.txn_id
)

select * from final
