-- The warehouse's durable tables. Idempotent: run at every connection.
-- The models' build schemas (staging, intermediate, marts) are rebuilt by each run; these tables
-- are only changed by the publish steps, each in one transaction.

create schema if not exists landing;
create schema if not exists staging;
create schema if not exists intermediate;
create schema if not exists marts;

-- Every landing file loaded, with the hash of its content: a file is read again only when its
-- content changes, and a file that arrives twice under two names is recognised.
create table if not exists landing.files (
    source_file varchar primary key,
    file_kind varchar not null,
    file_date date,
    sha256 varchar not null,
    data_lines bigint not null,
    -- False: some lines are not UTF-8; they are read marked, and quarantined (pipe_feed.readable).
    valid_utf8 boolean not null default true,
    -- False: its lines end in both LF and CRLF, or some hold a bare CR or a NUL byte. Null:
    -- registered before it was kept, taken as false until landing registers the file again
    -- (landing.land).
    plain_lines boolean,
    -- True: its lines end in both LF and CRLF, and none holds a bare CR or a NUL byte; DuckDB
    -- reads them as they are, in one thread. False with plain_lines false: they are read through
    -- the pipe feed, those that cannot be typed marked (fingerprints.Reading). Null as above.
    mixed_line_ends boolean,
    -- The number of columns of its header: a client rules file may have an optional last one
    -- (CONTRACT 2). Null: registered before it was kept, with the contract's header.
    header_fields integer
);

alter table landing.files add column if not exists valid_utf8 boolean default true;
alter table landing.files add column if not exists header_fields integer;
alter table landing.files add column if not exists plain_lines boolean;
alter table landing.files add column if not exists mixed_line_ends boolean;

-- What a registered ImaginePay extract looked like on disk when it was hashed: an extract whose
-- size, modification and change times and inode are all the same is not hashed again (every
-- extract up to D is registered each night, and the first holds the whole card history). The
-- typing hashes a file again whenever it types it. The four are kept as one digest
-- (daily._known_print): a time in nanoseconds is 19 digits, which pass Luhn one time in ten
-- and would read as a card number (CONTRACT 7).
create table if not exists landing.file_stat_digests (
    source_file varchar primary key,
    stat_digest varchar not null,
    sha256 varchar not null,
    valid_utf8 boolean not null,
    -- Null: hashed before they were kept; such a row is hashed again.
    plain_lines boolean,
    mixed_line_ends boolean
);

alter table landing.file_stat_digests add column if not exists plain_lines boolean;
alter table landing.file_stat_digests add column if not exists mixed_line_ends boolean;

-- The same, as it was kept before: a cache, rebuilt by hashing each extract once.
drop table if exists landing.file_stats;

-- ImaginePay extracts typed so far, by content and by version of the staging model (sha256
-- of its SQL and macros): staging.stg_imaginepay__transactions keeps their typed lines, and a
-- file is typed again only when either changes. Its lines are never copied in (landing.py).
create table if not exists staging.typed_files (
    source_file varchar primary key,
    file_kind varchar not null,
    sha256 varchar not null,
    model_version varchar not null
);

-- Every landing row exactly as it arrived, with its file and line (line 1 is the header).
create table if not exists landing.imagineone__credits (
    source_file varchar not null,
    file_date date not null,
    line_number bigint not null,
    raw_line varchar
);

create table if not exists landing.imagineone__client_rules (
    source_file varchar not null,
    line_number bigint not null,
    raw_line varchar
);

create table if not exists landing.imaginepay__payments (
    source_file varchar not null,
    file_date date not null,
    line_number bigint not null,
    raw_line varchar
);

-- CONTRACT 2: rows that could not be read, never silently dropped.
create table if not exists main.quarantine_rows (
    source_file varchar not null,
    line_number bigint not null,
    raw_line varchar,
    error varchar not null
);

-- CONTRACT 4: one partition per as_of_date.
create table if not exists main.tickler_true_refunds_due (
    as_of_date date not null,
    refund_id varchar not null,
    credit_id varchar not null,
    client_id varchar not null,
    account_id varchar not null,
    original_txn_id varchar not null,
    card_token varchar,
    card_last4 varchar,
    refund_amount decimal(18, 2) not null
);

create table if not exists main.tickler_refund_exceptions (
    as_of_date date not null,
    credit_id varchar,
    client_id varchar,
    account_id varchar,
    credit_amount decimal(18, 2),
    reason_code varchar not null,
    reason_detail varchar not null,
    source varchar not null,
    refund_id varchar
);

-- Every credit of every snapshot with its one outcome: the audit trail of the rules.
create table if not exists main.credit_outcomes (
    as_of_date date not null,
    credit_id varchar not null,
    client_id varchar,
    account_id varchar,
    credit_amount decimal(18, 2) not null,
    credit_date date not null,
    outcome varchar not null,
    reason_code varchar,
    reason_detail varchar,
    original_txn_id varchar,
    refund_id varchar,
    card_token varchar,
    card_last4 varchar
);

-- The refund ledger: every refund ever published to ImaginePay, one row per refund, and the
-- state the processor's answers moved it to. Written only from published refund files, so it
-- never holds a refund that was not sent, and never misses one that was.
create table if not exists main.refund_ledger (
    refund_id varchar primary key,
    credit_id varchar not null,
    client_id varchar not null,
    account_id varchar not null,
    original_txn_id varchar not null,
    card_token varchar,
    refund_amount decimal(18, 2) not null,
    requested_date date not null,
    refund_file varchar not null,
    status varchar not null,
    status_date date not null,
    status_source_file varchar,
    status_line_number bigint,
    response_code varchar,
    response_message varchar
);

-- Each state a refund entered, in order: SENT, then REFUNDED, DECLINED, AMOUNT_MISMATCH or
-- UNANSWERED (and from UNANSWERED a late answer).
create table if not exists main.refund_ledger_events (
    refund_id varchar not null,
    status varchar not null,
    as_of_date date not null,
    source_file varchar,
    line_number bigint,
    detail varchar
);

-- Each answer of a payment file to a refund we sent, one row per date and answer (its first line):
-- the same answer is the same refund_id, status, payment_amount and response_code, whatever the
-- payment_id, file or line. acted: this date's reconciliation acted on it (raised its exception),
-- since no other date's had; an answer acts once, in the reconciliation that first holds it, and
-- in that date's reruns. Written by the reconciliation's publish, one partition per date.
create table if not exists main.payment_answers (
    as_of_date date not null,
    refund_id varchar not null,
    status varchar not null,
    payment_amount decimal(18, 2) not null,
    response_code varchar,
    outcome varchar not null,
    source_file varchar not null,
    line_number bigint not null,
    payment_id varchar not null,
    acted boolean not null
);

-- One row per published refund file: its manifest.
create table if not exists main.refund_files (
    as_of_date date primary key,
    file_name varchar not null,
    record_count bigint not null,
    total_amount decimal(18, 2) not null,
    sha256 varchar not null
);

-- CONTRACT 5: the postings sent to ImagineOne, one partition per reconciliation date.
create table if not exists main.payment_postings (
    as_of_date date not null,
    payment_id varchar not null,
    client_id varchar,
    account_id varchar,
    txn_id varchar,
    refund_id varchar,
    payment_amount decimal(18, 2) not null,
    processed_date date
);

-- Refund rows of a payment file whose refund_id was never sent: never posted.
create table if not exists main.unmatched_returns (
    as_of_date date not null,
    source_file varchar not null,
    line_number bigint not null,
    payment_id varchar,
    client_id varchar,
    account_id varchar,
    txn_id varchar,
    refund_id varchar,
    payment_amount decimal(18, 2),
    status varchar,
    response_code varchar,
    response_message varchar,
    processed_date date
);

-- One row per reconciliation published: its postings file. The warehouse is committed first
-- (ledger moves, exceptions, postings rows and this row, delivered = false), then the file is
-- written from main.payment_postings and marked delivered; any later run delivers a file a kill
-- left undelivered (reconciliation.deliver_postings).
create table if not exists main.postings_files (
    as_of_date date primary key,
    file_name varchar not null,
    record_count bigint not null,
    total_amount decimal(18, 2) not null,
    sha256 varchar not null,
    delivered boolean not null
);

-- Every publication that changed the ledger or the postings, in order. A decision remembers the
-- generation it read (main.working_decisions): a later generation means another run published
-- in between, and the decision is made again before anything is published.
create table if not exists main.publications (
    generation bigint primary key,
    run_kind varchar not null,
    as_of_date date not null
);

-- What the working schemas (staging, intermediate, marts) hold for each kind of run: the date,
-- the inputs and the generation they were decided from, the models built so far in order, and
-- whether the quality gate passed on them (decision.py).
create table if not exists main.working_decisions (
    run_kind varchar primary key,
    as_of_date date not null,
    inputs_sha256 varchar not null,
    generation bigint not null,
    models_built varchar[] not null,
    audited boolean not null
);

-- Guards the database itself keeps, whatever the code above it does (CONTRACT 7). A refund_id
-- is the ledger's primary key; DuckDB has no partial unique index, so "one live refund per
-- credit" is checked by the statements that write the ledger (include/sql/publish/).
create unique index if not exists refund_ledger_events_one_per_state
on main.refund_ledger_events (refund_id, status);

create unique index if not exists payment_postings_one_per_payment
on main.payment_postings (payment_id);

-- Every payment file reconciled, by date; a file whose content was already reconciled under
-- another name is recorded as a duplicate and changes nothing.
create table if not exists main.payment_files (
    as_of_date date primary key,
    source_file varchar not null,
    sha256 varchar not null,
    duplicate_of varchar
);

-- CONTRACT 9: every attempt to deliver a file to a location (an Airflow connection), and its
-- outcome: DELIVERED, ALREADY_THERE (the identical file was there: nothing done), CONFLICT (a
-- different file is there: never overwritten), FAILED (error names the location and the file),
-- STARTED (under way, or its process was killed: the next attempt marks it INTERRUPTED).
create table if not exists main.file_deliveries (
    as_of_date date not null,
    file varchar not null,
    sha256 varchar not null,
    destination varchar not null,
    remote_path varchar not null,
    attempt integer not null,
    started_at timestamptz not null,
    finished_at timestamptz,
    outcome varchar not null,
    error varchar
);
