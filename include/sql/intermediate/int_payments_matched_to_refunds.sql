-- CONTRACT 5: each readable refund row of D's payment file against the refund we sent.
-- answer is what the row says (REFUNDED, DECLINED, AMOUNT_MISMATCH, or UNMATCHED for a
-- refund_id we never sent); ledger states only move forward, so a row answering a refund that
-- another file already answered is ALREADY_ANSWERED and changes nothing.
with

stg_payments as (
    select * from staging.stg_imaginepay__payments
    where dq_error is null and refund_id is not null
),

refund_ledger as (
    select * from main.refund_ledger
),

-- The first answer in the file wins; later lines for the same refund change nothing.
first_answers as (
    select
        *,
        row_number() over (partition by refund_id order by line_number) as answer_rank
    from stg_payments
),

joined as (
    select
        first_answers.*,
        refund_ledger.refund_id is not null as was_sent,
        refund_ledger.credit_id,
        refund_ledger.refund_amount,
        refund_ledger.requested_date,
        refund_ledger.status as ledger_status,
        coalesce(
            refund_ledger.status_source_file = first_answers.source_file
            and refund_ledger.status_line_number = first_answers.line_number,
            false
        ) as ledger_moved_by_this_line
    from first_answers
    left join refund_ledger
        on first_answers.refund_id = refund_ledger.refund_id
),

answered as (
    select
        *,
        case
            when not was_sent then 'UNMATCHED'
            when status = 'DECLINED' then 'DECLINED'
            when payment_amount = -refund_amount then 'REFUNDED'
            else 'AMOUNT_MISMATCH'
        end as answer
    from joined
),

final as (
    select
        source_file,
        line_number,
        payment_id,
        client_id,
        account_id,
        txn_id,
        refund_id,
        credit_id,
        payment_amount,
        refund_amount,
        requested_date,
        status,
        response_code,
        response_message,
        processed_date,
        ledger_status,
        case
            when answer = 'UNMATCHED' then answer
            when answer_rank > 1 then 'ALREADY_ANSWERED'
            -- A rerun of D meets the states its own file set: the same answer again.
            when ledger_moved_by_this_line or ledger_status in ('SENT', 'UNANSWERED')
                then answer
            else 'ALREADY_ANSWERED'
        end as outcome
    from answered
)

select * from final
