"""The SQL models of ``include/sql``, in the order they build, and how one is built.

A model is one SELECT in ``include/sql/<layer>/<name>.sql``; building it replaces the table
``<layer>.<name>``. These build tables are the run's scratch space: the tables users query are
only changed by the publish step, after the data-quality gate.

One model is built per file instead: the staging of ImaginePay extracts, which accumulate every
day; ``extract_typing`` types it one extract at a time, with its ``<name>.supersede.sql``.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from auto_refunds.faults import crash_point
from auto_refunds.settings import Settings

if TYPE_CHECKING:
    import duckdb

    from auto_refunds import extract_typing

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Model:
    layer: str
    name: str
    # The landing.files kind a per-file model types, one file at a time (extract_typing), and
    # the id a later file can bring a new version of.
    per_file_kind: str | None = None
    per_file_key: str | None = None
    # Columns of a per-file model stored without compression: ids that hardly repeat, which
    # DuckDB's string compression spends more time on than it saves (docs/design.md, "What is
    # written uncompressed").
    per_file_uncompressed: tuple[str, ...] = ()
    # "view" for a model that only filters a kept table, or that one model alone reads: writing
    # millions of rows to read them once would be most of its cost. A view is not counted: its
    # rows are computed where they are read (docs/design.md, "Views computed where they are read").
    materialized: str = "table"

    @property
    def relation(self) -> str:
        return f"{self.layer}.{self.name}"

    def path(self, sql_dir: Path, suffix: str = ".sql") -> Path:
        return sql_dir / self.layer / f"{self.name}{suffix}"


def _models(layer: str, *names: str) -> list[Model]:
    return [Model(layer, name) for name in names]


# Dependency order: each model reads only models above it.
DAILY_MODELS: tuple[Model, ...] = (
    *_models(
        "staging",
        "stg_imagineone__credits",
        "stg_imagineone__client_rules",
    ),
    Model(
        "staging",
        "stg_imaginepay__transactions",
        per_file_kind="transactions",
        per_file_key="txn_id",
        per_file_uncompressed=("txn_id", "card_token", "account_id"),
    ),
    Model("intermediate", "int_imaginepay__transactions_known_at_date", materialized="view"),
    Model("intermediate", "int_sales_remaining", materialized="view"),
    *_models("intermediate", "int_credits_screened"),
    Model("intermediate", "int_credit_candidates", materialized="view"),
    *_models(
        "intermediate",
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
        "payment_answers",
        "reconciliation_quarantine_rows",
    ),
)


# The schemas models build into; main.* and landing.* are sources, written outside the models.
LAYERS = ("staging", "intermediate", "marts")
# A relation a model reads: ``from`` or ``join`` (left, semi, anti...) then layer.name.
_READ = re.compile(rf"\b(?:from|join)\s+({'|'.join(LAYERS)})\.(\w+)", re.IGNORECASE)


def depends_on(model: Model, sql_dir: Path) -> frozenset[str]:
    """The models (as ``layer.name``) whose tables ``model`` reads."""
    sql = model.path(sql_dir).read_text()
    sql = re.sub(r"--[^\n]*", "", sql)
    return frozenset(f"{layer}.{name}" for layer, name in _READ.findall(sql))


def find(name: str) -> Model:
    return next(m for m in (*DAILY_MODELS, *RECONCILIATION_MODELS) if m.name == name)


def build_for_date(as_of: dt.date, model_name: str, settings: Settings | None = None) -> int | None:
    """Build one model for the run date ``as_of`` (one Airflow task); returns its row count
    (None for a view)."""
    # Imported here: the DAG files import this module for the model list, and parsing a DAG
    # should not load DuckDB.
    from auto_refunds.warehouse import connect

    settings = settings or Settings.from_env()
    model = find(model_name)
    with connect(settings, as_of) as con:
        return build_on(con, model, settings)


def build_on(con: duckdb.DuckDBPyConnection, model: Model, settings: Settings) -> int | None:
    """Build one model on an open warehouse connection (its date set); returns its row count
    (None for a view).

    Opens no connection itself, so that several models can be built in one.
    """
    if model.per_file_kind:
        from auto_refunds import extract_typing

        return extract_typing.build_per_file(
            con,
            per_file_model(model, settings.sql_dir),
            settings.layout.landing_folder(model.per_file_kind),
        )
    return build(con, model, settings.sql_dir)


def per_file_model(model: Model, sql_dir: Path) -> extract_typing.PerFileModel:
    """What the per-file typing needs of ``model``: its SQL, supersession and key."""
    from auto_refunds.extract_typing import PerFileModel
    from auto_refunds.typing_version import typing_version

    if not (model.per_file_kind and model.per_file_key):
        raise ValueError(f"{model.relation} is not typed file by file")
    return PerFileModel(
        relation=model.relation,
        file_kind=model.per_file_kind,
        key=model.per_file_key,
        sql=model.path(sql_dir).read_text(),
        repeated_keys_sql=model.path(sql_dir, ".repeated_keys.sql").read_text(),
        supersede_sql=model.path(sql_dir, ".supersede.sql").read_text(),
        uncompressed=model.per_file_uncompressed,
        # Bumped on purpose when the typing changes (tests/test_typing_version.py).
        version=typing_version(model.per_file_kind),
    )


def build(con: duckdb.DuckDBPyConnection, model: Model, sql_dir: Path) -> int | None:
    """Build one model (not a per-file one) and return its row count; None for a view."""
    from auto_refunds.warehouse import transaction

    started = time.perf_counter()
    # A model's table is replaced by the next run: compressing it costs time that no later read
    # wins back (docs/design.md, "What is written uncompressed"). Kept until the commit, which
    # writes what the statement left in memory.
    con.execute("set force_compression = 'uncompressed'")
    try:
        with transaction(con):
            _replace(con, model, model.path(sql_dir).read_text())
            crash_point("mid_model")
    finally:
        # After the rollback of a failed build, if any: the session takes statements again.
        con.execute("reset force_compression")
    if model.materialized == "view":
        # Counting a view computes it: at 10M credits, the candidates' count took as long as
        # the model that reads them.
        log.info(
            "Built %s: a view, computed where it is read, in %.2f s",
            model.relation,
            time.perf_counter() - started,
        )
        return None
    rows = con.execute(f"select count(*) from {model.relation}").fetchone()[0]
    log.info("Built %s: %d rows in %.2f s", model.relation, rows, time.perf_counter() - started)
    return rows


def _replace(con: duckdb.DuckDBPyConnection, model: Model, sql: str) -> None:
    from auto_refunds.extract_typing import table_exists

    if model.materialized == "view":
        # A view is read later, by the next tasks and by people, in sessions that may hold
        # another date or none: it keeps the date of the run that built it, as a table would.
        as_of = con.execute("select getvariable('as_of_date')").fetchone()[0]
        sql = sql.replace("getvariable('as_of_date')", f"date '{as_of.isoformat()}'")
        if "getvariable" in sql:
            # Left in, it would read nothing in a session without it, silently.
            raise ValueError(
                f"{model.relation}: a view reads no session variable but the run's date, "
                "spelled getvariable('as_of_date')"
            )
        if table_exists(con, model.relation):
            # Built as a table by an earlier version of the project.
            con.execute(f"drop table {model.relation}")
    con.execute(f"create or replace {model.materialized} {model.relation} as\n{sql}")
