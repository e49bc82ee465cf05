"""The refund ledger: every refund ever published to ImaginePay, and what became of it.

The ledger is written from published refund files only, because the published file *is* the
request: a refund enters the ledger as SENT exactly when its file (and manifest) exist, and every
run first records any published file that the ledger does not know yet. So a kill between writing
the file and recording it is healed by the next run of any date, and a refund that was never
published can never block a credit.

States move forward only, up one order: SENT, UNANSWERED, DECLINED, AMOUNT_MISMATCH, REFUNDED
(``ledger_state_rank`` in macros.sql). A late answer moves an UNANSWERED refund; an answer saying
money moved outranks a decline, so a later decline never frees a posted refund. The statements
that write the ledger live in ``include/sql/publish/``; each write is followed, in the same
transaction, by the guards the database cannot declare.

Every write that changes the ledger or the postings is a *publication*, numbered in
``main.publications``: a decision made before a later publication is stale (``decision.py``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import duckdb

from auto_refunds.errors import NeedsAPerson
from auto_refunds.fingerprints import sha256_of
from auto_refunds.layout import REFUNDS_HEADER, Layout, date_in_name
from auto_refunds.outbox import read_as_text
from auto_refunds.sql import statement
from auto_refunds.warehouse import scalar

log = logging.getLogger(__name__)

SENT = "SENT"
REFUNDED = "REFUNDED"
DECLINED = "DECLINED"
AMOUNT_MISMATCH = "AMOUNT_MISMATCH"
UNANSWERED = "UNANSWERED"


class LedgerConflict(NeedsAPerson):
    """A refund file or a move contradicts the ledger: it would refund a credit twice, or move a
    refund backwards."""

    action = (
        "nothing was published or recorded; find how the credit came to be refunded twice "
        "(the ledger rows and files named above) before running this date again"
    )


def generation(con: duckdb.DuckDBPyConnection) -> int:
    """How many publications changed the ledger or the postings so far."""
    return scalar(con, "select coalesce(max(generation), 0) from main.publications")


def record_publication(con: duckdb.DuckDBPyConnection, run_kind: str, as_of: dt.date) -> None:
    """Number a publication; runs inside the transaction that published."""
    con.execute(
        "insert into main.publications values (?, ?, ?)",
        [generation(con) + 1, run_kind, as_of],
    )


def check_refund_file(con: duckdb.DuckDBPyConnection, csv_path: Path, as_of: dt.date) -> None:
    """Refuse a refund file (published or about to be) that refunds a credit of another date's file.

    Leaves the file's rows in the temp table ``refunds_to_send`` for ``record_refund_file``.
    """
    read_as_text(con, csv_path, "refunds_to_send", REFUNDS_HEADER)
    con.execute("set variable refund_file_date = ?::date", [as_of])
    con.execute("set variable refund_file_name = ?", [csv_path.name])
    clash = con.execute(statement("publish/refund_file_conflicts")).fetchall()
    if clash:
        raise LedgerConflict(
            f"{csv_path}: credits already refunded in the files of other dates: "
            + ", ".join(f"{refund} (ledger {known} of {day})" for refund, known, day in clash[:5])
        )


def check_guards(con: duckdb.DuckDBPyConnection, written_credits: str) -> None:
    """The invariant no index can hold: one live refund per credit, for the credits the SQL
    ``written_credits`` selects (``credit_id``), those the caller's transaction wrote. Fails the
    transaction."""
    con.execute(
        f"create or replace temp table ledger_written_credits as "
        f"select distinct credit_id from ({written_credits})"
    )
    doubled = con.execute(statement("publish/ledger_credits_with_two_live_refunds")).fetchall()
    con.execute("drop table ledger_written_credits")
    if doubled:
        raise LedgerConflict(
            "the ledger would hold two live refunds for a credit: "
            + ", ".join(f"{credit} ({', '.join(ids)})" for credit, ids in doubled)
        )


def record_refund_file(con: duckdb.DuckDBPyConnection, layout: Layout, as_of: dt.date) -> int:
    """Record the published refund file of ``as_of`` in the ledger; returns the refunds added.

    Idempotent. Runs inside the caller's transaction.
    """
    csv_path = layout.refunds(as_of)
    manifest = json.loads(layout.refunds_manifest(as_of).read_text())
    known = scalar(con, "select sha256 from refund_files where as_of_date = ?", [as_of])
    if known == manifest["sha256"]:
        return 0
    if known is not None:
        raise LedgerConflict(
            f"{csv_path}: the ledger recorded this date with sha256 {known}, "
            f"the published manifest says {manifest['sha256']}"
        )
    if sha256_of(csv_path) != manifest["sha256"]:
        raise LedgerConflict(f"{csv_path}: content does not match its manifest's sha256")

    check_refund_file(con, csv_path, as_of)
    added = scalar(
        con, "select count(*) from refunds_to_send anti join refund_ledger using (refund_id)"
    )
    con.execute(statement("publish/ledger_record_sent"))
    check_guards(con, "select credit_id from refunds_to_send")
    con.execute(
        "insert into refund_files values (?, ?, ?, ?::decimal(18, 2), ?)",
        [
            as_of,
            csv_path.name,
            manifest["record_count"],
            manifest["total_amount"],
            manifest["sha256"],
        ],
    )
    record_publication(con, "daily", as_of)
    con.execute("drop table refunds_to_send")
    log.info("Ledger: recorded %s, %d new refund(s)", csv_path.name, added)
    return added


def sync_published_files(con: duckdb.DuckDBPyConnection, layout: Layout) -> int:
    """Record every published refund file the ledger has not seen (after a kill, say)."""
    recorded = {row[0] for row in con.execute("select as_of_date from refund_files").fetchall()}
    added = 0
    for manifest in sorted(layout.refunds_outbox.glob("refunds_*.manifest.json")):
        day = date_in_name(manifest.name.replace(".manifest.json", ".csv"))
        if day is not None and day not in recorded:
            added += record_refund_file(con, layout, day)
    return added


def apply_transitions(con: duckdb.DuckDBPyConnection) -> int:
    """Move the ledger by ``marts.refund_ledger_transitions``, forward only; returns the number of
    new states. Runs inside the caller's transaction."""
    backwards = con.execute(statement("publish/ledger_backward_moves")).fetchall()
    if backwards:
        raise LedgerConflict(
            "the reconciliation would move refunds backwards: "
            + ", ".join(f"{refund} {old} -> {new}" for refund, old, new in backwards[:5])
        )
    before = scalar(con, "select count(*) from main.refund_ledger_events")
    con.execute(statement("publish/ledger_apply_transitions"))
    check_guards(
        con,
        "select credit_id from main.refund_ledger "
        "semi join marts.refund_ledger_transitions using (refund_id)",
    )
    return scalar(con, "select count(*) from main.refund_ledger_events") - before
