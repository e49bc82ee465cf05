-- Run after each extract is typed, in the same transaction: dates every readable version of the
-- txn_ids that extract touched (touched_keys: its ids, before and after, that other
-- extracts hold too) with the file_date of the next version. The transactions known at D are
-- then a filter, not a pass over the whole history (int_imaginepay__transactions_known_at_date).
update staging.stg_imaginepay__transactions as typed
set superseded_on = versions.next_version_on
from (
    select
        source_file,
        line_number,
        lead(file_date) over (
            partition by txn_id order by file_date asc, source_file asc
        ) as next_version_on
    from staging.stg_imaginepay__transactions
    where
        dq_error is null
        and txn_id in (select touched_keys.txn_id from touched_keys)
) as versions
where
    typed.source_file = versions.source_file
    and typed.line_number = versions.line_number
    and typed.superseded_on is distinct from versions.next_version_on
