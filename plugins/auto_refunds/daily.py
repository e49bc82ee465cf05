"""The daily run for date D, as the steps the ``auto_refunds`` DAG calls one task each.

Every step reads the warehouse and writes it inside one transaction, keyed by D only: a rerun of
any step, or of the whole run, replaces what it wrote before and nothing else.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import asdict, dataclass

from auto_refunds import landing, ledger, models, quality
from auto_refunds.faults import crash_point
from auto_refunds.refund_file import publish_refund_file
from auto_refunds.settings import Settings
from auto_refunds.warehouse import connect, transaction

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
    """
    settings = settings or Settings.from_env()
    layout = settings.layout
    with connect(settings, as_of) as con, transaction(con):
        landed = {
            "credits": landing.land(con, landing.CREDITS, layout.credits(as_of), as_of),
            "client_rules": landing.land(con, landing.CLIENT_RULES, layout.client_rules, None),
        }
        if not layout.transactions(as_of).is_file():
            raise landing.InputFileError(f"{layout.transactions(as_of)}: file not found")
        transactions = [
            landing.land(con, landing.TRANSACTIONS, path, file_date)
            for file_date, path in layout.transactions_up_to(as_of)
        ]
        recovered = ledger.sync_published_files(con, layout)
    summary = {kind: item.data_lines for kind, item in landed.items()}
    summary["transaction_files"] = len(transactions)
    summary["transaction_lines"] = sum(item.data_lines for item in transactions)
    summary["refunds_recovered_into_ledger"] = recovered
    log.info("Extract for %s: %s", as_of, summary)
    return summary


def audit(as_of: dt.date, settings: Settings | None = None) -> str:
    """The write-audit-publish gate: raises when any expectation fails."""
    settings = settings or Settings.from_env()
    with connect(settings, as_of) as con:
        return str(quality.run_gate(con, quality.DAILY_SUITES, as_of, settings, run_kind="daily"))


@dataclass(frozen=True)
class Published:
    as_of_date: str
    path: str
    record_count: int
    total_amount: str
    sha256: str
    written: bool


def publish(as_of: dt.date, settings: Settings | None = None) -> Published:
    """Publish D's refund file; then, in one transaction, record it and D's tickler partitions."""
    settings = settings or Settings.from_env()
    layout = settings.layout
    with connect(settings, as_of) as con:
        manifest, written = publish_refund_file(con, layout, as_of)
        crash_point("between_manifest_and_ledger")
        with transaction(con):
            ledger.record_refund_file(con, layout, as_of)
            for table, predicate in PARTITIONS.items():
                con.execute(f"delete from main.{table} where {predicate}", {"as_of": as_of})
                con.execute(f"insert into main.{table} by name select * from marts.{table}")
            con.execute(
                """
                delete from main.quarantine_rows where source_file in (
                    select source_file from landing.files
                    where (file_kind = 'credits' and file_date = $as_of)
                        or file_kind = 'client_rules'
                        or (file_kind = 'transactions' and file_date <= $as_of)
                )
                """,
                {"as_of": as_of},
            )
            con.execute(
                "insert into main.quarantine_rows by name select * from marts.quarantine_rows"
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
    """The whole daily run in one process, step by step as the DAG runs it (tests, benchmark)."""
    settings = settings or Settings.from_env()
    extract(as_of, settings)
    for model in models.DAILY_MODELS:
        models.build_for_date(as_of, model.name, settings)
    audit(as_of, settings)
    return publish(as_of, settings)
