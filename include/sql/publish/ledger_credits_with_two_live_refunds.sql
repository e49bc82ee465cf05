-- The guard DuckDB cannot declare (it has no partial unique index): a credit holds at most one
-- live (not declined) refund. Run inside every transaction that writes the ledger, after the
-- write; any row here rolls the transaction back. Only the credits that transaction wrote
-- (ledger_written_credits) can have gained a second live refund: every earlier write was
-- checked the same way. Grouping the whole ledger instead made every night cost its history.
select
    refund_ledger.credit_id,
    list(refund_ledger.refund_id order by refund_ledger.refund_id) as refund_ids
from main.refund_ledger
semi join ledger_written_credits
    on refund_ledger.credit_id = ledger_written_credits.credit_id
where refund_ledger.status <> 'DECLINED'
group by refund_ledger.credit_id
having count(*) > 1
order by refund_ledger.credit_id
limit 5
