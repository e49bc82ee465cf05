"""The reconciliation of date D, as the steps the ``refund_reconciliation`` DAG calls.

ImaginePay answers each refund file with a payment file of the same date. Reconciling it moves
each refund of the ledger forward (REFUNDED, DECLINED, AMOUNT_MISMATCH, or UNANSWERED once it is
overdue; up one order of states, so the end does not depend on the order dates are reconciled
in), raises the exceptions a person must work, and writes the postings for ImagineOne.
Like the daily run, each step writes only rows keyed by D, so any of them can be repeated, and
the postings file, once published, is never changed (``postings_file``).

What to reconcile is decided from the state, not from the Asset events alone (CONTRACT 7):
every published refund file whose date is not reconciled yet is reconciled as soon as its
payment file is complete, oldest first, each as its own date (``reconcile_pending``), by all
the steps of one date's reconciliation (``pipeline.RECONCILIATION_STEPS``: these, then the
worklist's snapshot of that date).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import asdict, dataclass

from auto_refunds import decision, fingerprints, landing, ledger, postings_file
from auto_refunds.faults import crash_point
from auto_refunds.recovery import recover_published_files
from auto_refunds.sensors import PaymentFileMissing, PaymentFileNotSettled, payment_file_ready
from auto_refunds.settings import Settings
from auto_refunds.warehouse import connect, replace_partition, scalar, transaction

log = logging.getLogger(__name__)


def load(as_of: dt.date, settings: Settings | None = None) -> dict:
    """Land D's payment file, unless the same content was already reconciled under another name.

    First finishes what a killed run of either DAG left half-done (``recovery``), so that the
    models of D match the answers to every refund published before them.
    """
    settings = settings or Settings.from_env()
    layout = settings.layout
    path = layout.payments(as_of)
    # Collected from ImaginePay's location first when the inbox lacks it (CONTRACT 9).
    ready = payment_file_ready(as_of, settings)
    if not path.is_file():
        raise PaymentFileMissing(f"{path}: file not found")
    if not ready:
        raise PaymentFileNotSettled(
            f"{path}: changed less than {settings.payment_file_settle_seconds:.0f} s ago; "
            "a payment file is read only once it is complete"
        )
    landing.check_header(path, landing.PAYMENTS.header)
    printed = fingerprints.fingerprint(path)
    digest = printed.sha256
    with connect(settings, as_of) as con:
        recover_published_files(con, layout)
        with transaction(con):
            # A file without answers (its header alone) answers nothing twice: two such files
            # of two dates are alike, not one file sent again.
            twin = scalar(
                con,
                "select source_file from landing.files "
                "where file_kind = 'payments' and sha256 = ? and source_file <> ? "
                "and data_lines > 0",
                [digest, path.name],
            )
            if twin is not None:
                # The same answers again under another name: reconciling them twice would post
                # twice.
                log.warning(
                    "%s has the same content as %s: reported, and nothing changes", path, twin
                )
                con.execute(
                    "delete from landing.imaginepay__payments where source_file = ?", [path.name]
                )
                lines = 0
            else:
                lines = landing.land(con, landing.PAYMENTS, path, as_of, printed).data_lines
            con.execute(
                "insert or replace into payment_files values (?, ?, ?, ?)",
                [as_of, path.name, digest, twin],
            )
    summary = {"payment_lines": lines, "duplicate_of": twin}
    log.info("Load for %s: %s", as_of, summary)
    return summary


def build_model(as_of: dt.date, model_name: str, settings: Settings | None = None) -> int | None:
    """One model task of the reconciliation DAG (see ``decision``)."""
    return decision.build_model(decision.RECONCILIATION, as_of, model_name, settings)


def audit(as_of: dt.date, settings: Settings | None = None) -> str:
    return decision.audit(decision.RECONCILIATION, as_of, settings)


@dataclass(frozen=True)
class Reconciled:
    as_of_date: str
    postings_path: str
    postings: int
    postings_total: str
    # What D's file answered: refunds posted, declines and other amounts raised (each row by its
    # own rule), and the refunds D aged.
    refunded: int
    declined: int
    amount_mismatches: int
    unanswered: int
    unmatched_returns: int
    # Payment rows for a refund also answered by another date's file or an earlier line.
    repeated_answers: int


# A file re-sent under another name with a few lines changed repeats every answer: the log shows
# the first ones and the count.
_REPEATED_LOGGED = 20

# Tables replaced by D's partition at publish, from the model of the same name unless given.
PARTITIONS = {
    "tickler_refund_exceptions": (
        "marts.tickler_reconciliation_exceptions",
        "as_of_date = $as_of and source = 'RECONCILIATION'",
    ),
    "payment_postings": ("marts.payment_postings", "as_of_date = $as_of"),
    "unmatched_returns": ("marts.unmatched_returns", "as_of_date = $as_of"),
    # The answers D acted on: committed with the exceptions they raised.
    "payment_answers": ("marts.payment_answers", "as_of_date = $as_of"),
    "quarantine_rows": ("marts.reconciliation_quarantine_rows", "source_file = $payment_file"),
}


def publish(as_of: dt.date, settings: Settings | None = None) -> Reconciled:
    """Commit D's ledger moves, exceptions and postings in one transaction, then deliver the
    postings file (``postings_file``). Holds the warehouse throughout, like the daily publish."""
    settings = settings or Settings.from_env()
    layout = settings.layout
    with connect(settings, as_of) as con:
        recover_published_files(con, layout)
        decision.decide(con, decision.RECONCILIATION, as_of, settings)
        staged = postings_file.stage_postings(con, layout, as_of)
        try:
            with transaction(con):
                moved = ledger.apply_transitions(con)
                # What another date's reconciliation acts on depends on the answers D acted on.
                answers_changed = scalar(
                    con,
                    "select count(*) from ("
                    "(select * from main.payment_answers where as_of_date = ? "
                    "except all select * from marts.payment_answers) union all "
                    "(select * from marts.payment_answers except all "
                    "select * from main.payment_answers where as_of_date = ?))",
                    [as_of, as_of],
                )
                params = {"as_of": as_of, "payment_file": layout.payments(as_of).name}
                for table, (rows_from, where) in PARTITIONS.items():
                    used = {name: params[name] for name in params if f"${name}" in where}
                    replace_partition(con, f"main.{table}", rows_from, where, used)
                new_file = postings_file.record(con, as_of, staged)
                if moved or new_file or answers_changed:
                    ledger.record_publication(con, "reconciliation", as_of)
        except BaseException:
            staged.discard()
            raise
        crash_point("between_ledger_and_postings")
        staged.promote()
        postings_file.mark_delivered(con, as_of)
        refunded, declined, mismatched = con.execute(
            "select count(*) filter (where to_post), "
            "count(*) filter (where outcome = 'DECLINED' and acts), "
            "count(*) filter (where outcome = 'AMOUNT_MISMATCH' and acts) "
            "from intermediate.int_payments_matched_to_refunds"
        ).fetchone()
        unanswered = scalar(
            con, "select count(*) from marts.refund_ledger_transitions where status = 'UNANSWERED'"
        )
        postings, total = con.execute(
            "select count(*), coalesce(sum(payment_amount), 0)::varchar from marts.payment_postings"
        ).fetchone()
        unmatched = con.execute(
            "select refund_id, payment_id from marts.unmatched_returns order by all"
        ).fetchall()
        repeated = con.execute(
            "select refund_id, payment_id, status, payment_amount, outcome, to_post, "
            "moves_ledger, ledger_status, acts, acted_on "
            "from intermediate.int_payments_matched_to_refunds "
            "where answered_before order by refund_id, line_number"
        ).fetchall()
    for refund_id, payment_id in unmatched:
        log.warning(
            "Unmatched return: payment %s names refund %s, which we never sent; not posted",
            payment_id,
            refund_id,
        )
    # Never silent: a refund answered twice may be money that moved twice, or not at all,
    # which only a person can settle with ImaginePay.
    for row in repeated[:_REPEATED_LOGGED]:
        refund_id, payment_id, status, amount = row[:4]
        log.warning(
            "Repeated answer: payment %s (%s, %s) answers refund %s, which was answered "
            "before; %s: check it with ImaginePay",
            payment_id,
            status,
            amount,
            refund_id,
            _what_a_repeated_answer_did(*row[4:]),
        )
    if len(repeated) > _REPEATED_LOGGED:
        log.warning(
            "Repeated answers: %d in all, the first %d above", len(repeated), _REPEATED_LOGGED
        )
    result = Reconciled(
        as_of_date=as_of.isoformat(),
        postings_path=str(layout.postings(as_of)),
        postings=postings,
        postings_total=total,
        refunded=refunded,
        declined=declined,
        amount_mismatches=mismatched,
        unanswered=unanswered,
        unmatched_returns=len(unmatched),
        repeated_answers=len(repeated),
    )
    log.info("Reconciled %s: %s", as_of, result)
    return result


def _what_a_repeated_answer_did(
    outcome: str,
    to_post: bool,
    moves_ledger: bool,
    ledger_status: str,
    acts: bool,
    acted_on: dt.date | None,
) -> str:
    # The same answer acts once (int_payments_matched_to_refunds, acts).
    if acts:
        raised = "raised"
    elif acted_on is not None:
        raised = f"not raised again, the same answer raised it on {acted_on.isoformat()}"
    else:
        raised = "not raised again, the same answer raised it on an earlier line of this file"
    done = {
        "REFUNDED": "posted" if to_post else "not posted, the refund was posted already",
        "DECLINED": f"REFUND_DECLINED {raised}",
        "AMOUNT_MISMATCH": f"RETURN_AMOUNT_MISMATCH {raised}, not posted",
    }[outcome]
    held = (
        f"the ledger moves from {ledger_status} to {outcome}"
        if moves_ledger and ledger_status != outcome
        else f"the ledger holds {ledger_status}"
    )
    if moves_ledger and ledger_status == "DECLINED" and outcome != "DECLINED":
        # The nights since the decline counted none of it against its sale (remaining(t)): a
        # credit of the same account may have been refunded against that room meanwhile.
        held += (
            "; money moved after a decline, so its sale may now be refunded beyond its amount "
            "(check the sale's other refunds since the decline; an earlier file's decline "
            "raises APPROVED_AFTER_DECLINE)"
        )
    return f"{done}, {held}"


def run_all(as_of: dt.date, settings: Settings | None = None) -> Reconciled:
    """The reconciliation of D in one process, every step of one date as the DAG runs it, the
    worklist's snapshot included (``pipeline.run_reconciliation``)."""
    from auto_refunds import pipeline

    return pipeline.run_reconciliation(as_of, settings)


def pending_dates(settings: Settings) -> list[dt.date]:
    """Dates of published refund files not reconciled yet whose payment file is complete."""
    with connect(settings) as con:
        with transaction(con):
            ledger.sync_published_files(con, settings.layout)
        days = [
            row[0]
            for row in con.execute(
                "select as_of_date from main.refund_files "
                "anti join main.postings_files using (as_of_date) order by 1"
            ).fetchall()
        ]
    return [day for day in days if payment_file_ready(day, settings)]


def reconcile_pending(as_of: dt.date, which: str, settings: Settings | None = None) -> list[str]:
    """Reconcile every pending date before D (``which="before"``) or after it (``"after"``),
    oldest first, each as its own date: Airflow may batch several refund-file events into one
    run, or attach one to no run, and a refund answered in a file nobody reconciled would age
    into NO_PROCESSOR_RESPONSE."""
    settings = settings or Settings.from_env()
    done = []
    for day in pending_dates(settings):
        if (day < as_of) if which == "before" else (day > as_of):
            log.info("Reconciling %s, published and answered but not reconciled yet", day)
            run_all(day, settings)
            done.append(day.isoformat())
    return done


def as_dict(reconciled: Reconciled) -> dict:
    return asdict(reconciled)
