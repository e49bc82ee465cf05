-- Rules 1 to 5 of CONTRACT 3, which need no card transaction: enrolment, refunds requested in
-- the runs of other dates, missing requirements, and the client's minimum balance.
-- screen_outcome is null for a credit that goes on to be matched to a sale.
with

stg_credits as (
    select * from staging.stg_imagineone__credits
    where dq_error is null
),

stg_client_rules as (
    select * from staging.stg_imagineone__client_rules
    where dq_error is null
),

refund_ledger as (
    select * from main.refund_ledger
),

refunds_of_other_runs as (
    select
        credit_id,
        max_by(refund_id, requested_date) filter (where status <> 'DECLINED')
            as live_refund_id,
        max(requested_date) filter (where status <> 'DECLINED') as live_requested_date,
        max_by(status, requested_date) filter (where status <> 'DECLINED') as live_status,
        max_by(refund_id, requested_date) filter (where status = 'DECLINED')
            as declined_refund_id,
        max(requested_date) filter (where status = 'DECLINED') as declined_requested_date,
        max_by(
            concat_ws(' ', response_code, response_message), requested_date
        ) filter (where status = 'DECLINED') as declined_response
    from refund_ledger
    where requested_date <> getvariable('as_of_date')
    group by credit_id
),

joined as (
    select
        stg_credits.credit_id,
        stg_credits.client_id,
        stg_credits.account_id,
        stg_credits.credit_amount,
        stg_credits.credit_date,
        stg_client_rules.client_id is not null as client_has_rules,
        coalesce(stg_client_rules.auto_refunds_enabled, false) as client_enabled,
        stg_client_rules.min_balance_threshold,
        stg_client_rules.refund_window_days,
        refunds_of_other_runs.live_refund_id,
        refunds_of_other_runs.live_requested_date,
        refunds_of_other_runs.live_status,
        refunds_of_other_runs.declined_refund_id,
        refunds_of_other_runs.declined_requested_date,
        refunds_of_other_runs.declined_response
    from stg_credits
    left join stg_client_rules
        on stg_credits.client_id = stg_client_rules.client_id
    left join refunds_of_other_runs
        on stg_credits.credit_id = refunds_of_other_runs.credit_id
),

screened as (
    select
        *,
        case
            when not client_enabled then 'NOT_ENROLLED'
            when live_refund_id is not null then 'ALREADY_REQUESTED'
            when declined_refund_id is not null then 'PREVIOUSLY_DECLINED'
            when account_id is null or credit_amount <= 0 then 'MISSING_REQUIREMENTS'
            when min_balance_threshold is not null and credit_amount < min_balance_threshold
                then 'BELOW_MIN_THRESHOLD'
        end as screen_result
    from joined
),

final as (
    select
        credit_id,
        client_id,
        account_id,
        credit_amount,
        credit_date,
        refund_window_days,
        case
            when screen_result in ('NOT_ENROLLED', 'ALREADY_REQUESTED') then screen_result
            when screen_result is not null then 'EXCEPTION'
        end as screen_outcome,
        case
            when screen_result not in ('NOT_ENROLLED', 'ALREADY_REQUESTED') then screen_result
        end as screen_reason_code,
        -- Ids are kept as they are, but not in a text for a person (CONTRACT 7).
        mask_card_numbers(case screen_result
            when 'NOT_ENROLLED'
                then
                    case
                        when client_has_rules
                            then 'client ' || client_id || ' has not enabled auto-refunds'
                        else
                            'client ' || coalesce(client_id, '(empty)') || ' is not in client_rules'
                    end
            when 'ALREADY_REQUESTED'
                then
                    'refund ' || live_refund_id || ' was requested on ' || live_requested_date
                    || ' and is ' || live_status
            when 'PREVIOUSLY_DECLINED'
                then
                    'refund ' || declined_refund_id || ' requested on ' || declined_requested_date
                    || ' was declined' || coalesce(' (' || nullif(declined_response, '') || ')', '')
            when 'MISSING_REQUIREMENTS'
                then
                    case
                        when account_id is null then 'credit has no account_id'
                        else 'credit amount ' || credit_amount || ' is not above zero'
                    end
            when 'BELOW_MIN_THRESHOLD' then
                'credit ' || credit_amount || ' is below the client''s minimum balance of '
                || min_balance_threshold
        end) as screen_reason_detail
    from screened
)

select * from final
