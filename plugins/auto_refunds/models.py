"""The SQL models of ``include/sql``, in the order they build, and how one is built.

A model is one SELECT in ``include/sql/<layer>/<name>.sql``; building it replaces the table
``<layer>.<name>``. These build tables are the run's scratch space: the tables users query are
only changed by the publish step, after the data-quality gate.

One model is built per file instead: the staging of ImaginePay extracts, which accumulate every
day. Its SELECT reads one extract at a time from ``landing_file``; each extract is typed once
and its rows are kept, keyed by the file, until its content (or the model) changes. Its
``<name>.supersede.sql`` then dates the versions the extract superseded, so the transactions
known at D are a filter (a view) rather than a pass over every extract on every run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
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
    # The landing.files kind a per-file model types, one file at a time.
    per_file_kind: str | None = None
    # "view" for a model that only filters a kept table: writing millions of rows again would be
    # most of its cost, and the count its task logs reads the same rows.
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
    Model("staging", "stg_imaginepay__transactions", per_file_kind="transactions"),
    Model("intermediate", "int_imaginepay__transactions_known_at_date", materialized="view"),
    *_models(
        "intermediate",
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
    model = find(model_name)
    with connect(settings, as_of) as con:
        return build_on(con, model, settings)


def build_on(con: duckdb.DuckDBPyConnection, model: Model, settings: Settings) -> int:
    """Build one model on an open warehouse connection; returns its row count."""
    if model.per_file_kind:
        folder = settings.layout.landing_folder(model.per_file_kind)
        return build_per_file(con, model, settings.sql_dir, folder)
    return build(con, model, settings.sql_dir)


def build(con: duckdb.DuckDBPyConnection, model: Model, sql_dir: Path) -> int:
    """Build one model and return its row count."""
    from auto_refunds.warehouse import transaction

    started = time.perf_counter()
    sql = model.path(sql_dir).read_text()
    with transaction(con):
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
            if _table_exists(con, model):
                # Built as a table by an earlier version of the project.
                con.execute(f"drop table {model.relation}")
        con.execute(f"create or replace {model.materialized} {model.relation} as\n{sql}")
        crash_point("mid_model")
    rows = con.execute(f"select count(*) from {model.relation}").fetchone()[0]
    log.info("Built %s: %d rows in %.2f s", model.relation, rows, time.perf_counter() - started)
    return rows


def build_per_file(
    con: duckdb.DuckDBPyConnection, model: Model, sql_dir: Path, folder: Path
) -> int:
    """Type every registered file of the model's kind dated up to D that is not typed yet, or
    whose content or model changed since; return the model's rows for D.

    Each file is replaced in one transaction, and only after checking that its content is still
    the one registered at extract: the typed rows are always those of the registered file.
    """
    from auto_refunds.landing import (
        InputFileError,
        insertion_order,
        lines_query,
        sha256_of,
        sql_literal,
    )
    from auto_refunds.warehouse import transaction

    started = time.perf_counter()
    sql = model.path(sql_dir).read_text()
    supersede = model.path(sql_dir, ".supersede.sql").read_text()
    # The typed rows depend on the model, the parsing macros and the supersession: a change to
    # any of them types again.
    version = hashlib.sha256(
        (sql + supersede + (sql_dir / "warehouse" / "macros.sql").read_text()).encode()
    ).hexdigest()
    if not _is_current(con, model, version):
        # No kept table yet, or typed by another version of the model: type every file again.
        # Safe to be killed here: the next run finds the table gone and starts over.
        with transaction(con):
            con.execute(f"drop table if exists {model.relation}")
            con.execute(
                "delete from staging.typed_files where file_kind = ?", [model.per_file_kind]
            )
    pending = con.execute(
        """
        select files.source_file, files.file_date, files.sha256
        from landing.files as files
        left join staging.typed_files as typed
            on files.source_file = typed.source_file
        where
            files.file_kind = $kind
            and files.file_date <= getvariable('as_of_date')
            and typed.sha256 is distinct from files.sha256
        order by files.file_date, files.source_file
        """,
        {"kind": model.per_file_kind},
    ).fetchall()
    for source_file, file_date, digest in pending:
        path = folder / source_file
        changed = InputFileError(
            f"{path}: changed or removed since it was registered; run the extract again"
        )
        if not path.is_file():
            raise changed
        with transaction(con), ThreadPoolExecutor(1) as hasher:
            # Hashed again while DuckDB numbers the lines, which leaves a core free: the file is
            # typed only if it is still the content registered (4 s saved at 40M lines).
            rehashed = hasher.submit(sha256_of, path)
            with insertion_order(con):
                con.execute(f"create or replace temp table landing_lines as {lines_query(path)}")
            if rehashed.result() != digest:
                raise changed
            # The file's name and date are the same on every line: held once, not per line (at
            # 40M lines, a gigabyte more to spill).
            con.execute(
                f"""
                create or replace temp view landing_file as
                select
                    {sql_literal(source_file)} as source_file,
                    date '{file_date.isoformat()}' as file_date,
                    line_number,
                    raw_line
                from landing_lines
                """
            )
            # The model's SELECT gives the table its columns.
            con.execute(f"create table if not exists {model.relation} as\n{sql}\nlimit 0")
            # The ids of the file's earlier content too: versions it superseded may be latest again.
            con.execute(
                f"create or replace temp table file_txn_ids as "
                f"select txn_id from {model.relation} where source_file = ?",
                [source_file],
            )
            con.execute(f"delete from {model.relation} where source_file = ?", [source_file])
            con.execute(f"insert into {model.relation} by name\n{sql}")
            _supersede(con, model, source_file, supersede)
            crash_point("mid_model")
            con.execute(
                "insert or replace into staging.typed_files values (?, ?, ?, ?)",
                [source_file, model.per_file_kind, digest, version],
            )
            con.execute("drop view landing_file")
            con.execute("drop table landing_lines")
            con.execute("drop table file_txn_ids")
        log.info("Typed %s into %s", source_file, model.relation)
    rows = con.execute(
        f"select count(*) from {model.relation} where file_date <= getvariable('as_of_date')"
    ).fetchone()[0]
    log.info(
        "Built %s: %d rows in %.2f s (%d file(s) typed in this run)",
        model.relation, rows, time.perf_counter() - started, len(pending),
    )
    return rows


def _supersede(
    con: duckdb.DuckDBPyConnection, model: Model, source_file: str, supersede: str
) -> None:
    """Date the versions of the txn_ids the file just typed shares with other files.

    Only ids held by another file can have more than one version, so the first extract (and
    any extract of new transactions only) costs a scan of the ids and no update.
    """
    con.execute(
        f"""
        create or replace temp table touched_txn_ids as
        with file_ids as (
            select txn_id from file_txn_ids
            union all
            select txn_id from {model.relation} where source_file = $file
        )
        select distinct txn_id from {model.relation}
        where source_file <> $file and txn_id in (select file_ids.txn_id from file_ids)
        """,
        {"file": source_file},
    )
    if con.execute("select count(*) from touched_txn_ids").fetchone()[0]:
        con.execute(supersede)
    con.execute("drop table touched_txn_ids")


def _table_exists(con: duckdb.DuckDBPyConnection, model: Model) -> bool:
    return bool(
        con.execute(
            "select count(*) from duckdb_tables() where schema_name = ? and table_name = ?",
            [model.layer, model.name],
        ).fetchone()[0]
    )


def _is_current(con: duckdb.DuckDBPyConnection, model: Model, version: str) -> bool:
    """The kept table exists and every file in it was typed by this version of the model."""
    stale = con.execute(
        "select count(*) from staging.typed_files where file_kind = ? and model_version <> ?",
        [model.per_file_kind, version],
    ).fetchone()[0]
    return _table_exists(con, model) and not stale
