-- Refunds of a refund file (refunds_to_send) that the ledger already holds for another date: the
-- same refund_id, or a live (not declined) refund of the same credit. Either would refund a
-- credit twice. Two equi-joins, not one join on an OR: DuckDB runs an OR condition as a
-- nested loop, new refunds x every refund ever sent.
with

refunds_to_send as (
    select * from refunds_to_send
),

refund_ledger as (
    select * from main.refund_ledger
    where requested_date <> getvariable('refund_file_date')
),

same_refund as (
    select
        refunds_to_send.refund_id,
        refund_ledger.refund_id as ledger_refund_id,
        refund_ledger.requested_date
    from refunds_to_send
    inner join refund_ledger
        on refunds_to_send.refund_id = refund_ledger.refund_id
),

same_live_credit as (
    select
        refunds_to_send.refund_id,
        refund_ledger.refund_id as ledger_refund_id,
        refund_ledger.requested_date
    from refunds_to_send
    inner join refund_ledger
        on refunds_to_send.credit_id = refund_ledger.credit_id
    where refund_ledger.status <> 'DECLINED'
),

final as (
    select * from same_refund
    union
    select * from same_live_credit
)

select * from final
order by refund_id, requested_date
