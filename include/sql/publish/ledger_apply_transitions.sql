-- The reconciliation of D moves the ledger: each new state is logged once in refund_ledger_events
-- (a unique index on refund_id and status guards it) and set on the refund, forward only
-- (ledger_moves_forward in macros.sql). ledger_backward_moves.sql runs first and refuses the
-- rest.
insert into main.refund_ledger_events (
    refund_id, status, as_of_date, source_file, line_number, detail
)
select
    moves.refund_id,
    moves.status,
    moves.as_of_date,
    moves.source_file,
    moves.line_number,
    moves.detail
from marts.refund_ledger_transitions as moves
anti join main.refund_ledger_events as seen
    on moves.refund_id = seen.refund_id and moves.status = seen.status;

update main.refund_ledger set
    status = moves.status,
    status_date = moves.as_of_date,
    status_source_file = moves.source_file,
    status_line_number = moves.line_number,
    response_code = moves.response_code,
    response_message = moves.response_message
from marts.refund_ledger_transitions as moves
where
    refund_ledger.refund_id = moves.refund_id
    and (
        (
            -- A rerun of D sets what it set before.
            refund_ledger.status = moves.status
            and refund_ledger.status_date = moves.as_of_date
        )
        or ledger_moves_forward(
            refund_ledger.status, refund_ledger.status_date, moves.status, moves.as_of_date
        )
    );
