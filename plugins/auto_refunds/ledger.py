"""The refund ledger: every refund ever published to ImaginePay, and what became of it.

The ledger is written from published refund files only, because the published file *is* the
request: a refund enters the ledger as SENT exactly when its file (and manifest) exist, and every
run first records any published file that the ledger does not know yet. So a kill between writing
the file and recording it is healed by the next run of any date, and a refund that was never
published can never block a credit.

States move forward only: SENT -> REFUNDED | DECLINED | AMOUNT_MISMATCH | UNANSWERED, and
UNANSWERED -> REFUNDED | DECLINED | AMOUNT_MISMATCH when a late answer arrives.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

import duckdb

from auto_refunds.landing import sha256_of
from auto_refunds.layout import REFUNDS_HEADER, Layout, date_in_name
from auto_refunds.outbox import read_as_text
from auto_refunds.warehouse import scalar

log = logging.getLogger(__name__)

SENT = "SENT"
REFUNDED = "REFUNDED"
DECLINED = "DECLINED"
AMOUNT_MISMATCH = "AMOUNT_MISMATCH"
UNANSWERED = "UNANSWERED"


class LedgerConflict(RuntimeError):
    """A published file contradicts the ledger: something refunded a credit twice."""


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

    read_as_text(con, csv_path, "published_refunds", REFUNDS_HEADER)
    clash = con.execute(
        """
        select published_refunds.refund_id, refund_ledger.requested_date
        from published_refunds
        inner join refund_ledger
            on published_refunds.refund_id = refund_ledger.refund_id
            or (published_refunds.credit_id = refund_ledger.credit_id
                and refund_ledger.status <> 'DECLINED')
        where refund_ledger.requested_date <> ?
        limit 5
        """,
        [as_of],
    ).fetchall()
    if clash:
        raise LedgerConflict(
            f"{csv_path}: credits already refunded in the files of other dates: "
            + ", ".join(f"{refund_id} ({day})" for refund_id, day in clash)
        )
    added = scalar(
        con,
        """
        select count(*) from published_refunds
        anti join refund_ledger using (refund_id)
        """,
    )
    con.execute(
        """
        insert into refund_ledger_events (refund_id, status, as_of_date, source_file, line_number)
        select refund_id, 'SENT', ?, ?, null
        from published_refunds
        anti join refund_ledger using (refund_id)
        """,
        [as_of, csv_path.name],
    )
    con.execute(
        """
        insert into refund_ledger (
            refund_id, credit_id, client_id, account_id, original_txn_id, card_token,
            refund_amount, requested_date, refund_file, status, status_date
        )
        select
            refund_id, credit_id, client_id, account_id, original_txn_id, card_token,
            refund_amount::decimal(18, 2), ?, ?, 'SENT', ?
        from published_refunds
        anti join refund_ledger using (refund_id)
        """,
        [as_of, csv_path.name, as_of],
    )
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
    con.execute("drop table published_refunds")
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
