-- One ImaginePay extract, one row per landing line, typed. The extracts accumulate, so this
-- model is built file by file: each extract is typed once, straight from the registered file
-- (landing_file), and its rows are kept until its content changes (models.build_per_file).
with

-- Read for every field from the numbered lines, never copied again: the extracts are the bulk
-- of the data, and a second copy of all their lines would spill to disk.
landing_transactions as not materialized (
    select * from landing_file
),

split as (
    select
        source_file,
        file_date,
        line_number,
        raw_line,
        csv_fields(raw_line) as parsed_fields
    from landing_transactions
),

renamed as not materialized (
    select
        source_file,
        file_date,
        line_number,
        raw_line,
        len(parsed_fields) as field_count,
        id_text(parsed_fields) as txn_id,
        field_text(parsed_fields, 2) as client_id,
        field_text(parsed_fields, 3) as account_id,
        upper(field_text(parsed_fields, 4)) as txn_type,
        field_text(parsed_fields, 5) as original_txn_id,
        field_text(parsed_fields, 6) as merchant_reference,
        -- The lines are read unmasked (landing.Source.masked_by_staging): an amount is the one
        -- field that could read cleanly holding a card number, so it is masked as it is read and
        -- such a line is quarantined; the other fields are masked below where they are kept.
        case
            when length(field_text(parsed_fields, 7)) >= 13
                then mask_card_numbers(field_text(parsed_fields, 7))
            else field_text(parsed_fields, 7)
        end as amount_text,
        field_text(parsed_fields, 8) as txn_date_text,
        upper(field_text(parsed_fields, 9)) as status,
        upper(field_text(parsed_fields, 10)) as card_type,
        upper(field_text(parsed_fields, 11)) as cvm,
        field_text(parsed_fields, 12) as card_exp,
        field_text(parsed_fields, 13) as card_token,
        field_text(parsed_fields, 14) as card_last4
    from split
),

-- Ids on more than one line of this file: every such line is ambiguous. Found by a statement
-- of its own before this one (stg_imaginepay__transactions.repeated_keys.sql).
duplicated_ids as (
    select
        txn_id,
        rows_with_txn_id
    from repeated_keys
),

typed as (
    select
        renamed.*,
        duplicated_ids.rows_with_txn_id,
        money_value(renamed.amount_text) as amount,
        iso_date_value(renamed.txn_date_text) as txn_date,
        regexp_full_match(renamed.card_exp, '(0[1-9]|1[0-2])/[0-9]{2}') as card_exp_is_valid,
        line_shape_error(renamed.raw_line, renamed.field_count, 14) as shape_error
    from renamed
    left join duplicated_ids
        on renamed.txn_id = duplicated_ids.txn_id
),

-- Read by the macro quarantine_masked(checked) below, a use sqlfluff does not see.
checked as (  -- noqa: ST03
    select
        source_file,
        file_date,
        line_number,
        raw_line,
        txn_id,
        client_id,
        account_id,
        txn_type,
        original_txn_id,
        merchant_reference,
        amount,
        txn_date,
        status,
        card_type,
        cvm,
        card_exp,
        card_token,
        card_last4,
        shape_error is null as has_fields,
        coalesce(
            shape_error,
            -- concat_ws skips the checks that passed (null).
            nullif(concat_ws(
                '; ',
                case when txn_id is null then 'txn_id is empty' end,
                case
                    when rows_with_txn_id > 1
                        then
                            'txn_id ' || txn_id || ' appears on '
                            || rows_with_txn_id || ' lines of this file'
                end,
                code_error('txn_type', txn_type, ['SALE', 'REFUND']),
                -- The error texts are built only for the values that failed to read.
                case when amount is null then money_error('amount', amount_text) end,
                case when amount <= 0 then 'amount must be above zero, found ' || amount_text end,
                case when txn_date is null then iso_date_error('txn_date', txn_date_text) end,
                code_error('status', status, ['SETTLED', 'PENDING', 'DECLINED', 'VOIDED']),
                -- Card fields describe the card a sale can be refunded to; a REFUND row may omit
                -- them, but what is there must read cleanly.
                case
                    when txn_type = 'SALE' or card_type is not null
                        then code_error('card_type', card_type, ['CREDIT', 'DEBIT', 'PREPAID'])
                end,
                case
                    when txn_type = 'SALE' or cvm is not null
                        then code_error('cvm', cvm, ['PIN', 'SIGNATURE', 'NONE'])
                end,
                case
                    when
                        (txn_type = 'SALE' or card_exp is not null)
                        and not coalesce(card_exp_is_valid, false)
                        then 'card_exp is not MM/YY'
                end,
                case
                    when
                        (txn_type = 'SALE' or card_last4 is not null)
                        and not coalesce(regexp_full_match(card_last4, '[0-9]{4}'), false)
                        then 'card_last4 is not 4 digits'
                end,
                case
                    when txn_type = 'SALE' and card_token is null then 'card_token is empty'
                end,
                -- CONTRACT 7: a card number where only a token or four digits may stand. The
                -- error names the field, never the value; one shorter than a card is skipped.
                case
                    when length(card_token) >= 13 and has_card_number(card_token)
                        then 'card_token holds a card number'
                end,
                case
                    when length(card_last4) >= 13 and has_card_number(card_last4)
                        then 'card_last4 holds a card number'
                end
            ), '')
        ) as dq_error
    from typed
),

-- The line kept on the lines that are quarantined, it and the error masked (CONTRACT 7).
masked as (
    select * from quarantine_masked(checked)
),

-- So is every field of a quarantined line but its ids: a field that read cleanly is a code, a
-- date, MM/YY, a checked token or four digits, and cannot hold one. The ids of a line whose
-- fields mean nothing are masked too, as its whole line is.
final as (
    select
        * exclude (has_fields) replace (
            mask_card_numbers_unless(has_fields, txn_id) as txn_id,
            mask_card_numbers_unless(has_fields, client_id) as client_id,
            mask_card_numbers_unless(has_fields, account_id) as account_id,
            mask_card_numbers_unless(has_fields, original_txn_id) as original_txn_id,
            mask_card_numbers_unless(has_fields, merchant_reference) as merchant_reference,
            mask_card_numbers_unless(dq_error is null, txn_type) as txn_type,
            mask_card_numbers_unless(dq_error is null, status) as status,
            mask_card_numbers_unless(dq_error is null, card_type) as card_type,
            mask_card_numbers_unless(dq_error is null, cvm) as cvm,
            mask_card_numbers_unless(dq_error is null, card_exp) as card_exp,
            mask_card_numbers_unless(dq_error is null, card_token) as card_token,
            mask_card_numbers_unless(dq_error is null, card_last4) as card_last4
        ),
        -- The file_date of the next readable version of this txn_id, once a later extract
        -- brings one (stg_imaginepay__transactions.supersede.sql); null while it is the latest.
        null::date as superseded_on
    from masked
)

select * from final
