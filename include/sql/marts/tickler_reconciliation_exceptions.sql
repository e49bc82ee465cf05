-- The Refund Exceptions tickler rows that the reconciliation of D raises (CONTRACT 5), with the
-- refund_id; publish replaces D's RECONCILIATION rows with these.
with

transitions as (
    select * from marts.refund_ledger_transitions
    where status in ('DECLINED', 'AMOUNT_MISMATCH', 'UNANSWERED')
),

refund_ledger as (
    select * from main.refund_ledger
),

final as (
    select
        transitions.as_of_date,
        refund_ledger.credit_id,
        refund_ledger.client_id,
        refund_ledger.account_id,
        refund_ledger.refund_amount as credit_amount,
        case transitions.status
            when 'DECLINED' then 'REFUND_DECLINED'
            when 'AMOUNT_MISMATCH' then 'RETURN_AMOUNT_MISMATCH'
            when 'UNANSWERED' then 'NO_PROCESSOR_RESPONSE'
        end as reason_code,
        'refund ' || transitions.refund_id || ': ' || transitions.detail as reason_detail,
        'RECONCILIATION' as source,
        transitions.refund_id
    from transitions
    inner join refund_ledger
        on transitions.refund_id = refund_ledger.refund_id
)

select * from final
