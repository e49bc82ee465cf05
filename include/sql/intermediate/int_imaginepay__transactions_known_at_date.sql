-- Transactions known at D: the latest readable version of each txn_id among the extracts dated
-- on or before D (CONTRACT 3). Within one file a txn_id is unique: duplicates were quarantined.
with

stg_transactions as (
    select * from staging.stg_imaginepay__transactions
    where dq_error is null and file_date <= getvariable('as_of_date')
),

latest_versions as (
    select * from stg_transactions
    qualify row_number() over (partition by txn_id order by file_date desc) = 1
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
        card_valid_through,
        card_token,
        card_last4,
        source_file,
        line_number
    from latest_versions
)

select * from final
