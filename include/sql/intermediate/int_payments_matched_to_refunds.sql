-- CONTRACT 5: each readable refund row of D's payment file against the refund we sent. Every row
-- acts by its own rule (outcome: REFUNDED, DECLINED, AMOUNT_MISMATCH, or UNMATCHED for a
-- refund_id we never sent), also when the refund was answered before:
-- - a refund is posted once: by the first approving line of a file, unless another date posted
--   it (to_post);
-- - the ledger moves by the file's highest-ranked answer (its first line of that rank), as
--   ledger_moves_forward (macros.sql) allows: moves_ledger;
-- - an answer acts once (acts: its exception is raised): the same answer is the same refund_id,
--   status, payment_amount and response_code, whatever its payment_id, file or line; it acts on
--   its first line in the file, unless the reconciliation of another date acted on it first
--   (main.payment_answers, acted). A rerun of D acts as D did.
with

stg_payments as (
    select * from staging.stg_imaginepay__payments
    where dq_error is null and refund_id is not null
),

refund_ledger as (
    select * from main.refund_ledger
),

refund_ledger_events as (
    select * from main.refund_ledger_events
),

payment_postings as (
    select * from main.payment_postings
),

posted_on_other_dates as (
    select distinct refund_id
    from payment_postings
    where refund_id is not null and as_of_date <> getvariable('as_of_date')
),

-- The answers the reconciliation of another date acted on, and the first such date.
acted_on_other_dates as (
    select
        refund_id,
        status,
        payment_amount,
        response_code,
        min(as_of_date) as acted_on
    from main.payment_answers
    where acted and as_of_date <> getvariable('as_of_date')
    group by refund_id, status, payment_amount, response_code
),

answered_on_other_dates as (
    select distinct refund_id
    from refund_ledger_events
    where
        status in ('REFUNDED', 'DECLINED', 'AMOUNT_MISMATCH')
        and as_of_date <> getvariable('as_of_date')
),

joined as (
    select
        stg_payments.*,
        refund_ledger.refund_id is not null as was_sent,
        refund_ledger.credit_id,
        refund_ledger.refund_amount,
        refund_ledger.requested_date,
        refund_ledger.status as ledger_status,
        refund_ledger.status_date as ledger_status_date,
        row_number() over (
            partition by stg_payments.refund_id order by stg_payments.line_number
        ) as line_rank,
        -- 1 on the first line of each answer in this file (nulls alike, as one answer).
        row_number() over (
            partition by
                stg_payments.refund_id,
                stg_payments.status,
                stg_payments.payment_amount,
                stg_payments.response_code
            order by stg_payments.line_number
        ) as answer_line_rank
    from stg_payments
    left join refund_ledger
        on stg_payments.refund_id = refund_ledger.refund_id
),

answered as (
    select
        *,
        case
            when not was_sent then 'UNMATCHED'
            when status = 'DECLINED' then 'DECLINED'
            when payment_amount = -refund_amount then 'REFUNDED'
            else 'AMOUNT_MISMATCH'
        end as outcome
    from joined
),

-- The one line of the file that may move the refund in the ledger.
ranked as (
    select
        *,
        row_number() over (
            partition by refund_id
            order by ledger_state_rank(outcome) desc, line_number
        ) as answer_rank
    from answered
),

-- The first approval of each refund in this file, the one line that may post it.
first_approvals as (
    select
        refund_id,
        min(line_number) as line_number,
        arg_min(payment_id, line_number) as payment_id
    from answered
    where outcome = 'REFUNDED'
    group by refund_id
),

placed as (
    select
        ranked.*,
        coalesce(
            ranked.line_number = first_approvals.line_number
            and posted_on_other_dates.refund_id is null,
            false
        ) as to_post,
        -- For a person reading a decline of money that moved; from this file alone, so that a
        -- rerun reads the same whatever was reconciled in between.
        case
            when first_approvals.line_number < ranked.line_number
                then first_approvals.payment_id
        end as approved_before_in_file,
        acted_on_other_dates.acted_on,
        ranked.was_sent
        and ranked.answer_line_rank = 1
        and acted_on_other_dates.refund_id is null as acts,
        ranked.was_sent
        and (
            ranked.line_rank > 1
            or answered_on_other_dates.refund_id is not null
        ) as answered_before,
        ranked.was_sent
        and ranked.answer_rank = 1
        and (
            ledger_moves_forward(
                ranked.ledger_status, ranked.ledger_status_date,
                ranked.outcome, getvariable('as_of_date')
            )
            -- A rerun of D sets what D set.
            or (
                ranked.outcome = ranked.ledger_status
                and ranked.ledger_status_date = getvariable('as_of_date')
            )
        ) as moves_ledger
    from ranked
    left join first_approvals
        on ranked.refund_id = first_approvals.refund_id
    left join posted_on_other_dates
        on ranked.refund_id = posted_on_other_dates.refund_id
    left join answered_on_other_dates
        on ranked.refund_id = answered_on_other_dates.refund_id
    left join acted_on_other_dates
        on
            ranked.refund_id = acted_on_other_dates.refund_id
            and ranked.status = acted_on_other_dates.status
            and ranked.payment_amount = acted_on_other_dates.payment_amount
            and ranked.response_code is not distinct from acted_on_other_dates.response_code
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
        outcome,
        to_post,
        moves_ledger,
        answered_before,
        answer_line_rank,
        acts,
        acted_on,
        -- Ids are kept as they are, but not in a text for a person (CONTRACT 7).
        mask_card_numbers(case outcome
            when 'REFUNDED' then 'approved, ' || payment_amount || ' as payment ' || payment_id
            when 'DECLINED'
                then
                    'declined ' || coalesce(response_code, '(no code)') || ' '
                    || coalesce(response_message, '')
                    || coalesce(
                        ' (this file approved it before, as payment '
                        || approved_before_in_file || ')',
                        ''
                    )
            when 'AMOUNT_MISMATCH'
                then
                    'ImaginePay returned ' || payment_amount || ' for a refund of '
                    || refund_amount || ' (payment ' || payment_id || ')'
        end) as detail
    from placed
)

select * from final
