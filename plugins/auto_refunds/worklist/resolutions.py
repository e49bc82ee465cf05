"""People's resolutions of exceptions: an append-only SQLite store beside the warehouse.

Why SQLite in WAL mode, in its own file under the data root: a resolution must be taken while a
DAG run holds the DuckDB warehouse (which admits one process), and from several API-server
workers at once. SQLite serialises writers across processes by its own file locks, WAL lets
readers go on while one writes, ``busy_timeout`` makes a second writer wait its turn instead of
failing, and every write is one short transaction, so nobody waits long. It ships with Python:
nothing to install or run. Runs never touch this file, so reruns of any date leave it as it is.

Append-only: triggers refuse UPDATE and DELETE, so who resolved what, when and how stays as it
was written. An exception is the row of one date (as_of_date, source, credit_id, reason_code,
refund_id); its latest resolution is the one in force. A credit that raises an exception again on
a later date has a new row, open until someone resolves it; its earlier resolutions stay in its
story.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from auto_refunds.card_numbers import mask
from auto_refunds.layout import make_folder
from auto_refunds.worklist.columns import RESOLUTION_COLUMNS

RESOLUTIONS = {
    "REFUNDED_BY_CHECK": "Refunded by check",
    "REFUNDED_OTHER_WAY": "Refunded another way",
    "TRANSFERRED": "Transferred to another account",
    "KEPT_AS_CREDIT": "Kept as credit",
    "OTHER": "Other",
}
NOTE_MAX = 2000
# A row as read: the table's columns, in order (``columns``; a test checks the table has them).
COLUMNS = tuple(column.name for column in RESOLUTION_COLUMNS)

_SCHEMA = f"""
create table if not exists resolutions (
    id integer primary key autoincrement,
    as_of_date text not null,
    source text not null,
    credit_id text not null,
    reason_code text not null,
    refund_id text not null,
    resolution text not null check (resolution in ({", ".join(f"'{r}'" for r in RESOLUTIONS)})),
    note text not null,
    resolved_by text not null,
    resolved_at text not null
);
create index if not exists resolutions_by_exception
    on resolutions (as_of_date, source, credit_id, reason_code, refund_id);
create index if not exists resolutions_by_credit on resolutions (credit_id);
create trigger if not exists resolutions_append_only_update before update on resolutions
begin select raise(abort, 'resolutions are append-only'); end;
create trigger if not exists resolutions_append_only_delete before delete on resolutions
begin select raise(abort, 'resolutions are append-only'); end;
"""


@dataclass(frozen=True)
class ExceptionKey:
    as_of_date: dt.date
    source: str
    credit_id: str
    reason_code: str
    refund_id: str = ""

    def encode(self) -> str:
        return "|".join(
            [
                self.as_of_date.isoformat(),
                self.source,
                self.credit_id,
                self.reason_code,
                self.refund_id,
            ]
        )

    @classmethod
    def decode(cls, text: str) -> ExceptionKey:
        parts = text.split("|")
        if len(parts) != 5:
            raise ValueError(f"not an exception key: {text!r}")
        return cls(dt.date.fromisoformat(parts[0]), *parts[1:])


class ResolutionError(ValueError):
    """A resolution that cannot be recorded as given."""


def path(data_dir: Path) -> Path:
    return data_dir / "worklist" / "resolutions.sqlite3"


def connect(data_dir: Path) -> sqlite3.Connection:
    file = path(data_dir)
    make_folder(file.parent)
    con = sqlite3.connect(file, timeout=10, isolation_level=None)
    con.execute("pragma busy_timeout = 10000")
    con.execute("pragma journal_mode = wal")
    con.execute("pragma synchronous = full")
    con.executescript(_SCHEMA)
    for name in (file, file.with_name(file.name + "-wal"), file.with_name(file.name + "-shm")):
        if name.exists() and name.stat().st_mode & 0o007:
            os.chmod(name, 0o640)
    return con


def record(
    data_dir: Path,
    keys: Iterable[ExceptionKey],
    resolution: str,
    note: str,
    user: str,
    now: dt.datetime | None = None,
) -> int:
    """Append one resolution per exception, all or none; returns how many."""
    keys = list(dict.fromkeys(keys))
    if resolution not in RESOLUTIONS:
        raise ResolutionError(f"unknown resolution {resolution!r}")
    if not keys:
        raise ResolutionError("no exception selected")
    note = mask(note.strip())[:NOTE_MAX]
    if resolution == "OTHER" and not note:
        raise ResolutionError("a resolution 'Other' needs a note saying what was done")
    when = (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")
    with closing(connect(data_dir)) as con:
        con.execute("begin immediate")
        try:
            count = insert(con, keys, resolution, note, user, when)
        except BaseException:
            con.execute("rollback")
            raise
        con.execute("commit")
    return count


def insert(con, keys: list[ExceptionKey], resolution: str, note: str, user: str, when: str):
    """Append the resolutions inside the caller's transaction; returns how many."""
    rows = [
        (
            k.as_of_date.isoformat(),
            k.source,
            k.credit_id,
            k.reason_code,
            k.refund_id,
            resolution,
            note,
            user,
            when,
        )
        for k in keys
    ]
    con.executemany(
        "insert into resolutions (as_of_date, source, credit_id, reason_code, refund_id,"
        " resolution, note, resolved_by, resolved_at) values (?,?,?,?,?,?,?,?,?)",
        rows,
    )
    return len(rows)


def latest(data_dir: Path, start: dt.date, end: dt.date) -> list[tuple]:
    """The resolution in force of each exception of the dates from start to end."""
    if not path(data_dir).exists():
        return []
    with closing(connect(data_dir)) as con:
        return con.execute(
            f"""select {", ".join(COLUMNS)} from resolutions where id in (
                select max(id) from resolutions where as_of_date between ? and ?
                group by as_of_date, source, credit_id, reason_code, refund_id)""",
            [start.isoformat(), end.isoformat()],
        ).fetchall()


def of_credit(data_dir: Path, credit_id: str) -> list[dict]:
    """Every resolution ever recorded for a credit, oldest first."""
    if not path(data_dir).exists():
        return []
    with closing(connect(data_dir)) as con:
        rows = con.execute(
            f"select {', '.join(COLUMNS)} from resolutions where credit_id = ? order by id",
            [credit_id],
        ).fetchall()
    return [dict(zip(COLUMNS, row, strict=True)) for row in rows]
