-- Moves of marts.refund_ledger_transitions the ledger must refuse: a refund moves only as
-- ledger_moves_forward (macros.sql) allows, up SENT, UNANSWERED, DECLINED, AMOUNT_MISMATCH,
-- REFUNDED. A move to the state a refund is already in (a rerun) is no move.
-- The update in ledger_apply_transitions.sql applies only the moves allowed here.
with

moves as (
    select * from marts.refund_ledger_transitions
),

refund_ledger as (
    select * from main.refund_ledger
),

final as (
    select
        moves.refund_id,
        refund_ledger.status as from_status,
        moves.status as to_status
    from moves
    left join refund_ledger
        on moves.refund_id = refund_ledger.refund_id
    where
        refund_ledger.status is distinct from moves.status
        -- Null (a refund not in the ledger, an unknown state) is refused too.
        and not coalesce(
            ledger_moves_forward(
                refund_ledger.status, refund_ledger.status_date, moves.status, moves.as_of_date
            ),
            false
        )
)

select * from final
order by refund_id
