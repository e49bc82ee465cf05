"""The daily run for date D, as the steps the ``auto_refunds`` DAG calls one task each
(``pipeline.DAILY_STEPS``: these, then the worklist's snapshot of D).

Every step reads the warehouse and writes it inside one transaction, keyed by D only: a rerun of
any step, or of the whole run, replaces what it wrote before and nothing else.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from auto_refunds import decision, fingerprints, landing, ledger
from auto_refunds.faults import crash_point
from auto_refunds.file_lines import InputFileError
from auto_refunds.recovery import recover_published_files
from auto_refunds.refund_file import publish_refund_file
from auto_refunds.settings import Settings
from auto_refunds.warehouse import connect, replace_partition, transaction

log = logging.getLogger(__name__)

# Contract tables replaced by D's partition at publish; the exceptions tickler keeps the
# reconciliation's rows of D.
PARTITIONS = {
    "tickler_true_refunds_due": "as_of_date = $as_of",
    "tickler_refund_exceptions": "as_of_date = $as_of and source = 'ELIGIBILITY'",
    "credit_outcomes": "as_of_date = $as_of",
}


def extract(as_of: dt.date, settings: Settings | None = None) -> dict[str, int]:
    """Land D's credit snapshot and the client rules; register every ImaginePay extract up to D
    (its staging model types each one once, straight from the file).

    Fails, landing nothing, when a file of D is missing, unreadable or has a wrong header.
    First finishes what a killed run of either DAG left half-done (``recovery``), so that the
    models of D decide knowing every refund published before them.
    """
    settings = settings or Settings.from_env()
    layout = settings.layout
    with connect(settings, as_of) as con, _hashing() as hasher:
        recovered = recover_published_files(con, layout)
        with transaction(con):
            # The extracts not hashed before are hashed on the other core while DuckDB lands
            # the credits: the first holds the whole card history.
            extracts = [
                (file_date, path, _known_print(con, path, hasher))
                for file_date, path in layout.transactions_up_to(as_of)
            ]
            landed = {
                "credits": landing.land(con, landing.CREDITS, layout.credits(as_of), as_of),
                "client_rules": landing.land(con, landing.CLIENT_RULES, layout.client_rules, None),
            }
            if not layout.transactions(as_of).is_file():
                raise InputFileError(f"{layout.transactions(as_of)}: file not found")
            transactions = [
                landing.land(con, landing.TRANSACTIONS, path, file_date, _recorded(con, printed))
                for file_date, path, printed in extracts
            ]
    summary = {kind: item.data_lines for kind, item in landed.items()}
    summary["transaction_files"] = len(transactions)
    summary["transaction_lines"] = sum(item.data_lines for item in transactions)
    summary["refunds_recovered_into_ledger"] = recovered["refunds_recorded"]
    log.info("Extract for %s: %s", as_of, summary)
    return summary


@contextmanager
def _hashing() -> Iterator[ThreadPoolExecutor]:
    """A thread that hashes files; when the extract fails, the files it has not started on are
    dropped rather than hashed before the error is raised."""
    pool = ThreadPoolExecutor(1, thread_name_prefix="extract-hash")
    try:
        yield pool
    finally:
        pool.shutdown(cancel_futures=True)


@dataclass(frozen=True)
class _Print:
    """An extract's fingerprint: known by the file's stats, or else being hashed."""

    path: Path
    stat_digest: str
    known: fingerprints.Fingerprint | None = None
    hashing: Future | None = None


def _known_print(con, path: Path, hasher: ThreadPoolExecutor) -> _Print:
    """The extract's fingerprint, hashed again (on ``hasher``) only when the file on disk is not
    the one hashed before: same size, modification and change times, inode (as rsync and git
    decide). The first extract holds the whole card history: hashing it every night would grow
    each night's cost.
    """
    # Taken before hashing: a file written while it is hashed is hashed again next time.
    st = path.stat()
    stats = f"{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}"
    digest = hashlib.sha256(stats.encode()).hexdigest()
    known = con.execute(
        """
        select stats.sha256, stats.valid_utf8, stats.plain_lines, stats.mixed_line_ends
        from landing.file_stat_digests as stats
        inner join landing.files as files
            on stats.source_file = files.source_file and stats.sha256 = files.sha256
        where
            stats.source_file = ?
            and stats.stat_digest = ?
            and stats.plain_lines is not null
            and stats.mixed_line_ends is not null
        """,
        [path.name, digest],
    ).fetchone()
    if known is not None:
        sha256, valid_utf8, plain_lines, mixed_line_ends = known
        return _Print(
            path,
            digest,
            known=fingerprints.Fingerprint(
                sha256, valid_utf8, plain_lines=plain_lines, mixed_line_ends=mixed_line_ends
            ),
        )
    return _Print(path, digest, hashing=hasher.submit(fingerprints.fingerprint, path))


def _recorded(con, printed: _Print) -> fingerprints.Fingerprint:
    """The extract's fingerprint; one hashed now is recorded with its file's stats, inside the
    extract's transaction. The typing hashes a file again when it types it."""
    if printed.known is not None:
        return printed.known
    fingerprint = printed.hashing.result()
    con.execute(
        "insert or replace into landing.file_stat_digests "
        "(source_file, stat_digest, sha256, valid_utf8, plain_lines, mixed_line_ends) "
        "values (?, ?, ?, ?, ?, ?)",
        [
            printed.path.name,
            printed.stat_digest,
            fingerprint.sha256,
            fingerprint.valid_utf8,
            fingerprint.plain_lines,
            fingerprint.mixed_line_ends,
        ],
    )
    return fingerprint


def build_model(as_of: dt.date, model_name: str, settings: Settings | None = None) -> int | None:
    """One model task of the daily DAG (see ``decision``)."""
    return decision.build_model(decision.DAILY, as_of, model_name, settings)


def audit(as_of: dt.date, settings: Settings | None = None) -> str:
    """The write-audit-publish gate: raises when any expectation fails."""
    return decision.audit(decision.DAILY, as_of, settings)


@dataclass(frozen=True)
class Published:
    as_of_date: str
    path: str
    record_count: int
    total_amount: str
    sha256: str
    written: bool


def publish(as_of: dt.date, settings: Settings | None = None) -> Published:
    """Publish D's refund file; then, in one transaction, record it and D's tickler partitions.

    Holds the warehouse throughout: D's decision is checked (and made again if another run
    published in between or took the working tables), then published as it is.
    """
    settings = settings or Settings.from_env()
    layout = settings.layout
    with connect(settings, as_of) as con:
        recover_published_files(con, layout)
        decision.decide(con, decision.DAILY, as_of, settings)
        manifest, written = publish_refund_file(con, layout, as_of)
        crash_point("between_manifest_and_ledger")
        with transaction(con):
            ledger.record_refund_file(con, layout, as_of)
            for table, where in PARTITIONS.items():
                replace_partition(con, f"main.{table}", f"marts.{table}", where, {"as_of": as_of})
            replace_partition(
                con,
                "main.quarantine_rows",
                "marts.quarantine_rows",
                """source_file in (
                    select source_file from landing.files
                    where (file_kind = 'credits' and file_date = $as_of)
                        or file_kind = 'client_rules'
                        or (file_kind = 'transactions' and file_date <= $as_of)
                )""",
                {"as_of": as_of},
            )
    result = Published(
        as_of_date=manifest.as_of_date,
        path=str(layout.refunds(as_of)),
        record_count=manifest.record_count,
        total_amount=manifest.total_amount,
        sha256=manifest.sha256,
        written=written,
    )
    log.info(
        "%s %s: %d refunds for %s",
        "Published" if written else "Already published, unchanged:",
        result.path,
        result.record_count,
        result.total_amount,
    )
    return result


def as_dict(published: Published) -> dict:
    return asdict(published)


def run_all(as_of: dt.date, settings: Settings | None = None) -> Published:
    """The whole daily run in one process, every step of the DAG in its order, the worklist's
    snapshot included (``pipeline.run_daily``; tests, benchmark, CLI, demo)."""
    from auto_refunds import pipeline

    return pipeline.run_daily(as_of, settings)
