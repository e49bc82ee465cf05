-- ImaginePay's payment file of D, one row per landing line, typed.
with

landing_payments as (
    select * from landing.imaginepay__payments
    where file_date = getvariable('as_of_date')
),

split as (
    select
        source_file,
        line_number,
        raw_line,
        csv_fields(raw_line) as parsed_fields
    from landing_payments
),

renamed as materialized (
    select
        source_file,
        line_number,
        raw_line,
        len(parsed_fields) as field_count,
        id_text(parsed_fields) as payment_id,
        field_text(parsed_fields, 2) as client_id,
        field_text(parsed_fields, 3) as account_id,
        field_text(parsed_fields, 4) as txn_id,
        field_text(parsed_fields, 5) as refund_id,
        field_text(parsed_fields, 6) as payment_amount_text,
        upper(field_text(parsed_fields, 7)) as status,
        field_text(parsed_fields, 8) as response_code,
        -- Free text from the processor: a card number in it is masked, the row goes on.
        mask_card_numbers(field_text(parsed_fields, 9)) as response_message,
        field_text(parsed_fields, 10) as processed_date_text
    from split
),

-- Ids on more than one line of one file: every such line is ambiguous.
duplicated_ids as (
    select
        source_file,
        payment_id,
        count(*) as rows_with_payment_id
    from renamed
    where payment_id is not null
    group by source_file, payment_id
    having count(*) > 1
),

typed as (
    select
        renamed.*,
        duplicated_ids.rows_with_payment_id,
        money_value(renamed.payment_amount_text) as payment_amount,
        iso_date_value(renamed.processed_date_text) as processed_date
    from renamed
    left join duplicated_ids
        on
            renamed.source_file = duplicated_ids.source_file
            and renamed.payment_id = duplicated_ids.payment_id
),

-- Read by the macro quarantine_masked(checked) below, a use sqlfluff does not see.
checked as (  -- noqa: ST03
    select
        source_file,
        line_number,
        raw_line,
        payment_id,
        client_id,
        account_id,
        txn_id,
        refund_id,
        payment_amount,
        status,
        response_code,
        response_message,
        processed_date,
        coalesce(
            line_shape_error(raw_line, field_count, 10),
            -- concat_ws skips the checks that passed (null).
            nullif(concat_ws(
                '; ',
                case when payment_id is null then 'payment_id is empty' end,
                case
                    when rows_with_payment_id > 1
                        then
                            'payment_id ' || payment_id || ' appears on '
                            || rows_with_payment_id || ' lines of this file'
                end,
                case
                    when payment_amount is null
                        then money_error('payment_amount', payment_amount_text)
                end,
                code_error('status', status, ['APPROVED', 'DECLINED']),
                case
                    when processed_date is null
                        then iso_date_error('processed_date', processed_date_text)
                end
            ), '')
        ) as dq_error
    from typed
),

-- The line kept on the lines that are quarantined, it and the error masked (CONTRACT 7).
final as (
    select * from quarantine_masked(checked)
)

select * from final
