-- The Refund Exceptions tickler rows that eligibility decides for D (CONTRACT 4); the
-- reconciliation adds its own rows with source RECONCILIATION.
with

credit_outcomes as (
    select * from marts.credit_outcomes
),

final as (
    select
        as_of_date,
        credit_id,
        client_id,
        account_id,
        credit_amount,
        reason_code,
        reason_detail,
        'ELIGIBILITY' as source,
        null::varchar as refund_id
    from credit_outcomes
    where outcome = 'EXCEPTION'
)

select * from final
