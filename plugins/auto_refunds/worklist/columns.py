"""The columns of what the worklist reads, each defined once.

A snapshot file (``snapshot``) is a ``SnapshotFile``: its columns with their DuckDB types, and
where date D's rows come from in the warehouse. From that one definition come the query a refresh
copies to Parquet (``SnapshotFile.query``) and the empty frame the pages read for dates without a
snapshot (``SnapshotFile.empty``, in ``queries``). The two queues people work, the Refund
Exceptions and the True Refunds Due ticklers, are a ``Queue`` each over their file: the column
totalled, the columns a person may sort by and the row key that ends every sort. The resolutions
store's columns (``resolutions``, and its Arrow schema in ``queries``) are ``RESOLUTION_COLUMNS``.

No card_token here: the pages show card_last4 only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DATE = "date"
TEXT = "varchar"
MONEY = "decimal(18,2)"
BIGINT = "bigint"
# A moment in UTC (the warehouse's timestamptz, as UTC): the pages show it with ``when``.
TIMESTAMP = "timestamp"
BOOLEAN = "boolean"


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    # The warehouse expression it is read from, when not the column of the same name.
    source: str = ""

    @property
    def select(self) -> str:
        return f"{self.source} as {self.name}" if self.source else self.name


@dataclass(frozen=True)
class SnapshotFile:
    """One Parquet file of a date's snapshot: ``<name>.parquet``."""

    name: str
    columns: tuple[Column, ...]
    # The FROM and WHERE of D's rows in the warehouse (parameter $as_of).
    rows_from: str
    # Sorted by credit_id first, so that looking up one credit reads few row groups.
    order_by: str

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    def query(self) -> str:
        """D's rows in the warehouse, as written to the file."""
        selected = ", ".join(column.select for column in self.columns)
        return f"select {selected} from {self.rows_from} order by {self.order_by}"

    def empty(self) -> str:
        """No rows, the file's columns and types: what the pages read for a date without one."""
        nulls = ", ".join(f"null::{column.type} as {column.name}" for column in self.columns)
        return f"select {nulls} where false"


@dataclass(frozen=True)
class Queue:
    """A tickler as a work queue: its page, CSV and filters (``queries``)."""

    kind: str
    file: SnapshotFile
    # The column a page totals.
    amount: str
    # The row's key, in order: the end of every sort, so that pages are stable.
    key: tuple[str, ...]
    # What a person may sort by: the name in the URL and the column.
    sorts: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = {self.amount, *self.key, *self.sorts.values()} - set(self.file.names)
        if unknown:
            raise ValueError(f"queue {self.kind}: not columns of {self.file.name}: {unknown}")


OUTCOMES = SnapshotFile(
    "outcomes",
    (
        Column("as_of_date", DATE),
        Column("credit_id", TEXT),
        Column("client_id", TEXT),
        Column("account_id", TEXT),
        Column("credit_amount", MONEY),
        Column("credit_date", DATE),
        Column("outcome", TEXT),
        Column("reason_code", TEXT),
        Column("reason_detail", TEXT),
        Column("original_txn_id", TEXT),
        Column("refund_id", TEXT),
        Column("card_last4", TEXT),
    ),
    rows_from="main.credit_outcomes where as_of_date = $as_of",
    order_by="credit_id",
)

REFUNDS_DUE = SnapshotFile(
    "refunds_due",
    (
        Column("as_of_date", DATE),
        Column("refund_id", TEXT),
        Column("credit_id", TEXT),
        Column("client_id", TEXT),
        Column("account_id", TEXT),
        Column("original_txn_id", TEXT),
        Column("card_last4", TEXT),
        Column("refund_amount", MONEY),
    ),
    rows_from="main.tickler_true_refunds_due where as_of_date = $as_of",
    order_by="credit_id",
)

EXCEPTIONS = SnapshotFile(
    "exceptions",
    (
        Column("as_of_date", DATE),
        Column("credit_id", TEXT),
        Column("client_id", TEXT),
        Column("account_id", TEXT),
        Column("credit_amount", MONEY),
        Column("reason_code", TEXT),
        Column("reason_detail", TEXT),
        Column("source", TEXT),
        Column("refund_id", TEXT),
    ),
    rows_from="main.tickler_refund_exceptions where as_of_date = $as_of",
    order_by="credit_id, source, reason_code",
)

LEDGER_EVENTS = SnapshotFile(
    "ledger_events",
    (
        Column("as_of_date", DATE, "e.as_of_date"),
        Column("credit_id", TEXT, "l.credit_id"),
        Column("client_id", TEXT, "l.client_id"),
        Column("refund_id", TEXT, "e.refund_id"),
        Column("status", TEXT, "e.status"),
        Column("source_file", TEXT, "e.source_file"),
        Column("line_number", BIGINT, "e.line_number"),
        Column("detail", TEXT, "e.detail"),
        Column("refund_amount", MONEY, "l.refund_amount"),
    ),
    rows_from="main.refund_ledger_events as e join main.refund_ledger as l using (refund_id) "
    "where e.as_of_date = $as_of",
    order_by="l.credit_id, e.refund_id",
)

POSTINGS = SnapshotFile(
    "postings",
    (
        Column("as_of_date", DATE, "p.as_of_date"),
        Column("credit_id", TEXT, "l.credit_id"),
        Column("payment_id", TEXT, "p.payment_id"),
        Column("client_id", TEXT, "p.client_id"),
        Column("account_id", TEXT, "p.account_id"),
        Column("txn_id", TEXT, "p.txn_id"),
        Column("refund_id", TEXT, "p.refund_id"),
        Column("payment_amount", MONEY, "p.payment_amount"),
        Column("processed_date", DATE, "p.processed_date"),
    ),
    rows_from="main.payment_postings as p left join main.refund_ledger as l using (refund_id) "
    "where p.as_of_date = $as_of",
    order_by="l.credit_id, p.payment_id",
)

# Each file delivered for D to each location (``delivery``): its successful attempt when one
# succeeded (DELIVERED before ALREADY_THERE, ``delivery``'s outcomes), else its last attempt,
# with how many were made.
DELIVERIES = SnapshotFile(
    "deliveries",
    (
        Column("as_of_date", DATE, "d.as_of_date"),
        Column("file", TEXT, "d.file"),
        Column("destination", TEXT, "d.destination"),
        Column("remote_path", TEXT, "d.remote_path"),
        Column("outcome", TEXT, "d.outcome"),
        Column("delivered", BOOLEAN, "d.outcome in ('DELIVERED', 'ALREADY_THERE')"),
        Column("attempts", BIGINT, "d.attempts"),
        Column("finished_at", TIMESTAMP, "timezone('UTC', d.finished_at)"),
        Column("error", TEXT, "d.error"),
    ),
    rows_from="(select *, count(*) over (partition by file, destination) as attempts "
    "from main.file_deliveries where as_of_date = $as_of "
    "qualify row_number() over (partition by file, destination order by "
    "case outcome when 'DELIVERED' then 0 when 'ALREADY_THERE' then 1 else 2 end, "
    "attempt desc) = 1) as d",
    order_by="d.destination, d.file",
)

# Every file of a date's snapshot, in the order a refresh writes them.
SNAPSHOT_FILES = {
    file.name: file
    for file in (OUTCOMES, REFUNDS_DUE, EXCEPTIONS, LEDGER_EVENTS, POSTINGS, DELIVERIES)
}

QUEUES = {
    queue.kind: queue
    for queue in (
        Queue(
            "exceptions",
            EXCEPTIONS,
            amount="credit_amount",
            key=("as_of_date", "credit_id", "source", "reason_code", "refund_id"),
            sorts={
                "date": "as_of_date",
                "credit": "credit_id",
                "client": "client_id",
                "amount": "credit_amount",
                "reason": "reason_code",
                "source": "source",
            },
        ),
        Queue(
            "refunds_due",
            REFUNDS_DUE,
            amount="refund_amount",
            key=("as_of_date", "credit_id", "refund_id"),
            sorts={
                "date": "as_of_date",
                "credit": "credit_id",
                "client": "client_id",
                "amount": "refund_amount",
                "refund": "refund_id",
            },
        ),
    )
}

# What a resolution names: one exception of one date (``resolutions.ExceptionKey``'s fields).
EXCEPTION_KEY = ("as_of_date", "source", "credit_id", "reason_code", "refund_id")
# What the exceptions queue shows of the resolution in force.
RESOLUTION_SHOWN = ("resolution", "note", "resolved_by", "resolved_at")
# A row of the resolutions store, as read (its table's columns, in order).
RESOLUTION_COLUMNS = (
    Column("id", BIGINT),
    *(Column(name, TEXT) for name in EXCEPTION_KEY),
    *(Column(name, TEXT) for name in RESOLUTION_SHOWN),
)
