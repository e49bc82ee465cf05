-- The Refund Exceptions tickler rows that the reconciliation of D raises (CONTRACT 5), with the
-- refund_id; publish replaces D's RECONCILIATION rows with these. Every declining or mismatching
-- row of D's file raises one, whether or not it moves the ledger (a later file's answer may
-- have): the tickler partitions are history, and D's own file re-derives them on a rerun.
with

payments_matched as (
    select * from intermediate.int_payments_matched_to_refunds
    where outcome in ('DECLINED', 'AMOUNT_MISMATCH')
),

aged as (
    select * from marts.refund_ledger_transitions
    where status = 'UNANSWERED'
),

refund_ledger_events as (
    select * from main.refund_ledger_events
),

refund_ledger as (
    select * from main.refund_ledger
),

-- A rerun of D raises again the NO_PROCESSOR_RESPONSE that D raised before, though a later
-- date's answer has moved the refund on since (so it is no longer D's to age).
raised_before as (
    select
        refund_ledger_events.as_of_date,
        refund_ledger_events.refund_id,
        refund_ledger_events.status,
        refund_ledger_events.detail
    from refund_ledger_events
    anti join aged
        on refund_ledger_events.refund_id = aged.refund_id
    where
        refund_ledger_events.status = 'UNANSWERED'
        and refund_ledger_events.as_of_date = getvariable('as_of_date')
),

raised as (
    select
        getvariable('as_of_date') as as_of_date,
        refund_id,
        outcome as status,
        detail
    from payments_matched
    union all
    select
        as_of_date,
        refund_id,
        status,
        detail
    from aged
    union all
    select
        as_of_date,
        refund_id,
        status,
        detail
    from raised_before
),

final as (
    select
        raised.as_of_date,
        refund_ledger.credit_id,
        refund_ledger.client_id,
        refund_ledger.account_id,
        refund_ledger.refund_amount as credit_amount,
        case raised.status
            when 'DECLINED' then 'REFUND_DECLINED'
            when 'AMOUNT_MISMATCH' then 'RETURN_AMOUNT_MISMATCH'
            when 'UNANSWERED' then 'NO_PROCESSOR_RESPONSE'
        end as reason_code,
        'refund ' || raised.refund_id || ': ' || raised.detail as reason_detail,
        'RECONCILIATION' as source,
        raised.refund_id
    from raised
    inner join refund_ledger
        on raised.refund_id = refund_ledger.refund_id
)

select * from final
