"""Work items (CONTRACT 8): the exceptions of every date, as the problems people work.

One item per credit and problem. Taking a credit's exception rows in date order, a row opens
an item unless the credit has an open one, which it then updates (last seen, current reason,
detail, amount). An open item closes by itself when a later snapshot no longer holds the credit,
or when its refund ends REFUNDED after the item was last seen. A resolved item (one of its rows
has a resolution in force, from that row's date on) stays resolved while later rows report the
same reason_code and amount; another reason_code or amount opens a new item.

Why a function of everything rather than an update per run: dates are run, backfilled and rerun
in any order, and a rerun replaces its date's rows. Rebuilt whole from every date's ticklers, the
snapshots' credits, the ledger and the resolutions, the items are the same whatever that order.
That function is SQL (``_STEPS``) over six input relations: ``walk`` and ``build`` run it on
plain rows in an in-memory DuckDB; ``rebuild`` runs it on the warehouse's tables and writes
``main.tickler_items`` (at each refresh, after a publish) and the file the pages read, with the
people's actions (``actions``) as of then.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
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


# The walk in SQL. Inputs are six relations (``_INPUTS``); every step is a window over one
# credit's rows in date order, so nothing is held per row outside DuckDB, which spills to disk
# past its memory limit. The row-by-row rule it computes (a reference in Python is in the tests):
# a row updates the credit's current item when that item is open, or resolved and the row is the
# same problem (reason_code and amount); otherwise it opens a new item. After a date's rows, an
# open item not seen that date closes when that date's snapshot lacks the credit, or its refund
# ended REFUNDED that date. An item is resolved from its first row with a resolution in force.
#
# The rule is a state machine, but its state before row i is known without walking: if a row
# j < i has a resolution and rows j..i-1 are one problem, the item of row i-1 is resolved (a
# resolution resolves whatever item holds its row, and a resolved item keeps only rows of its
# problem); otherwise it is open, and closed before row i when some day strictly between rows
# i-1 and i closes it. So each row's "opens an item" is a window expression, and the items are
# running sums of it.
_INPUTS = {
    "in_exceptions": "as_of_date, credit_id, client_id, account_id, credit_amount, reason_code,"
    " reason_detail, source, refund_id",
    "in_snapshot_days": "as_of_date",
    "in_held": "as_of_date, credit_id",
    "in_refunded": "as_of_date, credit_id, refund_id",
    "in_resolutions": "as_of_date, source, credit_id, reason_code, refund_id, resolution,"
    " resolved_by, resolved_at, resolution_order",
    "in_due": "credit_id, due_on",
}

_STEPS = """
create or replace temp table item_wide as
with snapshot_days as (
    select as_of_date as day, row_number() over (order by as_of_date) as k
    from (select distinct as_of_date from in_snapshot_days)
),
held as (
    select distinct h.credit_id, s.k
    from in_held as h
    inner join snapshot_days as s on h.as_of_date = s.day
    where h.credit_id in (select e.credit_id from in_exceptions as e)
),
-- Runs of consecutive snapshots holding the credit: the first snapshot after a day that lacks
-- it is the one after the run that day's next snapshot falls in.
held_runs as (
    select credit_id, min(k) as first_k, max(k) as last_k
    from (select credit_id, k, k - row_number() over (partition by credit_id order by k) as run
        from held)
    group by credit_id, run
),
row_days as (select distinct credit_id, as_of_date from in_exceptions),
next_snapshot as (
    select r.credit_id, r.as_of_date, coalesce(s.k, 0) + 1 as k0
    from row_days as r
    asof left join snapshot_days as s on r.as_of_date >= s.day
),
next_absent as (
    select n.credit_id, n.as_of_date, a.day as absent_on
    from next_snapshot as n
    left join held_runs as h
        on n.credit_id = h.credit_id and n.k0 between h.first_k and h.last_k
    left join snapshot_days as a on a.k = coalesce(h.last_k + 1, n.k0)
),
refunded_days as (
    select credit_id, as_of_date as day, min(refund_id) as refund_id
    from in_refunded group by credit_id, as_of_date
),
next_close as (
    select
        a.credit_id,
        a.as_of_date,
        least(a.absent_on, f.day) as closes_on,
        case
            when a.absent_on <= f.day or f.day is null
                then 'credit no longer in the snapshot of ' || cast(a.absent_on as varchar)
            else 'refund ' || f.refund_id || ' ended REFUNDED on ' || cast(f.day as varchar)
        end as closed_reason
    from next_absent as a
    asof left join refunded_days as f
        on a.credit_id = f.credit_id and a.as_of_date < f.day
),
numbered as (
    select
        e.*,
        r.resolution,
        r.resolved_by,
        r.resolved_at,
        r.resolution_order,
        c.closes_on,
        c.closed_reason,
        -- Within a date: ELIGIBILITY (the daily run) before RECONCILIATION, then by reason.
        row_number() over (
            partition by e.credit_id
            order by e.as_of_date, e.source, e.reason_code, e.refund_id
        ) as n
    from in_exceptions as e
    left join in_resolutions as r
        on e.as_of_date = r.as_of_date and e.source = r.source
        and e.credit_id = r.credit_id and e.reason_code = r.reason_code
        and e.refund_id = r.refund_id
    left join next_close as c on e.credit_id = c.credit_id and e.as_of_date = c.as_of_date
)
select * from numbered;

-- The windows run on the columns they need alone (they sort what they carry), then the rows
-- get their own columns back.
create or replace temp table item_rows as
with changes as (
    select
        credit_id,
        n,
        as_of_date,
        resolution_order,
        coalesce((reason_code, credit_amount) is distinct from (
            lag(reason_code) over w, lag(credit_amount) over w
        ), true) as new_problem,
        (reason_code, credit_amount, source, refund_id) is distinct from (
            lag(reason_code) over w, lag(credit_amount) over w, lag(source) over w,
            lag(refund_id) over w
        ) as changed,
        lag(closes_on) over w as previous_closes_on
    from item_wide
    window w as (partition by credit_id order by n)
),
problems as (
    select *, sum(new_problem::integer) over w as problem
    from changes
    window w as (partition by credit_id order by n)
),
states as (
    select
        *,
        -- problem numbers only grow: the latest resolved row's is the greatest
        max(case when resolution_order is not null then problem end) over (
            partition by credit_id order by n rows between unbounded preceding and 1 preceding
        ) = lag(problem) over (partition by credit_id order by n) as after_resolved
    from problems
),
opens as (
    select
        *,
        n = 1
        or (coalesce(after_resolved, false) and new_problem)
        or (not coalesce(after_resolved, false) and previous_closes_on < as_of_date) as opens
    from states
),
items as (
    select *, sum(opens::integer) over (partition by credit_id order by n) as item
    from opens
),
resolving as (
    select
        credit_id,
        n,
        changed,
        opens,
        item,
        -- A later resolution of the item's rows replaces the one in force only if recorded
        -- later.
        resolution_order > coalesce(max(resolution_order) over (
            partition by credit_id, item order by n
            rows between unbounded preceding and 1 preceding
        ), -1) as resolves
    from items
)
select w.*, r.changed, r.opens, r.item, r.resolves
from item_wide as w
inner join resolving as r on w.credit_id = r.credit_id and w.n = r.n;

create or replace temp table built_items as
with spans as (
    select
        credit_id,
        item,
        min(as_of_date) as first_seen,
        max(n) as last_n,
        max(case when resolves then n end) as resolved_n
    from item_rows
    group by credit_id, item
)
select
    s.credit_id,
    l.client_id,
    l.account_id,
    l.credit_amount,
    l.reason_code,
    l.reason_detail,
    l.source,
    nullif(l.refund_id, '') as refund_id,
    s.first_seen,
    l.as_of_date as last_seen,
    d.due_on,
    case
        when s.resolved_n is not null then 'RESOLVED'
        when l.closes_on is not null then 'CLOSED'
        else 'OPEN'
    end as status,
    case when s.resolved_n is null then l.closed_reason end as closed_reason,
    null::varchar as assigned_to,
    null::date as follow_up_on,
    r.resolution,
    r.resolved_by,
    r.resolved_at,
    s.item,
    l.closes_on
from spans as s
inner join item_rows as l on s.credit_id = l.credit_id and s.last_n = l.n
left join item_rows as r on s.credit_id = r.credit_id and s.resolved_n = r.n
left join (select credit_id, any_value(due_on) as due_on from in_due group by credit_id) as d
    on s.credit_id = d.credit_id;

create or replace temp table built_history as
with events as (
    select credit_id, item, n, 0 as step, as_of_date,
        case when opens then 'OPENED' else 'CHANGED' end as event,
        reason_code, reason_detail, credit_amount, source, nullif(refund_id, '') as refund_id,
        null::varchar as detail
    from item_rows
    where opens or changed
    union all
    select credit_id, item, n, 1, as_of_date, 'RESOLVED', null, null, null, null, null,
        resolution || ' by ' || resolved_by
    from item_rows
    where resolves
    union all
    select i.credit_id, i.item, 0, 2, i.closes_on, 'CLOSED', null, null, null, null, null,
        i.closed_reason
    from built_items as i
    where i.status = 'CLOSED'
)
select
    e.credit_id,
    i.first_seen,
    row_number() over (partition by e.credit_id, e.item order by e.step = 2, e.n, e.step)::integer
        as seq,
    e.as_of_date,
    e.event,
    e.reason_code,
    e.reason_detail,
    e.credit_amount,
    e.source,
    e.refund_id,
    e.detail,
    e.item
from events as e
inner join built_items as i on e.credit_id = i.credit_id and e.item = i.item;
"""


def run_steps(con) -> None:
    """Build temp tables built_items and built_history from the temp views ``_INPUTS`` names."""
    for statement in _STEPS.split(";"):
        if statement.strip():
            con.execute(statement)


def _values(con, name: str, columns: str, types: str, rows: list[tuple]) -> None:
    typed = ", ".join(
        f"{c.strip()} {t}" for c, t in zip(columns.split(","), types.split(), strict=True)
    )
    con.execute(f"create or replace temp table {name} ({typed})")
    if rows:
        marks = ", ".join("?" for _ in rows[0])
        con.executemany(f"insert into {name} values ({marks})", rows)


@dataclass
class Built:
    """An item as built, and its history (``main.tickler_item_history``'s rows)."""

    values: dict
    history: list[dict]

    def row(self) -> dict:
        return dict(self.values)

    def __getattr__(self, name):
        try:
            return self.__dict__["values"][name]
        except KeyError:
            raise AttributeError(name) from None


def walk(
    exceptions: Iterable[Exception_],
    snapshots: dict[dt.date, set[str]],
    refunded: Iterable[tuple[dt.date, str, str]] = (),
    resolutions: dict[tuple, Resolution] | None = None,
    due_on: dict[str, dt.date] | None = None,
) -> list[Built]:
    """The items of plain rows, each with its history, sorted by credit_id and first_seen: the
    warehouse's rebuild on rows given here (an in-memory DuckDB).

    exceptions: every date's exception rows. snapshots: for each date with a snapshot of
    ImagineOne, the credit_ids it held (only those with exceptions are needed). refunded: (date,
    credit_id, refund_id) of each refund that ended REFUNDED on that date. resolutions: the
    resolution in force of each exception row, by ``Exception_.key``. due_on: by credit_id.
    """
    import duckdb

    money = "decimal(18,2)"
    with duckdb.connect() as con:
        _values(
            con,
            "in_exceptions",
            _INPUTS["in_exceptions"],
            f"date varchar varchar varchar {money} varchar varchar varchar varchar",
            [dataclasses.astuple(row) for row in exceptions],
        )
        _values(con, "in_snapshot_days", "as_of_date", "date", [(d,) for d in snapshots])
        _values(
            con,
            "in_held",
            _INPUTS["in_held"],
            "date varchar",
            [(day, c) for day, held in snapshots.items() for c in held],
        )
        _values(con, "in_refunded", _INPUTS["in_refunded"], "date varchar varchar", list(refunded))
        _values(
            con,
            "in_resolutions",
            _INPUTS["in_resolutions"],
            "date varchar varchar varchar varchar varchar varchar varchar bigint",
            [(*key, *dataclasses.astuple(found)) for key, found in (resolutions or {}).items()],
        )
        _values(con, "in_due", _INPUTS["in_due"], "varchar date", list((due_on or {}).items()))
        run_steps(con)
        return _read_built(con)


def _read_built(con) -> list[Built]:
    names = ", ".join(NAMES)
    rows = con.execute(
        f"select {names}, item from built_items order by credit_id, first_seen, item"
    )
    built = []
    keys = {}
    for values in rows.fetchall():
        item = Built(dict(zip(NAMES, values[:-1], strict=True)), [])
        keys[(values[0], values[-1])] = item
        built.append(item)
    history = con.execute(
        f"select {', '.join(HISTORY_NAMES)}, item from built_history order by credit_id, item, seq"
    ).fetchall()
    for values in history:
        keys[(values[0], values[-1])].history.append(
            dict(zip(HISTORY_NAMES, values[:-1], strict=True))
        )
    return built


def build(*args, **kwargs) -> list[dict]:
    """``walk``'s items as rows of main.tickler_items."""
    return [item.row() for item in walk(*args, **kwargs)]


# -- from the warehouse ----------------------------------------------------------------------

_DUE_ON = """
    select o.credit_id,
        arg_max(o.credit_date, o.as_of_date) + any_value(r.refund_deadline_days)::integer
            as due_on
    from main.credit_outcomes as o
    inner join staging.stg_imagineone__client_rules as r
        on r.client_id = o.client_id and r.dq_error is null
    where r.refund_deadline_days is not null
        and o.credit_id in (select credit_id from main.tickler_refund_exceptions)
    group by o.credit_id
"""

# The warehouse's tables as the walk's inputs (``_INPUTS``).
_WAREHOUSE = {
    "in_exceptions": """
        select as_of_date, credit_id, client_id, account_id, credit_amount, reason_code,
            reason_detail, source, coalesce(refund_id, '') as refund_id
        from main.tickler_refund_exceptions where credit_id is not null""",
    "in_snapshot_days": "select distinct as_of_date from main.credit_outcomes",
    # Only the credits with exceptions matter; the steps semi-join them again.
    "in_held": """
        select as_of_date, credit_id from main.credit_outcomes
        where credit_id in (select credit_id from main.tickler_refund_exceptions)""",
    "in_refunded": """
        select e.as_of_date, l.credit_id, e.refund_id
        from main.refund_ledger_events as e
        inner join main.refund_ledger as l on e.refund_id = l.refund_id
        where e.status = 'REFUNDED'""",
}


def _has_deadlines(con) -> bool:
    return bool(
        con.execute(
            "select count(*) from duckdb_columns() where schema_name = 'staging'"
            " and table_name = 'stg_imagineone__client_rules'"
            " and column_name = 'refund_deadline_days'"
        ).fetchone()[0]
    )


def _due_dates(con) -> dict[str, dt.date]:
    """credit_date + the client's refund_deadline_days, where client_rules carries the column
    (optional, CONTRACT 8): the credit's latest snapshot's credit_date."""
    return dict(con.execute(_DUE_ON).fetchall()) if _has_deadlines(con) else {}


def _resolutions(data_dir: Path):
    """The resolutions in force, as an Arrow table of ``in_resolutions``' columns."""
    import pyarrow as pa

    from auto_refunds.worklist import resolutions

    rows = [
        dict(zip(resolutions.COLUMNS, row, strict=True))
        for row in resolutions.latest(data_dir, dt.date.min, dt.date.max)
    ]
    return pa.table(
        {
            "as_of_date": pa.array(
                [dt.date.fromisoformat(r["as_of_date"]) for r in rows], pa.date32()
            ),
            **{
                name: pa.array([r[name] for r in rows], pa.string())
                for name in (
                    "source",
                    "credit_id",
                    "reason_code",
                    "refund_id",
                    "resolution",
                    "resolved_by",
                    "resolved_at",
                )
            },
            "resolution_order": pa.array([r["id"] for r in rows], pa.int64()),
        }
    )


def from_warehouse(con, data_dir: Path) -> None:
    """Build temp tables built_items and built_history from everything the warehouse holds,
    with the resolutions recorded so far."""
    for name, query in _WAREHOUSE.items():
        con.execute(f"create or replace temp view {name} as {query}")
    con.register("resolutions_now", _resolutions(data_dir))
    con.execute(
        "create or replace temp table in_resolutions as"
        f" select {_INPUTS['in_resolutions']} from resolutions_now"
    )
    con.unregister("resolutions_now")
    due = _DUE_ON if _has_deadlines(con) else "select null::varchar, null::date where false"
    con.execute(f"create or replace temp view in_due ({_INPUTS['in_due']}) as {due}")
    run_steps(con)


def items_file(data_dir: Path) -> Path:
    return data_dir / "worklist" / "items.parquet"


def rebuild(con, data_dir: Path) -> int:
    """Replace main.tickler_items with the items of now, and write them for the pages: returns
    how many. The file is written aside, then renamed over the last one: a page reads the
    previous items or these, never half."""
    from auto_refunds.layout import make_folder, private_umask
    from auto_refunds.worklist import actions

    from_warehouse(con, data_dir)
    # The people's actions as of now: the pages overlay them live, the table as of this refresh.
    con.register("states_now", actions.states_table(data_dir))
    con.execute(
        "create or replace temp table worked_items as select * exclude (version) from ("
        + actions.overlay("built_items", "states_now")
        + ")"
    )
    con.unregister("states_now")
    con.execute("begin")
    try:
        for name, columns, built in (
            ("tickler_items", COLUMNS, "worked_items"),
            ("tickler_item_history", HISTORY_COLUMNS, "built_history"),
        ):
            typed = ", ".join(f"{column} {type_}" for column, type_ in columns)
            con.execute(f"create or replace table main.{name} ({typed})")
            listed = ", ".join(column for column, _ in columns)
            con.execute(
                f"insert into main.{name} select {listed} from {built}"
                f" order by credit_id, first_seen{', seq' if 'seq' in listed else ''}"
            )
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("commit")
    count = con.execute("select count(*) from main.tickler_items").fetchone()[0]
    private_umask()
    target = items_file(data_dir)
    make_folder(target.parent)
    building = target.with_name(f".items.{os.getpid()}.tmp")
    quoted = "'" + str(building).replace("'", "''") + "'"
    con.execute(
        f"copy (select {', '.join(NAMES)} from main.tickler_items) to {quoted} (format parquet)"
    )
    os.chmod(building, 0o640)
    os.replace(building, target)
    for name in (
        "item_wide",
        "item_rows",
        "built_items",
        "worked_items",
        "built_history",
        "in_resolutions",
    ):
        con.execute(f"drop table if exists {name}")
    log.info("Work items rebuilt: %s items", count)
    return count


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
