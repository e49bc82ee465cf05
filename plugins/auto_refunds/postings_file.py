"""The postings file for ImagineOne (CONTRACT 5), delivered exactly once per reconciled date.

A reconciliation commits first: the ledger moves, the exceptions, D's rows of
``main.payment_postings`` and D's row of ``main.postings_files`` (with the SHA-256 of the file
those rows make, not yet delivered) in one transaction. Then the file is promoted and marked
delivered. The postings file cannot carry the declines, the mismatches or the aging, so it
cannot be the commit marker the refund file is; the warehouse is, and the file follows it. A kill
in between leaves a committed, undelivered date, which any later run of either DAG delivers
(``deliver``): the same bytes, written from the committed rows and checked against the SHA-256.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import duckdb

from auto_refunds.layout import POSTINGS_HEADER, Layout
from auto_refunds.outbox import PublishedFileConflict, Staged, stage
from auto_refunds.warehouse import scalar

log = logging.getLogger(__name__)

_COLUMNS = ", ".join(POSTINGS_HEADER)


def _stage(con: duckdb.DuckDBPyConnection, path: Path, rows: str) -> Staged:
    """The postings file at ``path`` from the rows of ``rows`` (a table, filtered or not)."""
    return stage(
        con,
        f"select {_COLUMNS} from {rows} order by payment_id",
        path,
        POSTINGS_HEADER,
        "payment_id",
        published=path.exists() or path.is_symlink(),
    )


def stage_postings(con: duckdb.DuckDBPyConnection, layout: Layout, as_of: dt.date) -> Staged:
    """The postings file of D from the audited ``marts.payment_postings``; refuses to change a
    file already published."""
    path = layout.postings(as_of)
    recorded = scalar(con, "select sha256 from main.postings_files where as_of_date = ?", [as_of])
    staged = _stage(con, path, "marts.payment_postings")
    if recorded is not None and recorded != staged.sha256:
        staged.discard()
        raise PublishedFileConflict(
            f"{path}: the reconciliation of {as_of} was committed with postings of sha256 "
            f"{recorded}; this run would post other rows (sha256 {staged.sha256}). The "
            "committed postings are left as they were"
        )
    return staged


def record(con: duckdb.DuckDBPyConnection, as_of: dt.date, staged: Staged) -> bool:
    """Record D's postings file as committed, not yet delivered; inside the publish transaction.
    Returns whether it is new."""
    known = scalar(con, "select count(*) from main.postings_files where as_of_date = ?", [as_of])
    if known:
        return False
    count, total = con.execute(
        "select count(*), coalesce(sum(payment_amount), 0)::decimal(18, 2) "
        "from main.payment_postings where as_of_date = ?",
        [as_of],
    ).fetchone()
    con.execute(
        "insert into main.postings_files values (?, ?, ?, ?, ?, false)",
        [as_of, staged.path.name, count, total, staged.sha256],
    )
    return True


def mark_delivered(con: duckdb.DuckDBPyConnection, as_of: dt.date) -> None:
    con.execute("update main.postings_files set delivered = true where as_of_date = ?", [as_of])


def deliver(con: duckdb.DuckDBPyConnection, layout: Layout) -> int:
    """Deliver every committed postings file a kill left undelivered; returns how many."""
    pending = con.execute(
        "select as_of_date, sha256 from main.postings_files where not delivered order by 1"
    ).fetchall()
    for as_of, recorded in pending:
        path = layout.postings(as_of)
        staged = _stage(
            con, path, f"main.payment_postings where as_of_date = date '{as_of.isoformat()}'"
        )
        if staged.sha256 != recorded:
            staged.discard()
            raise PublishedFileConflict(
                f"{path}: the committed postings of {as_of} make a file of sha256 "
                f"{staged.sha256}, not the {recorded} recorded; nothing was delivered"
            )
        staged.promote()
        mark_delivered(con, as_of)
        log.warning("Delivered %s, committed by a run that was stopped before it", path)
    return len(pending)
