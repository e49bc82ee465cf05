-- A published refund file enters the ledger: each refund not yet in it as SENT, with its event.
-- refunds_to_send holds the file's rows as text; refund_file_date and refund_file_name name it.
insert into main.refund_ledger_events (refund_id, status, as_of_date, source_file, line_number)
select
    refunds_to_send.refund_id,
    'SENT' as status,
    getvariable('refund_file_date') as as_of_date,
    getvariable('refund_file_name') as source_file,
    null as line_number
from refunds_to_send
anti join main.refund_ledger
    on refunds_to_send.refund_id = refund_ledger.refund_id;

insert into main.refund_ledger (
    refund_id, credit_id, client_id, account_id, original_txn_id, card_token,
    refund_amount, requested_date, refund_file, status, status_date
)
select
    refunds_to_send.refund_id,
    refunds_to_send.credit_id,
    refunds_to_send.client_id,
    refunds_to_send.account_id,
    refunds_to_send.original_txn_id,
    refunds_to_send.card_token,
    refunds_to_send.refund_amount::decimal(18, 2) as refund_amount,
    getvariable('refund_file_date') as requested_date,
    getvariable('refund_file_name') as refund_file,
    'SENT' as status,
    getvariable('refund_file_date') as status_date
from refunds_to_send
anti join main.refund_ledger
    on refunds_to_send.refund_id = refund_ledger.refund_id;
