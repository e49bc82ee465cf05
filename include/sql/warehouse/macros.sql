-- Parsing helpers shared by the staging models. Staging never guesses: a value that does not
-- read cleanly into its type becomes null, and the matching *_error macro says why.

-- A line without the mark the pipe feed gives a line that cannot be typed (pipe_feed.MARKS):
-- chr(1) not UTF-8, chr(2) a bare CR, chr(3) a NUL byte, chr(4) longer than DuckDB is given.
create or replace macro unmarked(line) as ltrim(line, chr(1) || chr(2) || chr(3) || chr(4));

-- RFC 4180 fields of one physical line, without surrounding blanks (inside quotes too: an id
-- or an amount never means its blanks); null when the quoting is broken. Blanks are ASCII spaces,
-- as in csv_records.split_fields and the cheap split's test: trim() alone also drops Unicode spaces
-- (U+00A0...), so a field would read one way or another by what the other fields hold.
-- The cheapest way that reads the line exactly: a line without a quote is split at its commas; a
-- line whose quotes only enclose fields that hold no quote or comma (every field quoted, an empty
-- one as "") has its quotes dropped and is split the same way (quoted_simply); only a quoted
-- comma, a doubled quote or a quoted line break takes the careful reading, whose regular
-- expressions cost many times the split. Fields are trimmed one by one only when one may have
-- blanks around it (blank_edged).
create or replace macro csv_fields(line) as
    case
        when not contains(line, '"') and not blank_edged(line) then string_split(line, ',')
        when not contains(line, '"')
            then list_transform(string_split(line, ','), lambda x: trim(x, ' '))
        when not quoted_simply(line)
            then case
                -- The mark of a line that cannot be typed (line_shape_error) would break a quoted
                -- first field, whose id must still count (id_value).
                when quoted_rfc_4180(unmarked(line))
                    then list_transform(
                        -- Each field after a comma, the first too: a pattern that may match empty
                        -- at the start (^|,) made the matcher step over the comma after an empty
                        -- first field, losing the second.
                        regexp_extract_all(',' || unmarked(line), ',("(?:[^"]|"")*"|[^,"]*)', 1),
                        lambda x: trim(case
                            when starts_with(x, '"') then replace(x[2:-2], '""', '"')
                            else x
                        end, ' ')
                    )
            end
        when not blank_edged(line) then string_split(replace(line, '"', ''), ',')
        else list_transform(string_split(replace(line, '"', ''), ','), lambda x: trim(x, ' '))
    end;

-- Whether a field of the line may start or end with a blank, inside its quotes or not: a blank
-- next to a comma, a quote or an end of the line.
create or replace macro blank_edged(line) as
    contains(line, ' ') and (
        contains(line, ', ') or contains(line, ' ,') or contains(line, '" ') or contains(line, ' "')
        or starts_with(line, ' ') or ends_with(line, ' ')
    );

-- Whether every quote of the line opens or closes a field that holds no quote and no comma: then
-- the quotes only mark where fields start and end, and dropping them leaves the fields split by
-- the line's commas. A line without a quote is one. One pass of a pattern without captures.
create or replace macro quoted_simply(line) as
    regexp_full_match(line, '(?:"[^",]*"|[^",]*)(?:,(?:"[^",]*"|[^",]*))*');

-- Whether the line's quoting is RFC 4180's: each field quoted whole, its quotes doubled, or
-- holding no quote.
create or replace macro quoted_rfc_4180(line) as
    regexp_full_match(line, '(?:"(?:[^"]|"")*"|[^,"]*)(?:,(?:"(?:[^"]|"")*"|[^,"]*))*');

-- Why a line's fields cannot be read, or null: not valid UTF-8, a bare CR, a NUL byte or too long
-- (the pipe feed marks such a line with a leading chr(1) to chr(4); one compare finds the four),
-- broken quoting (csv_fields gave null) or another number of fields than the file's header. A
-- line of the wrong shape gets that one reason: its fields mean nothing.
create or replace macro line_shape_error(raw_line, field_count, expected) as
    case
        when raw_line < chr(5)
            then case left(raw_line, 1)
                when chr(1) then 'line is not valid UTF-8'
                when chr(2) then 'line holds a bare CR (a carriage return not ending the line)'
                when chr(3) then 'line holds a NUL byte'
                else 'line is longer than 16 MiB (only its first 1 KiB is kept here)'
            end
        when field_count is null then 'line is not valid CSV (broken quoting)'
        when field_count <> expected
            then 'expected ' || expected || ' fields, found ' || field_count
    end;

-- A field as text: empty read as missing.
create or replace macro field_text(fields, i) as nullif(fields[i], '');

-- A line's id, its first field, as text: without the mark of a line that cannot be typed
-- (pipe_feed.readable), so that such a line still counts when its id is on two lines (CONTRACT 2).
create or replace macro id_value(field) as
    nullif(case when field < chr(5) then trim(unmarked(field), ' ') else field end, '');

create or replace macro id_text(fields) as id_value(fields[1]);

-- A line's id as staging reads it. The typing reads it only for the lines whose line_id_hash
-- repeats in an extract (stg_imaginepay__transactions.repeated_keys.sql), a handful.
create or replace macro line_id_text(line) as id_text(csv_fields(line));

-- An 8-byte hash of a line's id, which the typing takes as it numbers an extract's lines: the ids
-- repeated in a file are found by grouping these, then the lines whose hash repeats are read again
-- for their ids (stg_imaginepay__transactions.repeated_keys.sql). So it only has to be the same for
-- two lines of the same id, however written; it is taken from the line's text up to its first
-- comma, without marks, quotes and blanks, with no regular expression: quoting and blanks never
-- change an id, and an id holding a comma or a quote is only ever written quoted, which this reads
-- the same way every time.
create or replace macro line_id_hash(line) as
    hash(trim(replace(split_part(unmarked(line), ',', 1), '"', ''), ' '));

-- Money: plain decimal, at most two decimals, fits DECIMAL(18,2).
create or replace macro money_value(txt) as
    case
        when regexp_full_match(txt, '[+-]?[0-9]{1,16}(\.[0-9]{1,2})?')
            then txt::decimal(18, 2)
    end;

create or replace macro money_error(col, txt) as
    case
        when txt is null then col || ' is empty'
        when regexp_full_match(txt, '[+-]?[0-9]{1,16}(\.[0-9]{1,2})?') then null
        when regexp_full_match(txt, '[+-]?[0-9]{1,16}\.[0-9]{3,}')
            then col || ' has more than two decimals: ' || txt
        else col || ' is not a decimal number: ' || txt
    end;

create or replace macro iso_date_value(txt) as
    case
        when regexp_full_match(txt, '[0-9]{4}-[0-9]{2}-[0-9]{2}') then try_cast(txt as date)
    end;

create or replace macro iso_date_error(col, txt) as
    case
        when txt is null then col || ' is empty'
        when iso_date_value(txt) is null then col || ' is not a date (YYYY-MM-DD): ' || txt
    end;

create or replace macro code_error(col, txt, allowed) as
    case
        when txt is null then col || ' is empty'
        when not list_contains(allowed, upper(txt))
            then col || ' has unknown code ' || txt || ' (expected one of '
                || array_to_string(allowed, ', ') || ')'
    end;

-- CONTRACT 7, the one masking policy of the staging models: a typed line keeps its raw line only
-- when it is quarantined (dq_error), where a person reads it, and both the line and the error are
-- masked (error texts quote ids, which are kept as they are elsewhere). Every other column of
-- checked (the model's CTE before it, named as the argument) is kept as it is, in its place.
-- Temporary, like the card-number macros it calls (card_numbers.sql, which run after this file):
-- the warehouse file never depends on a function that only a run's process has.
create or replace temp macro quarantine_masked(checked) as table
    select
        * replace (
            case when dq_error is not null then mask_card_numbers(raw_line) end as raw_line,
            mask_card_numbers(dq_error) as dq_error
        )
    from query_table(checked);

-- A refund id is a pure function of the credit, so reruns and backfills reproduce it and a
-- credit can never hold two different live ids.
create or replace macro refund_id_for(credit_id) as
    'AR' || upper(substr(sha256('auto-refunds:' || credit_id), 1, 20));

-- The refund ledger's states in the one order they move in (CONTRACT 5, docs/design.md "A
-- refund answered twice"): a refund moves only to a state of a higher rank, so what it ends in
-- does not depend on the order its answers are reconciled in. An answer that says money moved
-- outranks a decline: once approved (and posted) or returned with another amount, a later
-- decline is raised for a person but frees nothing for the rules to refund again.
create or replace macro ledger_state_rank(status) as
    case status
        when 'SENT' then 0
        when 'UNANSWERED' then 1
        when 'DECLINED' then 2
        when 'AMOUNT_MISMATCH' then 3
        when 'REFUNDED' then 4
    end;

-- A move of the ledger from one state to another (the one rule int_payments_matched_to_refunds,
-- ledger_apply_transitions and ledger_backward_moves share): up the order above; or, of two
-- files answering alike, to the earlier file's answer, whichever was reconciled first, except
-- that a refunded refund keeps the approval that posted it. Null when a state is unknown.
create or replace macro ledger_moves_forward(from_status, from_date, to_status, to_date) as
    ledger_state_rank(to_status) > ledger_state_rank(from_status)
    or (
        to_status = from_status
        and to_status <> 'REFUNDED'
        and from_date > to_date
    );
