"""Per-date Parquet snapshots of what the worklist pages read, written by each publish.

The pages must never hold the warehouse (DuckDB takes one process at a time, and a run must never
fail because someone is looking). So each publish of date D, still holding the warehouse, copies
D's rows of the tables the pages read into ``worklist/dates/YYYYMMDD/v<ns>/*.parquet``, then
points ``worklist/dates/YYYYMMDD/current`` at that version by an atomic rename. A reader reads
``current`` once per request and then only that version: it sees D before or after a publish,
never half of one. Older versions are removed once a newer one has been current for a while, so a
request that started on one is not cut short.

Written sorted by credit_id, so that looking up one credit across dates reads few row groups.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import shutil
import time
from pathlib import Path

from auto_refunds.layout import make_folder, private_umask, ymd

log = logging.getLogger(__name__)

# A version replaced longer ago than this is no longer read by any request.
_KEEP_REPLACED_SECONDS = 600

# What each page reads of date D: a file name and its query (parameter $as_of).
TABLES = {
    "outcomes": """
        select as_of_date, credit_id, client_id, account_id, credit_amount, credit_date, outcome,
            reason_code, reason_detail, original_txn_id, refund_id, card_last4
        from main.credit_outcomes where as_of_date = $as_of order by credit_id""",
    "refunds_due": """
        select as_of_date, refund_id, credit_id, client_id, account_id, original_txn_id,
            card_last4, refund_amount
        from main.tickler_true_refunds_due where as_of_date = $as_of order by credit_id""",
    "exceptions": """
        select as_of_date, credit_id, client_id, account_id, credit_amount, reason_code,
            reason_detail, source, refund_id
        from main.tickler_refund_exceptions where as_of_date = $as_of
        order by credit_id, source, reason_code""",
    "ledger_events": """
        select e.as_of_date, l.credit_id, l.client_id, e.refund_id, e.status, e.source_file,
            e.line_number, e.detail, l.refund_amount
        from main.refund_ledger_events as e join main.refund_ledger as l using (refund_id)
        where e.as_of_date = $as_of order by l.credit_id, e.refund_id""",
    "postings": """
        select p.as_of_date, l.credit_id, p.payment_id, p.client_id, p.account_id, p.txn_id,
            p.refund_id, p.payment_amount, p.processed_date
        from main.payment_postings as p left join main.refund_ledger as l using (refund_id)
        where p.as_of_date = $as_of order by l.credit_id, p.payment_id""",
}


def root(data_dir: Path) -> Path:
    return data_dir / "worklist"


def dates_folder(data_dir: Path) -> Path:
    return root(data_dir) / "dates"


def write(con, data_dir: Path, as_of: dt.date) -> Path:
    """Write D's snapshot from an open warehouse connection and make it current."""
    private_umask()
    folder = dates_folder(data_dir) / ymd(as_of)
    make_folder(folder)
    version = f"v{time.time_ns()}"
    building = folder / f".{version}.tmp"
    building.mkdir(mode=0o750)
    try:
        for name, query in TABLES.items():
            target = building / f"{name}.parquet"
            con.execute(
                f"copy ({query}) to '{target}' (format parquet, row_group_size 100000)",
                {"as_of": as_of},
            )
            os.chmod(target, 0o640)
        os.rename(building, folder / version)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    pointer = folder / f".current.{version}.tmp"
    fd = os.open(pointer, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o640)
    with os.fdopen(fd, "w") as handle:
        handle.write(version)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(pointer, folder / "current")
    _prune(folder, version)
    return folder / version


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
    # Left over by a publish killed half way.
    for item in folder.glob(".*.tmp"):
        if time.time() - item.lstat().st_mtime > _KEEP_REPLACED_SECONDS:
            if item.is_dir() and not item.is_symlink():
                shutil.rmtree(item, ignore_errors=True)
            else:
                item.unlink(missing_ok=True)


def after_publish(con, data_dir: Path, as_of: dt.date) -> None:
    """The publish steps' one call: a failure here is logged and never fails the money run (the
    refund file and ledger are already committed); the next publish, or the CLI, writes it."""
    try:
        path = write(con, data_dir, as_of)
        log.info("Worklist snapshot of %s written: %s", as_of, path)
    except Exception:
        log.exception(
            "Worklist snapshot of %s not written; the pages show the previous one. What to do: "
            "python -m auto_refunds.worklist.snapshot --date %s (while no run holds the warehouse)",
            as_of,
            as_of,
        )


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
            print(write(con, settings.data_dir, day))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
