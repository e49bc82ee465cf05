"""Work items (CONTRACT 8): the exceptions of every date, as the problems people work.

One item per credit and problem. A credit's exception rows are walked in date order: a row opens
an item unless the credit has an open one, which it then updates (last seen, current reason,
detail, amount). An open item closes by itself when a later snapshot no longer holds the credit,
or when its refund ends REFUNDED after the item was last seen. A resolved item (one of its rows
has a resolution in force, from that row's date on) stays resolved while later rows report the
same reason_code and amount; another reason_code or amount opens a new item.

Why a function of everything rather than an update per run: dates are run, backfilled and rerun
in any order, and a rerun replaces its date's rows. Rebuilt whole from every date's ticklers, the
snapshots' credits, the ledger and the resolutions, the items are the same whatever that order.
``build`` is that function, on plain rows; ``rebuild`` feeds it from the warehouse and writes
``main.tickler_items`` (at each refresh, after a publish) and the file the pages read.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

log = logging.getLogger(__name__)

OPEN, RESOLVED, CLOSED = "OPEN", "RESOLVED", "CLOSED"

# main.tickler_items, in order (CONTRACT 8).
COLUMNS = (
    ("credit_id", "varchar"),
    ("client_id", "varchar"),
    ("account_id", "varchar"),
    ("credit_amount", "decimal(18,2)"),
    ("reason_code", "varchar"),
    ("reason_detail", "varchar"),
    ("source", "varchar"),
    ("refund_id", "varchar"),
    ("first_seen", "date"),
    ("last_seen", "date"),
    ("due_on", "date"),
    ("status", "varchar"),
    ("closed_reason", "varchar"),
    ("assigned_to", "varchar"),
    ("follow_up_on", "date"),
    ("resolution", "varchar"),
    ("resolved_by", "varchar"),
    ("resolved_at", "varchar"),
)
NAMES = tuple(name for name, _ in COLUMNS)

# main.tickler_item_history: each change of an item, in order. An item is (credit_id,
# first_seen). OPENED and CHANGED carry the exception row's values; RESOLVED the resolution in
# force from that date; CLOSED why.
HISTORY_COLUMNS = (
    ("credit_id", "varchar"),
    ("first_seen", "date"),
    ("seq", "integer"),
    ("as_of_date", "date"),
    ("event", "varchar"),
    ("reason_code", "varchar"),
    ("reason_detail", "varchar"),
    ("credit_amount", "decimal(18,2)"),
    ("source", "varchar"),
    ("refund_id", "varchar"),
    ("detail", "varchar"),
)
HISTORY_NAMES = tuple(name for name, _ in HISTORY_COLUMNS)


@dataclass(frozen=True)
class Exception_:
    """One exception row of one date (main.tickler_refund_exceptions)."""

    as_of_date: dt.date
    credit_id: str
    client_id: str | None
    account_id: str | None
    credit_amount: Decimal
    reason_code: str
    reason_detail: str | None
    source: str
    refund_id: str = ""

    @property
    def key(self) -> tuple:
        """The row's key in the resolutions store (``resolutions.ExceptionKey``)."""
        return (self.as_of_date, self.source, self.credit_id, self.reason_code, self.refund_id)


@dataclass(frozen=True)
class Resolution:
    """The resolution in force of one exception row."""

    resolution: str
    resolved_by: str
    resolved_at: str
    order: int = 0
    """The store's id: among an item's rows, the latest resolution recorded wins."""


@dataclass
class Item:
    credit_id: str
    client_id: str | None
    account_id: str | None
    credit_amount: Decimal
    reason_code: str
    reason_detail: str | None
    source: str
    refund_id: str | None
    first_seen: dt.date
    last_seen: dt.date
    due_on: dt.date | None = None
    status: str = OPEN
    closed_reason: str | None = None
    assigned_to: str | None = None
    follow_up_on: dt.date | None = None
    resolution: str | None = None
    resolved_by: str | None = None
    resolved_at: str | None = None
    _order: int = -1
    history: list = field(default_factory=list)

    def row(self) -> dict:
        return {name: getattr(self, name) for name in NAMES}

    def note(self, day: dt.date, event: str, row: Exception_ | None = None, detail=None) -> None:
        values = {
            name: getattr(row, name) if row is not None else None
            for name in ("reason_code", "reason_detail", "credit_amount", "source", "refund_id")
        }
        if row is not None:
            values["refund_id"] = row.refund_id or None
        self.history.append(
            {
                "credit_id": self.credit_id,
                "first_seen": self.first_seen,
                "seq": len(self.history) + 1,
                "as_of_date": day,
                "event": event,
                **values,
                "detail": detail,
            }
        )

    def take(self, row: Exception_) -> None:
        # The detail alone is no change: it names the date (e.g. "on or before D") each day.
        shown = (self.reason_code, self.credit_amount, self.source, self.refund_id or "")
        if shown != (row.reason_code, row.credit_amount, row.source, row.refund_id):
            self.note(row.as_of_date, "CHANGED", row)
        self.client_id, self.account_id = row.client_id, row.account_id
        self.credit_amount, self.reason_code = row.credit_amount, row.reason_code
        self.reason_detail, self.source = row.reason_detail, row.source
        self.refund_id = row.refund_id or None
        self.last_seen = row.as_of_date

    def resolve(self, day: dt.date, found: Resolution) -> None:
        if found.order > self._order:
            self.status = RESOLVED
            self.resolution, self.resolved_by = found.resolution, found.resolved_by
            self.resolved_at, self._order = found.resolved_at, found.order
            self.note(day, RESOLVED, detail=f"{found.resolution} by {found.resolved_by}")

    def close(self, day: dt.date, why: str) -> None:
        self.status, self.closed_reason = CLOSED, why
        self.note(day, CLOSED, detail=why)


def _same_problem(item: Item, row: Exception_) -> bool:
    return item.reason_code == row.reason_code and item.credit_amount == row.credit_amount


def walk(
    exceptions: Iterable[Exception_],
    snapshots: dict[dt.date, set[str]],
    refunded: Iterable[tuple[dt.date, str, str]] = (),
    resolutions: dict[tuple, Resolution] | None = None,
    due_on: dict[str, dt.date] | None = None,
) -> list[dict]:
    """The items, each with its history, sorted by credit_id and first_seen.

    exceptions: every date's exception rows. snapshots: for each date with a snapshot of
    ImagineOne, the credit_ids it held (only those with exceptions are needed). refunded: (date,
    credit_id, refund_id) of each refund that ended REFUNDED on that date. resolutions: the
    resolution in force of each exception row, by ``Exception_.key``. due_on: by credit_id.
    """
    resolutions = resolutions or {}
    due_on = due_on or {}
    rows_of: dict[str, list[Exception_]] = defaultdict(list)
    for row in exceptions:
        rows_of[row.credit_id].append(row)
    refunds_of: dict[str, list[tuple[dt.date, str]]] = defaultdict(list)
    for day, credit_id, refund_id in refunded:
        refunds_of[credit_id].append((day, refund_id))
    snapshot_days = sorted(snapshots)

    items: list[Item] = []
    for credit_id in sorted(rows_of):
        # Within a date: ELIGIBILITY first (the daily run), then RECONCILIATION, each sorted.
        by_day: dict[dt.date, list[Exception_]] = defaultdict(list)
        for row in sorted(
            rows_of[credit_id], key=lambda r: (r.as_of_date, r.source, r.reason_code, r.refund_id)
        ):
            by_day[row.as_of_date].append(row)
        refunds = sorted(refunds_of.get(credit_id, []))
        days = sorted(set(by_day) | set(snapshot_days) | {day for day, _ in refunds})
        current: Item | None = None
        for day in days:
            for row in by_day.get(day, []):
                if current is not None and (
                    current.status == OPEN
                    or (current.status == RESOLVED and _same_problem(current, row))
                ):
                    current.take(row)
                else:
                    current = Item(
                        credit_id=credit_id,
                        client_id=row.client_id,
                        account_id=row.account_id,
                        credit_amount=row.credit_amount,
                        reason_code=row.reason_code,
                        reason_detail=row.reason_detail,
                        source=row.source,
                        refund_id=row.refund_id or None,
                        first_seen=day,
                        last_seen=day,
                        due_on=due_on.get(credit_id),
                    )
                    current.note(day, "OPENED", row)
                    items.append(current)
                found = resolutions.get(row.key)
                if found is not None:
                    current.resolve(day, found)
            if current is None or current.status != OPEN or current.last_seen >= day:
                continue
            if day in snapshots and credit_id not in snapshots[day]:
                current.close(day, f"credit no longer in the snapshot of {day}")
                continue
            for refunded_on, refund_id in refunds:
                if refunded_on == day:
                    current.close(day, f"refund {refund_id} ended REFUNDED on {day}")
                    break
    return sorted(items, key=lambda i: (i.credit_id, i.first_seen))


def build(*args, **kwargs) -> list[dict]:
    """``walk``'s items as rows of main.tickler_items."""
    return [item.row() for item in walk(*args, **kwargs)]


# -- from the warehouse ----------------------------------------------------------------------

_EXCEPTIONS = """
    select as_of_date, credit_id, client_id, account_id, credit_amount, reason_code,
        reason_detail, source, coalesce(refund_id, '') as refund_id
    from main.tickler_refund_exceptions where credit_id is not null
"""
_SNAPSHOTS = """
    select o.as_of_date, o.credit_id
    from main.credit_outcomes as o
    where o.credit_id in (select credit_id from main.tickler_refund_exceptions)
"""
_REFUNDED = """
    select e.as_of_date, l.credit_id, e.refund_id
    from main.refund_ledger_events as e
    inner join main.refund_ledger as l on e.refund_id = l.refund_id
    where e.status = 'REFUNDED'
"""


def _due_dates(con) -> dict[str, dt.date]:
    """credit_date + the client's refund_deadline_days, where client_rules carries the column
    (optional, CONTRACT 8): the credit's latest snapshot's credit_date."""
    has_column = con.execute(
        "select count(*) from duckdb_columns() where schema_name = 'staging'"
        " and table_name = 'stg_imagineone__client_rules'"
        " and column_name = 'refund_deadline_days'"
    ).fetchone()[0]
    if not has_column:
        return {}
    return dict(
        con.execute(
            """select o.credit_id,
                arg_max(o.credit_date, o.as_of_date) + any_value(r.refund_deadline_days)::integer
            from main.credit_outcomes as o
            inner join staging.stg_imagineone__client_rules as r
                on r.client_id = o.client_id and r.dq_error is null
            where r.refund_deadline_days is not null
                and o.credit_id in (select credit_id from main.tickler_refund_exceptions)
            group by o.credit_id"""
        ).fetchall()
    )


def _resolutions(data_dir: Path) -> dict[tuple, Resolution]:
    from auto_refunds.worklist import resolutions

    found = {}
    for row in resolutions.latest(data_dir, dt.date.min, dt.date.max):
        values = dict(zip(resolutions.COLUMNS, row, strict=True))
        key = (
            dt.date.fromisoformat(values["as_of_date"]),
            values["source"],
            values["credit_id"],
            values["reason_code"],
            values["refund_id"],
        )
        found[key] = Resolution(
            values["resolution"], values["resolved_by"], values["resolved_at"], values["id"]
        )
    return found


def from_warehouse(con, data_dir: Path) -> list[Item]:
    """The items of everything the warehouse holds, with the resolutions recorded so far."""
    exceptions = [Exception_(*row) for row in con.execute(_EXCEPTIONS).fetchall()]
    snapshots: dict[dt.date, set[str]] = {
        day: set()
        for (day,) in con.execute("select distinct as_of_date from main.credit_outcomes").fetchall()
    }
    for day, credit_id in con.execute(_SNAPSHOTS).fetchall():
        snapshots[day].add(credit_id)
    refunded = con.execute(_REFUNDED).fetchall()
    return walk(exceptions, snapshots, refunded, _resolutions(data_dir), _due_dates(con))


def items_file(data_dir: Path) -> Path:
    return data_dir / "worklist" / "items.parquet"


def rebuild(con, data_dir: Path) -> int:
    """Replace main.tickler_items with the items of now, and write them for the pages: returns
    how many. The file is written aside, then renamed over the last one: a page reads the
    previous items or these, never half."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from auto_refunds.layout import make_folder, private_umask

    walked = from_warehouse(con, data_dir)
    rows = [item.row() for item in walked]
    table = pa.Table.from_pylist(rows, schema=schema(COLUMNS))
    history = pa.Table.from_pylist(
        [change for item in walked for change in item.history], schema=schema(HISTORY_COLUMNS)
    )
    con.execute("begin")
    try:
        for name, columns, built in (
            ("tickler_items", COLUMNS, table),
            ("tickler_item_history", HISTORY_COLUMNS, history),
        ):
            typed = ", ".join(f"{column} {type_}" for column, type_ in columns)
            con.execute(f"create or replace table main.{name} ({typed})")
            con.register("built_now", built)
            listed = ", ".join(column for column, _ in columns)
            con.execute(f"insert into main.{name} select {listed} from built_now")
            con.unregister("built_now")
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("commit")
    private_umask()
    target = items_file(data_dir)
    make_folder(target.parent)
    building = target.with_name(f".items.{os.getpid()}.tmp")
    pq.write_table(table, building)
    os.chmod(building, 0o640)
    os.replace(building, target)
    log.info("Work items rebuilt: %s items", len(rows))
    return len(rows)


def schema(columns=COLUMNS):
    """A table's columns as an Arrow schema (pyarrow imported only where items are built)."""
    import pyarrow as pa

    types = {
        "varchar": pa.string(),
        "date": pa.date32(),
        "integer": pa.int32(),
        "decimal(18,2)": pa.decimal128(18, 2),
    }
    return pa.schema([(name, types[type_]) for name, type_ in columns])
