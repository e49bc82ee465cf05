-- Every credit of the snapshot of D with exactly one outcome (CONTRACT 3): NOT_ENROLLED,
-- ALREADY_REQUESTED, EXCEPTION with its reason_code, or DUE with its refund.
with

credits_screened as (
    select * from intermediate.int_credits_screened
),

credits_matched as (
    select * from intermediate.int_credits_matched_to_sales
),

credits_allocated as (
    select * from intermediate.int_credits_allocated_to_sales
),

screened_out as (
    select
        credit_id,
        client_id,
        account_id,
        credit_amount,
        credit_date,
        screen_outcome as outcome,
        screen_reason_code as reason_code,
        screen_reason_detail as reason_detail,
        null::varchar as original_txn_id,
        null::varchar as card_token,
        null::varchar as card_last4
    from credits_screened
    where screen_outcome is not null
),

unmatched as (
    select
        credit_id,
        client_id,
        account_id,
        credit_amount,
        credit_date,
        'EXCEPTION' as outcome,
        reason_code,
        reason_detail,
        null::varchar as original_txn_id,
        null::varchar as card_token,
        null::varchar as card_last4
    from credits_matched
    where reason_code is not null
),

allocated as (
    select
        credit_id,
        client_id,
        account_id,
        credit_amount,
        credit_date,
        case when reason_code is null then 'DUE' else 'EXCEPTION' end as outcome,
        reason_code,
        reason_detail,
        original_txn_id,
        card_token,
        card_last4
    from credits_allocated
),

unioned as (
    select * from screened_out
    union all
    select * from unmatched
    union all
    select * from allocated
),

final as (
    select
        getvariable('as_of_date') as as_of_date,
        credit_id,
        client_id,
        account_id,
        credit_amount,
        credit_date,
        outcome,
        reason_code,
        reason_detail,
        original_txn_id,
        case when outcome = 'DUE' then refund_id_for(credit_id) end as refund_id,
        card_token,
        card_last4
    from unioned
)

select * from final
