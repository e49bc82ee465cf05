-- Rules 6 to 11 of CONTRACT 3 for each credit that passed rules 1 to 5. Each rule narrows the
-- candidates the previous one left; the first that leaves none decides the exception. A credit
-- with candidates left is proposed against the latest sale, then the largest, then the smallest
-- txn_id; int_credits_allocated_to_sales then shares each sale among its credits.
with

credits_screened as (
    select * from intermediate.int_credits_screened
    where screen_outcome is null
),

credit_candidates as (
    select * from intermediate.int_credit_candidates
),

-- The step at which each candidate drops out; null for a candidate that survives all rules.
candidate_steps as (
    select
        *,
        case
            when not covers_credit then 7
            when is_debit_pin then 8
            when is_card_expired then 9
            when is_outside_window then 10
        end as dropped_at_rule
    from credit_candidates
),

chosen_sales as (
    select * from candidate_steps
    where dropped_at_rule is null
    qualify row_number() over (
        partition by credit_id order by txn_date desc, amount desc, txn_id asc
    ) = 1
),

-- For a credit whose candidates all drop out, the rule that removed the last ones decides the
-- exception, and the best candidate that rule removed explains it.
last_dropped as (
    select
        credit_id,
        count(*) as candidate_count,
        min(coalesce(dropped_at_rule, 11)) as first_rule,
        max(coalesce(dropped_at_rule, 11)) as last_rule
    from candidate_steps
    group by credit_id
),

explained as (
    select
        candidate_steps.credit_id,
        last_dropped.candidate_count,
        last_dropped.last_rule,
        count(*) over (partition by candidate_steps.credit_id) as removed_at_last_rule,
        candidate_steps.txn_id,
        candidate_steps.txn_date,
        candidate_steps.remaining_amount,
        candidate_steps.card_last4,
        candidate_steps.card_valid_through
    from candidate_steps
    inner join last_dropped
        on candidate_steps.credit_id = last_dropped.credit_id
    where coalesce(candidate_steps.dropped_at_rule, 11) = last_dropped.last_rule
    qualify row_number() over (
        partition by candidate_steps.credit_id
        order by
            candidate_steps.remaining_amount desc,
            candidate_steps.txn_date desc,
            candidate_steps.txn_id asc
    ) = 1
),

decided as (
    select
        credits_screened.credit_id,
        credits_screened.client_id,
        credits_screened.account_id,
        credits_screened.credit_amount,
        credits_screened.credit_date,
        credits_screened.refund_window_days,
        case
            when explained.credit_id is null then 'NO_MATCHING_TRANSACTION'
            when explained.last_rule = 7 then 'CREDIT_EXCEEDS_TRANSACTION'
            when explained.last_rule = 8 then 'DEBIT_PIN_TRANSACTION'
            when explained.last_rule = 9 then 'CARD_EXPIRED'
            when explained.last_rule = 10 then 'REFUND_WINDOW_EXPIRED'
        end as reason_code,
        explained.removed_at_last_rule,
        explained.txn_id as explained_txn_id,
        explained.txn_date as explained_txn_date,
        explained.remaining_amount as explained_remaining_amount,
        explained.card_last4 as explained_card_last4,
        explained.card_valid_through as explained_card_valid_through,
        chosen_sales.txn_id as original_txn_id,
        chosen_sales.txn_date as original_txn_date,
        chosen_sales.remaining_amount,
        chosen_sales.card_token,
        chosen_sales.card_last4
    from credits_screened
    left join explained
        on credits_screened.credit_id = explained.credit_id
    left join chosen_sales
        on credits_screened.credit_id = chosen_sales.credit_id
),

final as (
    select
        credit_id,
        client_id,
        account_id,
        credit_amount,
        credit_date,
        reason_code,
        case reason_code
            when 'NO_MATCHING_TRANSACTION'
                then
                    'no settled card sale on account ' || account_id || ' of client ' || client_id
                    || ' on or before ' || getvariable('as_of_date')
            when 'CREDIT_EXCEEDS_TRANSACTION'
                then
                    'credit '
                    || credit_amount
                    || ' exceeds remaining '
                    || explained_remaining_amount
                    || ' on sale ' || explained_txn_id || ' of ' || explained_txn_date
            when 'DEBIT_PIN_TRANSACTION'
                then
                    'sale ' || explained_txn_id || ' of ' || explained_txn_date
                    || ' was paid by debit card with PIN'
            when 'CARD_EXPIRED'
                then
                    'card ending ' || explained_card_last4 || ' of sale ' || explained_txn_id
                    || ' expired on ' || explained_card_valid_through
            when 'REFUND_WINDOW_EXPIRED' then
                'sale ' || explained_txn_id || ' of ' || explained_txn_date || ' is '
                || (getvariable('as_of_date') - explained_txn_date) || ' days old; the window is '
                || refund_window_days || ' days'
        end
        || case
            when removed_at_last_rule > 1
                then ' (and ' || (removed_at_last_rule - 1) || ' other sale(s) alike)'
            else ''
        end as reason_detail,
        original_txn_id,
        original_txn_date,
        remaining_amount,
        card_token,
        card_last4
    from decided
)

select * from final
