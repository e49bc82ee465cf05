-- Rules 6 to 11 of CONTRACT 3 for each credit that passed rules 1 to 5. Each of rules 7 to 10
-- narrows the candidates the one before it left; the first that leaves none decides the
-- exception, and the best candidate it removed explains it. A credit with candidates left is
-- proposed against the latest sale, then the largest, then the smallest txn_id;
-- int_credits_allocated_to_sales then shares each sale among its credits.
with

credits_screened as (
    select * from intermediate.int_credits_screened
    where screen_outcome is null
),

credit_candidates as (
    select * from intermediate.int_credit_candidates
),

candidates as not materialized (
    select
        * replace (
            -- CONTRACT 2: an empty refund_window_days means 180 days.
            coalesce(refund_window_days, 180) as refund_window_days
        ),
        -- A card of expiry MM/YY (20YY) is valid through the last day of that month.
        last_day(
            make_date(2000 + card_exp[4:5]::integer, card_exp[1:2]::integer, 1)
        ) as card_valid_through
    from credit_candidates
),

-- Whether a candidate is still left after each of rules 7 to 10, in the contract's order.
-- Read three times, so held once, with only the columns read after it: the rules' inputs are
-- reduced to their flags (held whole, the candidates spilled at the benchmark's larger size).
candidates_left as materialized (
    select
        credit_id,
        txn_id,
        txn_date,
        amount,
        remaining_amount,
        card_token,
        card_last4,
        card_valid_through,
        refund_window_days,
        remaining_amount >= credit_amount as covers_credit,
        covers_credit and not (card_type = 'DEBIT' and cvm = 'PIN') as left_after_debit_pin,
        left_after_debit_pin
        and getvariable('as_of_date') <= card_valid_through as left_after_card_expiry,
        left_after_card_expiry
        and getvariable('as_of_date') - txn_date <= refund_window_days
            as left_after_refund_window
    from candidates
),

candidates_per_credit as (
    select
        credit_id,
        bool_or(covers_credit) as any_covers_credit,
        bool_or(left_after_debit_pin) as any_left_after_debit_pin,
        bool_or(left_after_card_expiry) as any_left_after_card_expiry,
        bool_or(left_after_refund_window) as any_left_after_refund_window
    from candidates_left
    group by credit_id
),

chosen_sales as (
    select * from candidates_left
    where left_after_refund_window
    qualify row_number() over (
        partition by credit_id order by txn_date desc, amount desc, txn_id asc
    ) = 1
),

-- Only a credit none of whose candidates is left after rule 10 has an exception to explain:
-- the rest are proposed, and their candidates need no second sort.
candidates_to_explain as (
    select candidates_left.*
    from candidates_left
    semi join candidates_per_credit
        on
            candidates_left.credit_id = candidates_per_credit.credit_id
            and not candidates_per_credit.any_left_after_refund_window
),

-- The candidates the deciding rule removed are those that went furthest through rules 7 to 10;
-- the one with the largest remaining, then the latest, then the smallest txn_id explains it.
-- Counted by a group and a join: a second window over every candidate cost more.
candidates_as_far as (
    select
        credit_id,
        covers_credit,
        left_after_debit_pin,
        left_after_card_expiry,
        count(*) as removed_by_deciding_rule
    from candidates_to_explain
    group by credit_id, covers_credit, left_after_debit_pin, left_after_card_expiry
),

furthest_candidates as (
    select
        credit_id,
        txn_id,
        txn_date,
        remaining_amount,
        card_last4,
        card_valid_through,
        refund_window_days,
        covers_credit,
        left_after_debit_pin,
        left_after_card_expiry
    from candidates_to_explain
    qualify row_number() over (
        partition by credit_id
        order by
            covers_credit desc,
            left_after_debit_pin desc,
            left_after_card_expiry desc,
            remaining_amount desc,
            txn_date desc,
            txn_id asc
    ) = 1
),

explained as (
    select
        furthest_candidates.*,
        candidates_as_far.removed_by_deciding_rule
    from furthest_candidates
    inner join candidates_as_far
        on
            furthest_candidates.credit_id = candidates_as_far.credit_id
            and furthest_candidates.covers_credit
            is not distinct from candidates_as_far.covers_credit
            and furthest_candidates.left_after_debit_pin
            is not distinct from candidates_as_far.left_after_debit_pin
            and furthest_candidates.left_after_card_expiry
            is not distinct from candidates_as_far.left_after_card_expiry
),

decided as (
    select
        credits_screened.credit_id,
        credits_screened.client_id,
        credits_screened.account_id,
        credits_screened.credit_amount,
        credits_screened.credit_date,
        case
            when candidates_per_credit.credit_id is null then 'NO_MATCHING_TRANSACTION'
            when not candidates_per_credit.any_covers_credit then 'CREDIT_EXCEEDS_TRANSACTION'
            when not candidates_per_credit.any_left_after_debit_pin then 'DEBIT_PIN_TRANSACTION'
            when not candidates_per_credit.any_left_after_card_expiry then 'CARD_EXPIRED'
            when not candidates_per_credit.any_left_after_refund_window
                then 'REFUND_WINDOW_EXPIRED'
        end as reason_code,
        explained.removed_by_deciding_rule,
        explained.txn_id as explained_txn_id,
        explained.txn_date as explained_txn_date,
        explained.remaining_amount as explained_remaining_amount,
        explained.card_last4 as explained_card_last4,
        explained.card_valid_through as explained_card_valid_through,
        explained.refund_window_days as explained_refund_window_days,
        chosen_sales.txn_id as original_txn_id,
        chosen_sales.txn_date as original_txn_date,
        chosen_sales.remaining_amount,
        chosen_sales.card_token,
        chosen_sales.card_last4
    from credits_screened
    left join candidates_per_credit
        on credits_screened.credit_id = candidates_per_credit.credit_id
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
        -- Ids are kept as they are, but not in a text for a person (CONTRACT 7).
        mask_card_numbers(case reason_code
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
                || explained_refund_window_days || ' days'
        end
        || case
            when removed_by_deciding_rule > 1
                then ' (and ' || (removed_by_deciding_rule - 1) || ' other sale(s) alike)'
            else ''
        end) as reason_detail,
        original_txn_id,
        original_txn_date,
        remaining_amount,
        card_token,
        card_last4
    from decided
)

select * from final
