-- Moves of marts.refund_ledger_transitions the ledger must refuse. A refund moves forward:
-- SENT -> REFUNDED | DECLINED | AMOUNT_MISMATCH | UNANSWERED, UNANSWERED -> an answer, and from
-- one answer to another only by the answer of a later or the same date (a later payment file
-- answering again; a rerun of D). A move to the state a refund is already in is no move.
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
        allowed.to_status,
        allowed.from_an_earlier_date_only
    from (
        values
        ('SENT', 'REFUNDED', false),
        ('SENT', 'DECLINED', false),
        ('SENT', 'AMOUNT_MISMATCH', false),
        ('SENT', 'UNANSWERED', false),
        ('UNANSWERED', 'REFUNDED', false),
        ('UNANSWERED', 'DECLINED', false),
        ('UNANSWERED', 'AMOUNT_MISMATCH', false),
        ('REFUNDED', 'DECLINED', true),
        ('REFUNDED', 'AMOUNT_MISMATCH', true),
        ('DECLINED', 'REFUNDED', true),
        ('DECLINED', 'AMOUNT_MISMATCH', true),
        ('AMOUNT_MISMATCH', 'REFUNDED', true),
        ('AMOUNT_MISMATCH', 'DECLINED', true)
    ) as allowed (from_status, to_status, from_an_earlier_date_only)
),

allowed_moves as (
    select moves.refund_id
    from moves
    inner join refund_ledger
        on moves.refund_id = refund_ledger.refund_id
    inner join forward_moves
        on
            refund_ledger.status = forward_moves.from_status
            and moves.status = forward_moves.to_status
    where
        not forward_moves.from_an_earlier_date_only
        or refund_ledger.status_date <= moves.as_of_date
),

final as (
    select
        moves.refund_id,
        refund_ledger.status as from_status,
        moves.status as to_status
    from moves
    left join refund_ledger
        on moves.refund_id = refund_ledger.refund_id
    anti join allowed_moves
        on moves.refund_id = allowed_moves.refund_id
    where refund_ledger.status is distinct from moves.status
)

select * from final
order by refund_id
