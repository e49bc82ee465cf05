-- The floor: CONTRACT 3's rules as one hand-written DuckDB query straight over the CSVs, with no
-- landing, no line numbers, no quarantine, no ledger history and no quality gate. It is what the
-- refund decisions alone cost; `make bench` runs it beside the whole DAG.
-- Parameters: $credits, $transactions (a list of files), $client_rules, $as_of. strict_mode off:
-- a file whose lines end in LF and CRLF both (the quoted profile) is read, not refused.
copy (
    with
    credits as (
        select * from read_csv($credits, header = true, all_varchar = true, ignore_errors = true, strict_mode = false)
    ),

    typed_credits as (
        select
            credit_id,
            client_id,
            nullif(account_id, '') as account_id,
            try_cast(credit_amount as decimal(18, 2)) as credit_amount,
            try_cast(credit_date as date) as credit_date
        from credits
        where try_cast(credit_amount as decimal(18, 2)) is not null
    ),

    transactions as (
        select * from read_csv($transactions, header = true, all_varchar = true, ignore_errors = true, strict_mode = false, filename = true)
    ),

    known as (
        select
            txn_id,
            client_id,
            account_id,
            txn_type,
            original_txn_id,
            merchant_reference,
            try_cast(amount as decimal(18, 2)) as amount,
            try_cast(txn_date as date) as txn_date,
            status,
            card_type,
            cvm,
            card_token,
            last_day(try_strptime('01/' || card_exp, '%d/%m/%y')::date) as valid_through
        from transactions
        where try_cast(amount as decimal(18, 2)) > 0 and txn_id is not null
        qualify row_number() over (partition by txn_id order by filename desc) = 1
    ),

    refunded as (
        select original_txn_id as txn_id, sum(amount) as refunded
        from known
        where txn_type = 'REFUND' and status in ('SETTLED', 'PENDING')
        group by all
    ),

    remaining as (
        select
            s.*,
            s.amount - coalesce(r.refunded, 0) as remaining
        from known as s
        left join refunded as r on s.txn_id = r.txn_id
        where s.txn_type = 'SALE' and s.status = 'SETTLED' and s.txn_date <= $as_of
    ),

    rules as (
        select
            client_id,
            auto_refunds_enabled = 'true' as enabled,
            try_cast(nullif(min_balance_threshold, '') as decimal(18, 2)) as threshold,
            coalesce(try_cast(nullif(refund_window_days, '') as integer), 180) as window_days
        from read_csv($client_rules, header = true, all_varchar = true, ignore_errors = true, strict_mode = false)
    ),

    screened as (
        select
            c.*,
            r.window_days,
            case
                when not coalesce(r.enabled, false) then 'NOT_ENROLLED'
                when c.account_id is null or c.credit_amount <= 0 then 'MISSING_REQUIREMENTS'
                when c.credit_amount < r.threshold then 'BELOW_MIN_THRESHOLD'
            end as early
        from typed_credits as c
        left join rules as r on c.client_id = r.client_id
    ),

    candidates as (
        select
            c.credit_id,
            t.txn_id,
            t.txn_date,
            t.amount,
            t.remaining,
            t.card_token,
            case
                when t.remaining < c.credit_amount then 7
                when t.card_type = 'DEBIT' and t.cvm = 'PIN' then 8
                when $as_of > t.valid_through then 9
                when $as_of - t.txn_date > c.window_days then 10
                else 11
            end as step
        from screened as c
        inner join remaining as t on c.client_id = t.client_id and c.account_id = t.account_id
        where c.early is null
    ),

    best as (
        select
            credit_id,
            max(step) as last_step,
            arg_min(
                struct_pack(txn_id, remaining, card_token),
                struct_pack(neg_date := -epoch(txn_date), neg_amount := -amount, txn_id)
            ) filter (where step = 11) as chosen
        from candidates
        group by credit_id
    ),

    decided as (
        select
            s.*,
            case
                when s.early is not null then s.early
                when b.credit_id is null then 'NO_MATCHING_TRANSACTION'
                when b.last_step = 7 then 'CREDIT_EXCEEDS_TRANSACTION'
                when b.last_step = 8 then 'DEBIT_PIN_TRANSACTION'
                when b.last_step = 9 then 'CARD_EXPIRED'
                when b.last_step = 10 then 'REFUND_WINDOW_EXPIRED'
            end as reason,
            b.chosen
        from screened as s
        left join best as b on s.credit_id = b.credit_id
    ),

    allocated as (
        select
            *,
            sum(credit_amount) over (
                partition by chosen.txn_id order by credit_date, credit_id
            ) <= chosen.remaining as admitted
        from decided
        where reason is null
    )

    select
        'AR' || upper(substr(sha256('auto-refunds:' || credit_id), 1, 20)) as refund_id,
        client_id,
        account_id,
        credit_id,
        chosen.txn_id as original_txn_id,
        chosen.card_token,
        credit_amount as refund_amount
    from allocated
    where admitted
    order by refund_id
) to $output (header true);
