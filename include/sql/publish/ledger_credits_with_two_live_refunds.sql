-- The guard DuckDB cannot declare (it has no partial unique index): a credit holds at most one
-- live (not declined) refund. Run inside every transaction that writes the ledger, after the
-- write; any row here rolls the transaction back.
select
    credit_id,
    list(refund_id order by refund_id) as refund_ids
from main.refund_ledger
where status <> 'DECLINED'
group by credit_id
having count(*) > 1
order by credit_id
limit 5
