-- CONTRACT 5: a refund sent and still unanswered when the reconciliation of a date at least
-- no_response_after_days (3) after its file date runs is NO_PROCESSOR_RESPONSE, raised once:
-- by the first such reconciliation, and by its reruns.
with

refund_ledger as (
    select * from main.refund_ledger
),

answers_of_this_file as (
    select * from intermediate.int_payments_matched_to_refunds
    where outcome <> 'UNMATCHED'
),

overdue as (
    select refund_ledger.*
    from refund_ledger
    anti join answers_of_this_file
        on refund_ledger.refund_id = answers_of_this_file.refund_id
    where
        refund_ledger.requested_date
        <= getvariable('as_of_date') - getvariable('no_response_after_days')
        and (
            refund_ledger.status = 'SENT'
            or (
                refund_ledger.status = 'UNANSWERED'
                and refund_ledger.status_date = getvariable('as_of_date')
            )
        )
),

final as (
    select
        refund_id,
        credit_id,
        client_id,
        account_id,
        refund_amount,
        requested_date,
        refund_file,
        getvariable('as_of_date') - requested_date as days_unanswered
    from overdue
)

select * from final
