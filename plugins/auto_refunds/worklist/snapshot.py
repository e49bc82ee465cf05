"""Per-date Parquet snapshots of what the worklist pages read, written after each publish.

The pages must never hold the warehouse (DuckDB takes one process at a time, and a run must never
fail because someone is looking). So after each publish of date D, ``refresh`` (its own pipeline
step) takes the warehouse, copies D's rows of the tables the pages read (``columns``) into
``worklist/dates/YYYYMMDD/v<ns>/*.parquet``, then points ``worklist/dates/YYYYMMDD/current`` at
that version by an atomic rename. A reader reads ``current`` once per request and then only that
version: it sees D before or after a refresh, never half of one. Older versions are removed once a
newer one has been current for a while, so a request that started on one is not cut short.

Written sorted by credit_id, so that looking up one credit across dates reads few row groups.
D's ``deliveries`` are those recorded when the refresh runs: after the daily delivery of D's refund
file, and again after the reconciliation's delivery of D's postings (so a retried delivery shows).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

from auto_refunds.faults import crash_point
from auto_refunds.layout import make_folder, private_umask, ymd
from auto_refunds.worklist.columns import SNAPSHOT_FILES

if TYPE_CHECKING:
    from auto_refunds.settings import Settings

log = logging.getLogger(__name__)

# A version replaced longer ago than this is no longer read by any request.
_KEEP_REPLACED_SECONDS = 600

# What each page reads of date D: a file name and its query (parameter $as_of), from ``columns``.
TABLES = {name: file.query() for name, file in SNAPSHOT_FILES.items()}


def root(data_dir: Path) -> Path:
    return data_dir / "worklist"


def dates_folder(data_dir: Path) -> Path:
    return root(data_dir) / "dates"


def write(con, data_dir: Path, as_of: dt.date) -> tuple[Path, dict[str, int]]:
    """Write D's snapshot from an open warehouse connection and make it current: returns the
    new version's folder and the rows of each of its files.

    Built in a hidden folder, renamed into place whole, then made current by replacing the
    ``current`` pointer: a kill at any point leaves the previous version current (what a kill
    leaves behind goes with the next write of D, see ``_prune``)."""
    private_umask()
    folder = dates_folder(data_dir) / ymd(as_of)
    make_folder(folder)
    version = f"v{time.time_ns()}"
    building = folder / f".{version}.tmp"
    building.mkdir(mode=0o750)
    rows = {}
    try:
        for name, query in TABLES.items():
            target = building / f"{name}.parquet"
            # COPY answers with the number of rows it wrote.
            rows[name] = con.execute(
                f"copy ({query}) to '{target}' (format parquet, row_group_size 100000)",
                {"as_of": as_of},
            ).fetchone()[0]
            os.chmod(target, 0o640)
            crash_point("worklist_snapshot_mid_write")
        os.rename(building, folder / version)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    crash_point("worklist_snapshot_before_current")
    pointer = folder / f".current.{version}.tmp"
    fd = os.open(pointer, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o640)
    with os.fdopen(fd, "w") as handle:
        handle.write(version)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(pointer, folder / "current")
    _prune(folder, version)
    return folder / version, rows


def refresh(as_of: dt.date, settings: Settings | None = None) -> dict:
    """The pipeline step after a publish of D (daily or reconciliation): write the worklist
    snapshot of D from the warehouse and make it current, then rebuild the work items of every
    date (``items.rebuild``); returns what it wrote.

    Takes the warehouse like any step (``warehouse.connect``: the writer lock, waiting for a run
    that holds it). Idempotent: it copies whatever the warehouse holds for D now, so a retry, a
    rerun or a refresh after a later publish writes the same snapshot again, as a new version.
    A kill midway leaves D's previous snapshot current. A failure raises (the publish it follows
    is already committed): the task fails, and its retry writes the snapshot.
    """
    from auto_refunds.settings import Settings
    from auto_refunds.warehouse import connect

    settings = settings or Settings.from_env()
    from auto_refunds.worklist import items

    with connect(settings, as_of) as con:
        path, rows = write(con, settings.data_dir, as_of)
        # The work items depend on every date: rebuilt whole at each publish of any date.
        item_count = items.rebuild(con, settings.data_dir)
    log.info(
        "Worklist snapshot of %s written: %s (%s)",
        as_of,
        path,
        ", ".join(f"{name} {count} rows" for name, count in rows.items()),
    )
    return {"as_of_date": as_of.isoformat(), "path": str(path), "rows": rows, "items": item_count}


def _prune(folder: Path, current: str) -> None:
    now_ns = time.time_ns()
    versions = sorted(
        (int(item.name[1:]), item)
        for item in folder.iterdir()
        if item.name.startswith("v") and item.name[1:].isdigit()
    )
    # A version stopped being current when the next one was written: its name's time.
    for (_, item), (replaced_ns, _) in zip(versions, versions[1:], strict=False):
        if item.name != current and now_ns - replaced_ns > _KEEP_REPLACED_SECONDS * 1e9:
            shutil.rmtree(item, ignore_errors=True)
    # Left over by a refresh killed half way.
    for item in folder.glob(".*.tmp"):
        if time.time() - item.lstat().st_mtime > _KEEP_REPLACED_SECONDS:
            if item.is_dir() and not item.is_symlink():
                shutil.rmtree(item, ignore_errors=True)
            else:
                item.unlink(missing_ok=True)


def snapshot_dates(data_dir: Path) -> list[dt.date]:
    """Dates with a current snapshot, oldest first."""
    folder = dates_folder(data_dir)
    if not folder.is_dir():
        return []
    found = []
    for item in folder.iterdir():
        if (item / "current").is_file():
            try:
                found.append(dt.datetime.strptime(item.name, "%Y%m%d").date())
            except ValueError:
                continue
    return sorted(found)


def current(data_dir: Path, as_of: dt.date) -> Path | None:
    """The folder of D's current version, or None when D has no snapshot."""
    folder = dates_folder(data_dir) / ymd(as_of)
    try:
        version = (folder / "current").read_text().strip()
    except FileNotFoundError:
        return None
    path = folder / version
    return path if version.startswith("v") and path.is_dir() else None


def main(argv: list[str] | None = None) -> int:
    """Write the snapshots of given dates, or of every date the warehouse holds, from the
    warehouse (it waits for a run holding it, like a run)."""
    from auto_refunds.settings import Settings
    from auto_refunds.warehouse import connect

    parser = argparse.ArgumentParser(prog="python -m auto_refunds.worklist.snapshot")
    parser.add_argument("--date", type=dt.date.fromisoformat, action="append")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = Settings.from_env()
    with connect(settings) as con:
        days = args.date or [
            row[0]
            for row in con.execute(
                "select as_of_date from main.credit_outcomes union "
                "select as_of_date from main.tickler_refund_exceptions union "
                "select as_of_date from main.refund_ledger_events order by 1"
            ).fetchall()
        ]
        for day in days:
            print(write(con, settings.data_dir, day)[0])
        from auto_refunds.worklist import items

        print(f"{items.rebuild(con, settings.data_dir)} work items")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
