-- Moves of marts.refund_ledger_transitions the ledger must refuse: states only move forward,
-- SENT -> REFUNDED | DECLINED | AMOUNT_MISMATCH | UNANSWERED and UNANSWERED -> REFUNDED |
-- DECLINED | AMOUNT_MISMATCH. A move to the state a refund is already in (a rerun) is no move.
-- The update in ledger_apply_transitions.sql applies only the moves allowed here.
with

moves as (
    select * from marts.refund_ledger_transitions
),

refund_ledger as (
    select * from main.refund_ledger
),

forward_moves as (
    select
        allowed.from_status,
        allowed.to_status
    from (
        values
        ('SENT', 'REFUNDED'),
        ('SENT', 'DECLINED'),
        ('SENT', 'AMOUNT_MISMATCH'),
        ('SENT', 'UNANSWERED'),
        ('UNANSWERED', 'REFUNDED'),
        ('UNANSWERED', 'DECLINED'),
        ('UNANSWERED', 'AMOUNT_MISMATCH')
    ) as allowed (from_status, to_status)
),

final as (
    select
        moves.refund_id,
        refund_ledger.status as from_status,
        moves.status as to_status
    from moves
    left join refund_ledger
        on moves.refund_id = refund_ledger.refund_id
    anti join forward_moves
        on
            refund_ledger.status = forward_moves.from_status
            and moves.status = forward_moves.to_status
    where refund_ledger.status is distinct from moves.status
)

select * from final
order by refund_id
