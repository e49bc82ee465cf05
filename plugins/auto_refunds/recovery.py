"""What a killed run of either DAG may have left half-done, finished by the next run of any date.

A run is killed between two of its writes at worst (CONTRACT 7, crashes), and each DAG has one
such moment whose second half another run can finish from what is on disk:

- the daily publish writes the refund file and its manifest, then records them in the ledger: the
  published file *is* the request, so a file the ledger does not know is recorded
  (``ledger.sync_published_files``);
- the reconciliation's publish commits the postings, then delivers their file: a committed
  postings file not delivered yet is delivered, the same bytes (``postings_file.deliver``).

``recover_published_files`` does both, in that order, and is the first step of the extract, of
the load and of both publishes: the models of D then decide knowing every refund published
before them, and each publish checks again while it holds the warehouse. Both halves are
idempotent, so a kill during the recovery itself is finished by the next one.
"""

from __future__ import annotations

import logging

import duckdb

from auto_refunds import ledger, postings_file
from auto_refunds.layout import Layout
from auto_refunds.warehouse import transaction

log = logging.getLogger(__name__)


def recover_published_files(con: duckdb.DuckDBPyConnection, layout: Layout) -> dict[str, int]:
    """Record the published refund files the ledger does not know (one transaction), then
    deliver the committed postings files not delivered yet. Opens no transaction of the
    caller's: call it on a connection with none open."""
    with transaction(con):
        refunds = ledger.sync_published_files(con, layout)
    postings_files = postings_file.deliver(con, layout)
    recovered = {"refunds_recorded": refunds, "postings_files_delivered": postings_files}
    if refunds or postings_files:
        log.warning("Recovered what a stopped run left half-done: %s", recovered)
    else:
        log.info(
            "Recovery: the ledger knows every published refund file, and every committed "
            "postings file is delivered"
        )
    return recovered
