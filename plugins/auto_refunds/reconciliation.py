"""The reconciliation of date D, as the steps the ``refund_reconciliation`` DAG calls.

ImaginePay answers each refund file with a payment file of the same date. Reconciling it moves
each refund of the ledger forward (REFUNDED, DECLINED, AMOUNT_MISMATCH, or UNANSWERED once it is
overdue), raises the exceptions a person must work, and writes the postings for ImagineOne.
Like the daily run, each step writes only rows keyed by D, so any of them can be repeated, and
the postings file, once published, is never changed.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import asdict, dataclass

from auto_refunds import landing, ledger, models, quality
from auto_refunds.faults import crash_point
from auto_refunds.layout import POSTINGS_HEADER
from auto_refunds.outbox import promote, refuse_change, write_candidate
from auto_refunds.settings import Settings
from auto_refunds.warehouse import connect, scalar, transaction

log = logging.getLogger(__name__)


class PaymentFileMissing(RuntimeError):
    pass


def payment_file_arrived(as_of: dt.date, settings: Settings | None = None) -> bool:
    settings = settings or Settings.from_env()
    path = settings.layout.payments(as_of)
    log.info("Waiting for %s: %s", path, "arrived" if path.is_file() else "not there yet")
    return path.is_file()


def fail_if_overdue(as_of: dt.date, dag_run, timeout: dt.timedelta) -> None:
    """Fail, naming the file, once the run has waited ``timeout`` for it."""
    started = dag_run.start_date or dag_run.run_after
    waited = dt.datetime.now(dt.UTC) - started
    if waited >= timeout:
        path = Settings.from_env().layout.payments(as_of)
        raise PaymentFileMissing(
            f"{path}: the payment file did not arrive within {timeout} "
            f"(waited {waited}); nothing was reconciled"
        )


def poke_payment_file(
    as_of: dt.date, dag_run, timeout: dt.timedelta, started_by_refund_file: bool
) -> bool:
    """One poke of the sensor.

    A run the refund file started waits for ImaginePay's answer, up to ``timeout``. A manual run
    (or ``airflow dags test``) asks to reconcile D now: without the file it fails at once,
    naming it, instead of holding the run for a day.
    """
    if payment_file_arrived(as_of):
        return True
    if not started_by_refund_file:
        path = Settings.from_env().layout.payments(as_of)
        raise PaymentFileMissing(f"{path}: file not found (a manual run does not wait for it)")
    fail_if_overdue(as_of, dag_run, timeout)
    return False


def load(as_of: dt.date, settings: Settings | None = None) -> dict:
    """Land D's payment file, unless the same content was already reconciled under another name."""
    settings = settings or Settings.from_env()
    layout = settings.layout
    path = layout.payments(as_of)
    if not path.is_file():
        raise PaymentFileMissing(f"{path}: file not found")
    landing.check_header(path, landing.PAYMENTS.header)
    digest = landing.sha256_of(path)
    with connect(settings, as_of) as con, transaction(con):
        ledger.sync_published_files(con, layout)
        twin = scalar(
            con,
            "select source_file from landing.files "
            "where file_kind = 'payments' and sha256 = ? and source_file <> ?",
            [digest, path.name],
        )
        if twin is not None:
            # The same answers again under another name: reconciling them twice would post twice.
            log.warning("%s has the same content as %s: reported, and nothing changes", path, twin)
            con.execute(
                "delete from landing.imaginepay__payments where source_file = ?", [path.name]
            )
            lines = 0
        else:
            lines = landing.land(con, landing.PAYMENTS, path, as_of, digest).data_lines
        con.execute(
            "insert or replace into payment_files values (?, ?, ?, ?)",
            [as_of, path.name, digest, twin],
        )
    summary = {"payment_lines": lines, "duplicate_of": twin}
    log.info("Load for %s: %s", as_of, summary)
    return summary


def audit(as_of: dt.date, settings: Settings | None = None) -> str:
    settings = settings or Settings.from_env()
    with connect(settings, as_of) as con:
        return str(
            quality.run_gate(
                con, quality.RECONCILIATION_SUITES, as_of, settings, run_kind="reconciliation"
            )
        )


@dataclass(frozen=True)
class Reconciled:
    as_of_date: str
    postings_path: str
    postings: int
    postings_total: str
    refunded: int
    declined: int
    amount_mismatches: int
    unanswered: int
    unmatched_returns: int


def _publish_postings(con, layout, as_of: dt.date) -> bool:
    path = layout.postings(as_of)
    candidate = write_candidate(
        con,
        f"select {', '.join(POSTINGS_HEADER)} from marts.payment_postings order by payment_id",
        path,
    )
    if path.exists():
        if candidate.read_bytes() == path.read_bytes():
            candidate.unlink()
            return False
        refuse_change(con, path, candidate, POSTINGS_HEADER, "payment_id")
    promote(candidate, path)
    return True


def publish(as_of: dt.date, settings: Settings | None = None) -> Reconciled:
    """Write D's postings file, then apply D's ledger moves and exceptions in one transaction."""
    settings = settings or Settings.from_env()
    layout = settings.layout
    with connect(settings, as_of) as con:
        _publish_postings(con, layout, as_of)
        crash_point("between_postings_and_ledger")
        with transaction(con):
            con.execute(
                """
                insert into refund_ledger_events
                    (refund_id, status, as_of_date, source_file, line_number, detail)
                select refund_id, status, as_of_date, source_file, line_number, detail
                from marts.refund_ledger_transitions as moves
                anti join refund_ledger_events as seen
                    using (refund_id, status, as_of_date)
                """
            )
            con.execute(
                """
                update refund_ledger set
                    status = moves.status,
                    status_date = moves.as_of_date,
                    status_source_file = moves.source_file,
                    status_line_number = moves.line_number,
                    response_code = moves.response_code,
                    response_message = moves.response_message
                from marts.refund_ledger_transitions as moves
                where refund_ledger.refund_id = moves.refund_id
                """
            )
            params = {"as_of": as_of}
            con.execute(
                "delete from tickler_refund_exceptions "
                "where as_of_date = $as_of and source = 'RECONCILIATION'",
                params,
            )
            con.execute(
                "insert into tickler_refund_exceptions by name "
                "select * from marts.tickler_reconciliation_exceptions"
            )
            for table in ("payment_postings", "unmatched_returns"):
                con.execute(f"delete from main.{table} where as_of_date = $as_of", params)
                con.execute(f"insert into main.{table} by name select * from marts.{table}")
            con.execute(
                "delete from quarantine_rows where source_file = ?",
                [layout.payments(as_of).name],
            )
            con.execute(
                "insert into quarantine_rows by name "
                "select * from marts.reconciliation_quarantine_rows"
            )
        counts = dict(
            con.execute(
                "select status, count(*) from marts.refund_ledger_transitions group by status"
            ).fetchall()
        )
        postings, total = con.execute(
            "select count(*), coalesce(sum(payment_amount), 0)::varchar from marts.payment_postings"
        ).fetchone()
        unmatched = con.execute(
            "select refund_id, payment_id from marts.unmatched_returns order by all"
        ).fetchall()
    for refund_id, payment_id in unmatched:
        log.warning("Unmatched return: payment %s names refund %s, which we never sent; "
                    "not posted", payment_id, refund_id)
    result = Reconciled(
        as_of_date=as_of.isoformat(),
        postings_path=str(layout.postings(as_of)),
        postings=postings,
        postings_total=total,
        refunded=counts.get("REFUNDED", 0),
        declined=counts.get("DECLINED", 0),
        amount_mismatches=counts.get("AMOUNT_MISMATCH", 0),
        unanswered=counts.get("UNANSWERED", 0),
        unmatched_returns=len(unmatched),
    )
    log.info("Reconciled %s: %s", as_of, result)
    return result


def run_all(as_of: dt.date, settings: Settings | None = None) -> Reconciled:
    """The whole reconciliation in one process, step by step as the DAG runs it."""
    settings = settings or Settings.from_env()
    load(as_of, settings)
    for model in models.RECONCILIATION_MODELS:
        models.build_for_date(as_of, model.name, settings)
    audit(as_of, settings)
    return publish(as_of, settings)


def as_dict(reconciled: Reconciled) -> dict:
    return asdict(reconciled)
