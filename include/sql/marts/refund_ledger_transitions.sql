-- The states the reconciliation of D moves refunds to, with the payment line that moved them.
-- publish applies them to refund_ledger and logs them in refund_ledger_events.
with

payments_matched as (
    select * from intermediate.int_payments_matched_to_refunds
    where moves_ledger
),

refunds_unanswered as (
    select * from intermediate.int_refunds_unanswered
),

answered as (
    select
        refund_id,
        outcome as status,
        source_file,
        line_number,
        response_code,
        response_message,
        detail
    from payments_matched
),

unanswered as (
    select
        refund_id,
        'UNANSWERED' as status,
        null::varchar as source_file,
        null::bigint as line_number,
        null::varchar as response_code,
        null::varchar as response_message,
        'no answer from ImaginePay ' || days_unanswered || ' days after ' || refund_file
            as detail
    from refunds_unanswered
),

transitions as (
    select * from answered
    union all
    select * from unanswered
),

final as (
    select
        getvariable('as_of_date') as as_of_date,
        transitions.*
    from transitions
)

select * from final
