"""What the worklist pages show, read with DuckDB from the Parquet snapshots (``snapshot``) and
the resolutions store, never from the warehouse.

Each request opens its own in-memory DuckDB and reads the current snapshot version of each date it
needs; filters, sorting and paging run in DuckDB, so a page of a million exceptions costs one scan
of the files of its dates (figures in docs/design.md#the-worklist).
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

PAGE_SIZES = (50, 100, 250)
STATUSES = ("open", "resolved", "all")
SOURCES = ("ELIGIBILITY", "RECONCILIATION")

# Columns a person may sort by, per queue; every sort ends on the row's key so pages are stable.
SORTS = {
    "exceptions": {
        "date": "as_of_date",
        "credit": "credit_id",
        "client": "client_id",
        "amount": "credit_amount",
        "reason": "reason_code",
        "source": "source",
    },
    "refunds_due": {
        "date": "as_of_date",
        "credit": "credit_id",
        "client": "client_id",
        "amount": "refund_amount",
        "refund": "refund_id",
    },
}
_KEYS = {
    "exceptions": "as_of_date, credit_id, source, reason_code, refund_id",
    "refunds_due": "as_of_date, credit_id, refund_id",
}

_RESOLUTION_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("as_of_date", pa.string()),
        ("source", pa.string()),
        ("credit_id", pa.string()),
        ("reason_code", pa.string()),
        ("refund_id", pa.string()),
        ("resolution", pa.string()),
        ("note", pa.string()),
        ("resolved_by", pa.string()),
        ("resolved_at", pa.string()),
    ]
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
        column = SORTS[kind].get(self.sort, "as_of_date")
        return f"{column} {'desc' if self.descending else 'asc'}, {_KEYS[kind]}"


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
        self._views: set[str] = set()

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

    def _relation(self, name: str, start: dt.date, end: dt.date) -> str:
        """A view named ``name`` over the snapshots of the dates from start to end."""
        files = self._files(name, start, end)
        if files:
            listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
            source = f"read_parquet([{listed}])"
        else:
            source = f"(select * from ({_EMPTY[name]}) where false)"
        self.con.execute(f"create or replace temp view {name} as select * from {source}")
        return name

    def _resolved_exceptions(self, start: dt.date, end: dt.date) -> str:
        """View ``queue``: the exceptions of the dates with their resolution in force."""
        self._relation("exceptions", start, end)
        rows = resolutions.latest(self.data_dir, start, end)
        columns = list(zip(*rows, strict=True)) if rows else [[] for _ in resolutions.COLUMNS]
        table = pa.Table.from_arrays(
            [pa.array(values, type=f.type) for values, f in zip(columns, _RESOLUTION_SCHEMA,
                                                                strict=True)],
            schema=_RESOLUTION_SCHEMA,
        )
        self.con.register("resolution_rows", table)
        self.con.execute(
            """create or replace temp view queue as
            select e.*, r.resolution, r.note, r.resolved_by, r.resolved_at
            from exceptions as e left join resolution_rows as r
                on r.as_of_date::date = e.as_of_date and r.source = e.source
                and r.credit_id = coalesce(e.credit_id, '') and r.reason_code = e.reason_code
                and r.refund_id = coalesce(e.refund_id, '')"""
        )
        return "queue"

    def _source(self, kind: str, start: dt.date, end: dt.date) -> str:
        if kind == "exceptions":
            return self._resolved_exceptions(start, end)
        return self._relation("refunds_due", start, end)

    # -- the queues -------------------------------------------------------------------------
    def page(self, kind: str, filters: Filters) -> Page:
        view = self._source(kind, filters.start, filters.end)
        where, params = filters.where(kind)
        amount = "credit_amount" if kind == "exceptions" else "refund_amount"
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

    # -- a date -----------------------------------------------------------------------------
    def overview(self, day: dt.date, chart_days: int = 30) -> dict:
        start = day - dt.timedelta(days=chart_days - 1)
        self._relation("outcomes", day, day)
        self._relation("refunds_due", day, day)
        self._relation("postings", day, day)
        self._relation("ledger_events", start, day)
        queue = self._resolved_exceptions(start, day)
        one = self.con.execute
        credits = one("select count(*) from outcomes").fetchone()[0]
        due = one("select count(*), coalesce(sum(refund_amount), 0) from refunds_due").fetchone()
        postings = one(
            "select count(*), coalesce(sum(payment_amount), 0) from postings"
        ).fetchone()
        by_reason = one(
            f"""select reason_code, count(*) as total,
                count(*) filter (where resolution is null) as open,
                count(*) filter (where resolution is not null) as resolved,
                coalesce(sum(credit_amount), 0) as amount
            from {queue} where as_of_date = ? group by reason_code order by total desc""",
            [day],
        ).fetchall()
        reconciliation = dict(
            one(
                "select status, count(*) from ledger_events where as_of_date = ? group by status",
                [day],
            ).fetchall()
        )
        days = [d for d in self.dates() if start <= d <= day]
        per_day = {
            (row[0], row[1]): row[2]
            for row in one(
                "select as_of_date, status, count(*) from ledger_events group by all"
            ).fetchall()
        }
        exceptions_per_day = {
            (row[0], row[1]): row[2]
            for row in one(
                "select as_of_date, reason_code, count(*) from exceptions group by all"
            ).fetchall()
        }
        return {
            "day": day,
            "credits": credits,
            "due_count": due[0],
            "due_total": due[1],
            "postings_count": postings[0],
            "postings_total": postings[1],
            "by_reason": [
                dict(zip(("reason", "total", "open", "resolved", "amount"), row, strict=True))
                for row in by_reason
            ],
            "reconciliation": {
                "approved": reconciliation.get("REFUNDED", 0),
                "declined": reconciliation.get("DECLINED", 0),
                "mismatched": reconciliation.get("AMOUNT_MISMATCH", 0),
                "unanswered": reconciliation.get("UNANSWERED", 0),
            },
            "chart_days": days,
            "refund_series": {
                label: [per_day.get((d, status), 0) for d in days]
                for label, status in (
                    ("sent", "SENT"), ("approved", "REFUNDED"), ("declined", "DECLINED")
                )
            },
            "exception_series": {
                reason: [exceptions_per_day.get((d, reason), 0) for d in days]
                for reason in sorted({r for (_, r) in exceptions_per_day})
            },
        }

    # -- a credit ---------------------------------------------------------------------------
    def story(self, credit_id: str) -> dict:
        dates = self.dates()
        if not dates:
            return {"outcomes": [], "events": [], "postings": [], "exceptions": []}
        start, end = dates[0], dates[-1]
        found = {}
        for name, order in (
            ("outcomes", "as_of_date"),
            # States only move up (ledger_state_rank in macros.sql), at most once a date after
            # SENT.
            ("ledger_events", "as_of_date, refund_id, "
             "case status when 'SENT' then 0 when 'UNANSWERED' then 1 else 2 end"),
            ("postings", "as_of_date, payment_id"),
        ):
            self._relation(name, start, end)
            cursor = self.con.execute(
                f"select * from {name} where credit_id = ? order by {order}", [credit_id]
            )
            names = [d[0] for d in cursor.description]
            found[name] = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        queue = self._resolved_exceptions(start, end)
        cursor = self.con.execute(
            f"select * from {queue} where credit_id = ? order by as_of_date, source", [credit_id]
        )
        names = [d[0] for d in cursor.description]
        return {
            "outcomes": found["outcomes"],
            "events": found["ledger_events"],
            "postings": found["postings"],
            "exceptions": [dict(zip(names, row, strict=True)) for row in cursor.fetchall()],
        }

    def exception_keys_exist(self, keys: list[resolutions.ExceptionKey]) -> list[str]:
        """The keys that name no exception of their date (nothing to resolve)."""
        missing = []
        by_day: dict[dt.date, list] = {}
        for key in keys:
            by_day.setdefault(key.as_of_date, []).append(key)
        for day, day_keys in by_day.items():
            self._relation("exceptions", day, day)
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


# The columns of each snapshot file, for dates that have none (an empty view of the same shape).
_EMPTY = {
    "outcomes": """select null::date as as_of_date, null::varchar as credit_id,
        null::varchar as client_id, null::varchar as account_id,
        null::decimal(18,2) as credit_amount, null::date as credit_date, null::varchar as outcome,
        null::varchar as reason_code, null::varchar as reason_detail,
        null::varchar as original_txn_id, null::varchar as refund_id,
        null::varchar as card_last4""",
    "refunds_due": """select null::date as as_of_date, null::varchar as refund_id,
        null::varchar as credit_id, null::varchar as client_id, null::varchar as account_id,
        null::varchar as original_txn_id, null::varchar as card_last4,
        null::decimal(18,2) as refund_amount""",
    "exceptions": """select null::date as as_of_date, null::varchar as credit_id,
        null::varchar as client_id, null::varchar as account_id,
        null::decimal(18,2) as credit_amount, null::varchar as reason_code,
        null::varchar as reason_detail, null::varchar as source, null::varchar as refund_id""",
    "ledger_events": """select null::date as as_of_date, null::varchar as credit_id,
        null::varchar as client_id, null::varchar as refund_id, null::varchar as status,
        null::varchar as source_file, null::bigint as line_number, null::varchar as detail,
        null::decimal(18,2) as refund_amount""",
    "postings": """select null::date as as_of_date, null::varchar as credit_id,
        null::varchar as payment_id, null::varchar as client_id, null::varchar as account_id,
        null::varchar as txn_id, null::varchar as refund_id,
        null::decimal(18,2) as payment_amount, null::date as processed_date""",
}
