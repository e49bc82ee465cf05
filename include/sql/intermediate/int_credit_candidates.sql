-- Candidate sales of every credit that passed rules 1 to 5: settled card sales of the same
-- client and account dated on or before D, each with the facts rules 7 to 10 test.
with

credits_screened as (
    select * from intermediate.int_credits_screened
    where screen_outcome is null
),

sales_remaining as (
    select * from intermediate.int_sales_remaining
),

final as (
    select
        credits_screened.credit_id,
        sales_remaining.txn_id,
        sales_remaining.txn_date,
        sales_remaining.amount,
        sales_remaining.remaining_amount,
        sales_remaining.card_type,
        sales_remaining.cvm,
        sales_remaining.card_valid_through,
        sales_remaining.card_token,
        sales_remaining.card_last4,
        sales_remaining.remaining_amount >= credits_screened.credit_amount as covers_credit,
        sales_remaining.card_type = 'DEBIT' and sales_remaining.cvm = 'PIN' as is_debit_pin,
        getvariable('as_of_date') > sales_remaining.card_valid_through as is_card_expired,
        getvariable('as_of_date') - sales_remaining.txn_date
        > credits_screened.refund_window_days as is_outside_window
    from credits_screened
    inner join sales_remaining
        on
            credits_screened.client_id = sales_remaining.client_id
            and credits_screened.account_id = sales_remaining.account_id
)

select * from final
