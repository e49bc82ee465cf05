-- The Refund Exceptions tickler rows that the reconciliation of D raises (CONTRACT 5), with the
-- refund_id; publish replaces D's RECONCILIATION rows with these. Each declining or mismatching
-- answer of D's file raises one if D acts on it (int_payments_matched_to_refunds, acts: once per
-- answer, whatever file or date repeats it), whether or not it moves the ledger (a later file's
-- answer may have): the tickler partitions are history, and D's own file re-derives them on a
-- rerun.
with

payments_matched as (
    select * from intermediate.int_payments_matched_to_refunds
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

payment_answers as (
    select * from main.payment_answers
),

tickler_refund_exceptions as (
    select * from main.tickler_refund_exceptions
    where source = 'RECONCILIATION' and reason_code = 'APPROVED_AFTER_DECLINE'
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

-- APPROVED_AFTER_DECLINE: an approval of the amount sent (REFUNDED) in the payment file of a
-- date after that of a file that declined the refund, by file date. Raised once per refund, by
-- the first reconciliation whose own file holds one of the two while the other is in D's file or
-- recorded by another date's reconciliation (main.payment_answers); its reruns raise it again,
-- with the detail it had, and no other date does.
answers as (
    select
        getvariable('as_of_date') as as_of_date,
        refund_id,
        outcome,
        response_code,
        source_file,
        line_number,
        payment_id
    from payments_matched
    where outcome in ('DECLINED', 'REFUNDED')
    union all
    select
        as_of_date,
        refund_id,
        outcome,
        response_code,
        source_file,
        line_number,
        payment_id
    from payment_answers
    where
        outcome in ('DECLINED', 'REFUNDED')
        and as_of_date <> getvariable('as_of_date')
),

declined_then_approved as (
    select
        approvals.refund_id,
        declines.source_file as declined_in,
        declines.line_number as declined_line,
        declines.response_code as declined_code,
        approvals.payment_id as approved_as,
        approvals.source_file as approved_in,
        row_number() over (
            partition by approvals.refund_id
            order by
                approvals.as_of_date,
                approvals.line_number,
                declines.as_of_date,
                declines.line_number
        ) as pair_rank
    from answers as approvals
    inner join answers as declines
        on
            approvals.refund_id = declines.refund_id
            and approvals.as_of_date > declines.as_of_date
    where
        approvals.outcome = 'REFUNDED'
        and declines.outcome = 'DECLINED'
        and getvariable('as_of_date') in (approvals.as_of_date, declines.as_of_date)
),

approved_after_decline as (
    select
        declined_then_approved.refund_id,
        coalesce(
            raised_here.reason_detail,
            'refund ' || declined_then_approved.refund_id || ': '
            || mask_card_numbers(
                'approved as payment ' || declined_then_approved.approved_as || ' ('
                || declined_then_approved.approved_in || ') after '
                || declined_then_approved.declined_in || ' line '
                || declined_then_approved.declined_line || ' declined it ('
                || coalesce(declined_then_approved.declined_code, 'no code')
                || '): the money moved; check that the credit was not refunded another way'
            )
        ) as reason_detail
    from declined_then_approved
    left join tickler_refund_exceptions as raised_here
        on
            declined_then_approved.refund_id = raised_here.refund_id
            and raised_here.as_of_date = getvariable('as_of_date')
    anti join tickler_refund_exceptions as raised_elsewhere
        on
            declined_then_approved.refund_id = raised_elsewhere.refund_id
            and raised_elsewhere.as_of_date <> getvariable('as_of_date')
    where declined_then_approved.pair_rank = 1
),

raised as (
    select
        getvariable('as_of_date') as as_of_date,
        refund_id,
        outcome as status,
        'refund ' || refund_id || ': ' || detail as reason_detail
    from payments_matched
    where outcome in ('DECLINED', 'AMOUNT_MISMATCH') and acts
    union all
    select
        as_of_date,
        refund_id,
        status,
        'refund ' || refund_id || ': ' || detail as reason_detail
    from aged
    union all
    select
        as_of_date,
        refund_id,
        status,
        'refund ' || refund_id || ': ' || detail as reason_detail
    from raised_before
    union all
    select
        getvariable('as_of_date') as as_of_date,
        refund_id,
        'APPROVED_AFTER_DECLINE' as status,
        reason_detail
    from approved_after_decline
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
            when 'APPROVED_AFTER_DECLINE' then 'APPROVED_AFTER_DECLINE'
        end as reason_code,
        raised.reason_detail,
        'RECONCILIATION' as source,
        raised.refund_id
    from raised
    inner join refund_ledger
        on raised.refund_id = refund_ledger.refund_id
)

select * from final
