"""The DuckDB warehouse: one writer at a time, and every connection set up the same way.

DuckDB lets one process hold a database file read-write. Two Airflow runs (a backfill beside the
daily run, the reconciliation beside either) would otherwise fail at random on open; instead each
task takes an exclusive lock file first and waits for the other to finish, up to a timeout after
which it fails with a message that says who holds the lock.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from auto_refunds import card_numbers
from auto_refunds.layout import make_folder
from auto_refunds.settings import Settings

log = logging.getLogger(__name__)


class WarehouseBusy(RuntimeError):
    """Another run holds the warehouse past the timeout: a retry, later, goes through."""


@contextmanager
def exclusive_lock(lock_path: Path, timeout_seconds: float) -> Iterator[None]:
    make_folder(lock_path.parent)
    with open(lock_path, "a+") as handle:
        deadline = time.monotonic() + timeout_seconds
        waited = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "unknown"
                    raise WarehouseBusy(
                        f"{lock_path}: the warehouse is still in use by another run "
                        f"({holder}) after {timeout_seconds:.0f} s"
                    ) from None
                if not waited:
                    log.info("Waiting for the warehouse lock %s", lock_path)
                    waited = True
                time.sleep(0.2)
        # The holder note is for the message above; the lock itself dies with the process.
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_sql_file(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    con.execute(path.read_text())


@contextmanager
def connect(
    settings: Settings, as_of: dt.date | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection to the warehouse, holding the writer lock while it is open.

    ``as_of`` is the run's date D; the SQL models read it as ``getvariable('as_of_date')``.
    """
    path = settings.layout.warehouse
    make_folder(path.parent)
    spill = path.parent / "spill"
    with exclusive_lock(path.with_name(path.name + ".lock"), settings.lock_timeout_seconds):
        config = {
            "memory_limit": settings.duckdb_memory_limit,
            "temp_directory": str(spill),
            # Faster and leaner; the one statement that needs scan order (numbering the lines
            # of a landing file) turns it back on for itself.
            "preserve_insertion_order": False,
        }
        if settings.duckdb_threads:
            config["threads"] = settings.duckdb_threads
        con = duckdb.connect(str(path), config=config)
        try:
            # Past both locks, ours and DuckDB's own on the file; DuckDB creates nothing in the
            # folder before this connection first spills.
            _remove_leftover_spill(spill)
            for name in ("tables.sql", "macros.sql"):
                run_sql_file(con, settings.sql_dir / "warehouse" / name)
            card_numbers.register(con, settings.sql_dir)
            con.execute(
                "set variable no_response_after_days = ?::integer",
                [settings.no_response_after_days],
            )
            if as_of is not None:
                con.execute("set variable as_of_date = ?::date", [as_of])
            yield con
        finally:
            con.close()


def _remove_leftover_spill(spill: Path) -> None:
    """Delete what a killed writer spilled. Call it holding the writer lock.

    DuckDB deletes its temporary files when a query or a connection ends. Those of a process
    killed with SIGKILL stay until another connection spills into the same folder, which a run at
    the smaller sizes never does. They hold working rows as they were, an extract's unmasked lines
    among them (CONTRACT 7 allows a card number in the input files only), and take gigabytes at
    the benchmark's larger size. Only a connection holding the writer lock spills into this
    folder, so DuckDB's files in it under the lock are left over. Nothing else in the folder is
    touched: an operator may have linked it to a scratch disk.
    """
    if not spill.is_dir():
        return
    leftovers = sorted(path for path in spill.glob("duckdb_temp_*") if path.is_file())
    for leftover in leftovers:
        leftover.unlink(missing_ok=True)
    if leftovers:
        log.warning("Removed %d temporary files a killed run left in %s", len(leftovers), spill)


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """All or nothing: a kill or an error inside leaves the warehouse as it was."""
    con.execute("begin transaction")
    try:
        yield con
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("commit")


def replace_partition(
    con: duckdb.DuckDBPyConnection, table: str, rows_from: str, where: str, params: dict
) -> None:
    """Replace the rows of ``table`` that ``where`` selects by every row of ``rows_from``; inside
    the caller's transaction."""
    con.execute(f"delete from {table} where {where}", params)
    con.execute(f"insert into {table} by name select * from {rows_from}")


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None):
    row = con.execute(sql, params or []).fetchone()
    return None if row is None else row[0]
