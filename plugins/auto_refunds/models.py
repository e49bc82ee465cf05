"""The SQL models of ``include/sql``, in the order they build, and how one is built.

A model is one SELECT in ``include/sql/<layer>/<name>.sql``; building it replaces the table
``<layer>.<name>``. These build tables are the run's scratch space: the tables users query are
only changed by the publish step, after the data-quality gate.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from auto_refunds.faults import crash_point
from auto_refunds.settings import Settings

if TYPE_CHECKING:
    import duckdb

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Model:
    layer: str
    name: str

    @property
    def relation(self) -> str:
        return f"{self.layer}.{self.name}"

    def path(self, sql_dir: Path) -> Path:
        return sql_dir / self.layer / f"{self.name}.sql"


def _models(layer: str, *names: str) -> list[Model]:
    return [Model(layer, name) for name in names]


# Dependency order: each model reads only models above it.
DAILY_MODELS: tuple[Model, ...] = (
    *_models(
        "staging",
        "stg_imagineone__credits",
        "stg_imagineone__client_rules",
        "stg_imaginepay__transactions",
    ),
    *_models(
        "intermediate",
        "int_imaginepay__transactions_known_at_date",
        "int_sales_remaining",
        "int_credits_screened",
        "int_credit_candidates",
        "int_credits_matched_to_sales",
        "int_credits_allocated_to_sales",
    ),
    *_models(
        "marts",
        "credit_outcomes",
        "tickler_true_refunds_due",
        "tickler_refund_exceptions",
        "quarantine_rows",
    ),
)


RECONCILIATION_MODELS: tuple[Model, ...] = (
    *_models("staging", "stg_imaginepay__payments"),
    *_models("intermediate", "int_payments_matched_to_refunds", "int_refunds_unanswered"),
    *_models(
        "marts",
        "refund_ledger_transitions",
        "tickler_reconciliation_exceptions",
        "payment_postings",
        "unmatched_returns",
        "reconciliation_quarantine_rows",
    ),
)


def find(name: str) -> Model:
    return next(m for m in (*DAILY_MODELS, *RECONCILIATION_MODELS) if m.name == name)


def build_for_date(as_of: dt.date, model_name: str, settings: Settings | None = None) -> int:
    """Build one model for the run date ``as_of`` (one Airflow task); returns its row count."""
    # Imported here: the DAG files import this module for the model list, and parsing a DAG
    # should not load DuckDB.
    from auto_refunds.warehouse import connect

    settings = settings or Settings.from_env()
    with connect(settings, as_of) as con:
        return build(con, find(model_name), settings.sql_dir)


def build(con: duckdb.DuckDBPyConnection, model: Model, sql_dir: Path) -> int:
    """Build one model and return its row count."""
    started = time.perf_counter()
    sql = model.path(sql_dir).read_text()
    con.execute("begin transaction")
    con.execute(f"create or replace table {model.relation} as\n{sql}")
    crash_point("mid_model")
    con.execute("commit")
    rows = con.execute(f"select count(*) from {model.relation}").fetchone()[0]
    log.info("Built %s: %d rows in %.2f s", model.relation, rows, time.perf_counter() - started)
    return rows
