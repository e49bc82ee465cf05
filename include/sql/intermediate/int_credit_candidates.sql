-- Candidates of every credit that passed rules 1 to 5 (CONTRACT 3): the settled card sales of
-- the same client and account dated on or before D (int_sales_remaining), with what rules 7 to
-- 10 read of each. The rules themselves are in int_credits_matched_to_sales.
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
        -- What the rules read of the credit, carried so that they need not join it again: at
        -- the benchmark's larger size that join of every candidate cost seconds.
        credits_screened.credit_amount,
        credits_screened.refund_window_days,
        sales_remaining.txn_id,
        sales_remaining.txn_date,
        sales_remaining.amount,
        sales_remaining.remaining_amount,
        sales_remaining.card_type,
        sales_remaining.cvm,
        sales_remaining.card_exp,
        sales_remaining.card_token,
        sales_remaining.card_last4
    from credits_screened
    inner join sales_remaining
        on
            credits_screened.client_id = sales_remaining.client_id
            and credits_screened.account_id = sales_remaining.account_id
)

select * from final
