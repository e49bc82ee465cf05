-- The True Refunds Due tickler of D (CONTRACT 4): one refund of the whole credit per DUE credit.
with

credit_outcomes as (
    select * from marts.credit_outcomes
),

final as (
    select
        as_of_date,
        refund_id,
        credit_id,
        client_id,
        account_id,
        original_txn_id,
        card_token,
        card_last4,
        credit_amount as refund_amount
    from credit_outcomes
    where outcome = 'DUE'
)

select * from final
