-- Transactions known at D: the latest readable version of each txn_id among the extracts dated
-- on or before D (CONTRACT 3). Within one file a txn_id is unique: duplicates were quarantined.
-- A version is the latest at D unless a later one came in an extract dated on or before D; its
-- superseded_on is set when each extract is typed (stg_imaginepay__transactions.supersede.sql),
-- so this is a filter over the typed extracts, built as a view (models.py).
with

stg_transactions as (
    select * from staging.stg_imaginepay__transactions
    where dq_error is null and file_date <= getvariable('as_of_date')
),

latest_versions as (
    select * from stg_transactions
    where superseded_on is null or superseded_on > getvariable('as_of_date')
),

final as (
    select
        txn_id,
        client_id,
        account_id,
        txn_type,
        original_txn_id,
        merchant_reference,
        amount,
        txn_date,
        status,
        card_type,
        cvm,
        card_exp,
        card_token,
        card_last4,
        source_file,
        line_number
    from latest_versions
)

select * from final
