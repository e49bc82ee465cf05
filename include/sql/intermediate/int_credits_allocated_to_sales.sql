-- Several credits proposed against one sale share its remaining amount (CONTRACT 3): in order
-- of credit_date, then credit_id, a credit is admitted (DUE, reason_code null) while its amount
-- plus the amounts of all credits before it stays within remaining(t). The others exceed the sale.
with

credits_matched as (
    select * from intermediate.int_credits_matched_to_sales
    where reason_code is null
),

running_totals as (
    select
        *,
        sum(credit_amount) over (
            partition by original_txn_id
            order by credit_date asc, credit_id asc
            rows between unbounded preceding and current row
        ) as allotted_through_this_credit
    from credits_matched
),

final as (
    select
        credit_id,
        client_id,
        account_id,
        credit_amount,
        credit_date,
        original_txn_id,
        remaining_amount,
        card_token,
        card_last4,
        case
            when allotted_through_this_credit > remaining_amount
                then 'CREDIT_EXCEEDS_TRANSACTION'
        end as reason_code,
        -- Ids are kept as they are, but not in a text for a person (CONTRACT 7).
        mask_card_numbers(case
            when allotted_through_this_credit > remaining_amount then
                'credit ' || credit_amount || ' plus '
                || (allotted_through_this_credit - credit_amount)
                || ' due to earlier credits exceeds remaining ' || remaining_amount
                || ' on sale ' || original_txn_id || ' of ' || original_txn_date
        end) as reason_detail
    from running_totals
)

select * from final
