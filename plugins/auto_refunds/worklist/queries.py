"""What the worklist pages show, read with DuckDB from the Parquet snapshots (``snapshot``) and
the resolutions store, never from the warehouse: a ``Reader`` of one request, its views over the
snapshot dates, and the queues' pages and CSV files. A date's overview (``overview``) and a
credit's story (``story``) are read through a ``Reader`` too.

Each request opens its own in-memory DuckDB and reads the current snapshot version of each date it
needs; filters, sorting and paging run in DuckDB, so a page of a million exceptions costs one scan
of the files of its dates (figures in docs/performance.md#the-worklist-pages).
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from auto_refunds.layout import private_umask
from auto_refunds.worklist import resolutions, snapshot
from auto_refunds.worklist.columns import (
    QUEUES,
    RESOLUTION_COLUMNS,
    RESOLUTION_SHOWN,
    SNAPSHOT_FILES,
)

PAGE_SIZES = (50, 100, 250)
STATUSES = ("open", "resolved", "all")
SOURCES = ("ELIGIBILITY", "RECONCILIATION")

# Columns a person may sort by, per queue (``columns.QUEUES``); every sort ends on the row's key
# so pages are stable.
SORTS = {kind: queue.sorts for kind, queue in QUEUES.items()}
_ARROW_TYPES = {"bigint": pa.int64(), "varchar": pa.string()}
_RESOLUTION_SCHEMA = pa.schema(
    [(column.name, _ARROW_TYPES[column.type]) for column in RESOLUTION_COLUMNS]
)


@dataclass
class Filters:
    start: dt.date
    end: dt.date
    client: str = ""
    reason: str = ""
    source: str = ""
    status: str = "open"
    credit: str = ""
    sort: str = "date"
    descending: bool = False
    page: int = 1
    page_size: int = PAGE_SIZES[0]

    def where(self, kind: str) -> tuple[str, list]:
        clauses, params = ["as_of_date between ? and ?"], [self.start, self.end]
        if self.client:
            clauses.append("client_id = ?")
            params.append(self.client)
        if self.credit:
            clauses.append("credit_id = ?")
            params.append(self.credit)
        if kind == "exceptions":
            if self.reason:
                clauses.append("reason_code = ?")
                params.append(self.reason)
            if self.source:
                clauses.append("source = ?")
                params.append(self.source)
            if self.status == "open":
                clauses.append("resolution is null")
            elif self.status == "resolved":
                clauses.append("resolution is not null")
        return " and ".join(clauses), params

    def order_by(self, kind: str) -> str:
        queue = QUEUES[kind]
        column = queue.sorts.get(self.sort, "as_of_date")
        return f"{column} {'desc' if self.descending else 'asc'}, {', '.join(queue.key)}"


@dataclass
class Page:
    rows: list[dict]
    total_rows: int
    total_amount: object
    filters: Filters
    options: dict = field(default_factory=dict)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total_rows // self.filters.page_size))


class Reader:
    """One request's view of the snapshots and the resolutions."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.con = duckdb.connect(config={"threads": 2, "memory_limit": "1GB"})

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- what exists ------------------------------------------------------------------------
    def dates(self) -> list[dt.date]:
        return snapshot.snapshot_dates(self.data_dir)

    def _files(self, name: str, start: dt.date, end: dt.date) -> list[str]:
        files = []
        for day in self.dates():
            if start <= day <= end:
                folder = snapshot.current(self.data_dir, day)
                if folder is not None and (folder / f"{name}.parquet").is_file():
                    files.append(str(folder / f"{name}.parquet"))
        return files

    def relation(self, name: str, start: dt.date, end: dt.date) -> str:
        """A view named ``name`` over the snapshots of the dates from start to end."""
        files = self._files(name, start, end)
        if files:
            listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
            source = f"read_parquet([{listed}])"
        else:
            source = f"({SNAPSHOT_FILES[name].empty()})"
        self.con.execute(f"create or replace temp view {name} as select * from {source}")
        return name

    def resolved_exceptions(self, start: dt.date, end: dt.date) -> str:
        """View ``queue``: the exceptions of the dates with their resolution in force."""
        self.relation("exceptions", start, end)
        rows = resolutions.latest(self.data_dir, start, end)
        columns = list(zip(*rows, strict=True)) if rows else [[] for _ in resolutions.COLUMNS]
        table = pa.Table.from_arrays(
            [
                pa.array(values, type=f.type)
                for values, f in zip(columns, _RESOLUTION_SCHEMA, strict=True)
            ],
            schema=_RESOLUTION_SCHEMA,
        )
        self.con.register("resolution_rows", table)
        self.con.execute(
            f"""create or replace temp view queue as
            select e.*, {", ".join(f"r.{name}" for name in RESOLUTION_SHOWN)}
            from exceptions as e left join resolution_rows as r
                on r.as_of_date::date = e.as_of_date and r.source = e.source
                and r.credit_id = coalesce(e.credit_id, '') and r.reason_code = e.reason_code
                and r.refund_id = coalesce(e.refund_id, '')"""
        )
        return "queue"

    def _source(self, kind: str, start: dt.date, end: dt.date) -> str:
        if kind == "exceptions":
            return self.resolved_exceptions(start, end)
        return self.relation(QUEUES[kind].file.name, start, end)

    # -- the queues -------------------------------------------------------------------------
    def page(self, kind: str, filters: Filters) -> Page:
        view = self._source(kind, filters.start, filters.end)
        where, params = filters.where(kind)
        amount = QUEUES[kind].amount
        total_rows, total_amount = self.con.execute(
            f"select count(*), coalesce(sum({amount}), 0) from {view} where {where}", params
        ).fetchone()
        pages = max(1, -(-total_rows // filters.page_size))
        filters.page = min(max(1, filters.page), pages)
        cursor = self.con.execute(
            f"select * from {view} where {where} order by {filters.order_by(kind)} "
            f"limit {filters.page_size} offset {(filters.page - 1) * filters.page_size}",
            params,
        )
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        # The choices of the date range, whatever else is filtered: read without the join.
        plain = "exceptions" if kind == "exceptions" else view
        options = {"clients": self._distinct(plain, "client_id")}
        if kind == "exceptions":
            options["reasons"] = self._distinct(plain, "reason_code")
        return Page(rows, total_rows, total_amount, filters, options)

    def _distinct(self, view: str, column: str) -> list[str]:
        return [
            row[0]
            for row in self.con.execute(
                f"select distinct {column} from {view} where {column} is not null order by 1"
            ).fetchall()
        ]

    def csv(self, kind: str, filters: Filters, folder: Path) -> Path:
        """Every row the filters select, in the page's order, as a CSV file in ``folder``.

        Text that a spreadsheet would run as a formula (=, +, -, @ first) is written with a
        leading apostrophe; amounts are written as they are."""
        view = self._source(kind, filters.start, filters.end)
        where, params = filters.where(kind)
        described = self.con.execute(f"describe select * from {view}").fetchall()
        select = ", ".join(
            f"case when regexp_matches({c}, '^[=+@\\t\\r-]') then '''' || {c} else {c} end as {c}"
            if ctype == "VARCHAR"
            else c
            for c, ctype, *_ in described
        )
        private_umask()
        fd, name = tempfile.mkstemp(prefix=f"{kind}-", suffix=".csv", dir=folder)
        os.close(fd)
        target = Path(name)
        escaped = str(target).replace("'", "''")
        self.con.execute(
            f"copy (select {select} from {view} where {where} order by {filters.order_by(kind)})"
            f" to '{escaped}' (format csv, header true)",
            params,
        )
        return target

    def exception_keys_exist(self, keys: list[resolutions.ExceptionKey]) -> list[str]:
        """The keys that name no exception of their date (nothing to resolve)."""
        missing = []
        by_day: dict[dt.date, list] = {}
        for key in keys:
            by_day.setdefault(key.as_of_date, []).append(key)
        for day, day_keys in by_day.items():
            self.relation("exceptions", day, day)
            present = {
                tuple(row)
                for row in self.con.execute(
                    "select source, coalesce(credit_id, ''), reason_code, coalesce(refund_id, '')"
                    " from exceptions where credit_id in (select unnest(?))",
                    [[k.credit_id for k in day_keys]],
                ).fetchall()
            }
            missing += [
                k.encode()
                for k in day_keys
                if (k.source, k.credit_id, k.reason_code, k.refund_id) not in present
            ]
        return missing


ITEM_STATUSES = ("open", "resolved", "closed", "all")
# Most overdue first, then the oldest: what needs a person soonest. Every sort ends on the key.
ITEM_SORTS = {
    "due": "due_on is null, due_on, first_seen",
    "age": "first_seen",
    "amount": "credit_amount",
    "credit": "credit_id",
    "reason": "reason_code",
}


@dataclass
class ItemFilters:
    status: str = "open"
    client: str = ""
    reason: str = ""
    overdue: bool = False
    sort: str = "due"
    descending: bool = False
    page: int = 1
    page_size: int = PAGE_SIZES[0]
    assignee: str = ""

    def where(self, today: dt.date) -> tuple[str, list]:
        clauses, params = ["true"], []
        if self.assignee:
            clauses.append("assigned_to = ?")
            params.append(self.assignee)
        if self.status != "all":
            clauses.append("status = ?")
            params.append(self.status.upper())
        if self.client:
            clauses.append("client_id = ?")
            params.append(self.client)
        if self.reason:
            clauses.append("reason_code = ?")
            params.append(self.reason)
        if self.overdue:
            clauses.append("status = 'OPEN' and due_on < ?")
            params.append(today)
        return " and ".join(clauses), params

    def order_by(self, today: dt.date) -> str:
        way = "desc" if self.descending else "asc"
        columns = ", ".join(f"{c.strip()} {way}" for c in ITEM_SORTS[self.sort].split(","))
        # An open item whose follow-up date has come is back on top, whatever the sort.
        due = f"status = 'OPEN' and follow_up_on <= date '{today.isoformat()}'"
        return f"({due}) is true desc, {columns}, credit_id, first_seen"


def _items_view(reader: Reader) -> str:
    """View ``work_items``: the items of the last refresh, an open one shown resolved at once
    when its latest exception row got a resolution since (the next refresh makes it so), with
    what people's actions say now (assignee, follow-up, reopened; ``version``)."""
    from auto_refunds.worklist import actions, items

    path = items.items_file(reader.data_dir)
    if path.is_file():
        source = "read_parquet('" + str(path).replace("'", "''") + "')"
    else:
        typed = ", ".join(f"null::{t} as {n}" for n, t in items.COLUMNS)
        source = f"(select {typed} where false)"
    reader.resolved_exceptions(dt.date.min, dt.date.max)
    reader.con.execute(
        f"""create or replace temp view items_resolved_now as
        select i.* replace (
            case when i.status = 'OPEN' and r.resolution is not null
                then 'RESOLVED' else i.status end as status,
            case when i.status = 'OPEN' then r.resolution else i.resolution end as resolution,
            case when i.status = 'OPEN' then r.resolved_by else i.resolved_by end as resolved_by,
            case when i.status = 'OPEN' then r.resolved_at else i.resolved_at end as resolved_at
        ),
        coalesce(r.id, 0) as resolution_seen, r.note as resolution_note
        from {source} as i left join resolution_rows as r
            on r.as_of_date::date = i.last_seen and r.source = i.source
            and r.credit_id = i.credit_id and r.reason_code = i.reason_code
            and r.refund_id = coalesce(i.refund_id, '')"""
    )
    reader.con.register("item_states", actions.states_table(reader.data_dir))
    reader.con.execute(
        "create or replace temp view work_items as "
        + actions.overlay("items_resolved_now", "item_states")
    )
    return "work_items"


def items_page(reader: Reader, filters: ItemFilters, today: dt.date) -> Page:
    view = _items_view(reader)
    where, params = filters.where(today)
    total_rows, total_amount = reader.con.execute(
        f"select count(*), coalesce(sum(credit_amount), 0) from {view} where {where}", params
    ).fetchone()
    pages = max(1, -(-total_rows // filters.page_size))
    filters.page = min(max(1, filters.page), pages)
    cursor = reader.con.execute(
        f"select *, status = 'OPEN' and due_on < ? as overdue from {view} where {where}"
        f" order by {filters.order_by(today)} limit {filters.page_size}"
        f" offset {(filters.page - 1) * filters.page_size}",
        [today, *params],
    )
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    options = {
        "clients": reader._distinct(view, "client_id"),
        "reasons": reader._distinct(view, "reason_code"),
    }
    return Page(rows, total_rows, total_amount, filters, options)


def item(reader: Reader, credit_id: str, first_seen: dt.date) -> dict | None:
    """One item as the pages show it, or None."""
    view = _items_view(reader)
    cursor = reader.con.execute(
        f"select * from {view} where credit_id = ? and first_seen = ?", [credit_id, first_seen]
    )
    names = [d[0] for d in cursor.description]
    row = cursor.fetchone()
    return dict(zip(names, row, strict=True)) if row else None


def item_counts(reader: Reader, today: dt.date) -> dict:
    """Open and overdue items now, and their amounts."""
    view = _items_view(reader)
    row = reader.con.execute(
        f"""select count(*) filter (where status = 'OPEN'),
            coalesce(sum(credit_amount) filter (where status = 'OPEN'), 0),
            count(*) filter (where status = 'OPEN' and due_on < ?),
            coalesce(sum(credit_amount) filter (where status = 'OPEN' and due_on < ?), 0)
        from {view}""",
        [today, today],
    ).fetchone()
    return dict(zip(("open", "open_amount", "overdue", "overdue_amount"), row, strict=True))
