"""Unit tests of one SQL model, like dbt's: given rows for the relations it reads, the exact rows
it builds, built by the code the DAG runs (``models.build_on``).

Each input model is created as a table with the columns and types its own model builds (taken
once from a warehouse where every model was built on empty inputs); columns a case leaves out are
null. ``main.*`` and ``landing.*`` rows go into the warehouse's own tables.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from pathlib import Path

from auto_refunds import models
from auto_refunds.layout import CLIENT_RULES_HEADER, CREDITS_HEADER, TRANSACTIONS_HEADER
from auto_refunds.settings import Settings
from auto_refunds.warehouse import connect

D = dt.date(2026, 1, 5)
SQL_DIR = Path(__file__).resolve().parents[1] / "include" / "sql"

Rows = list[dict]


def model_columns(root: Path) -> dict[str, list[tuple[str, str]]]:
    """{relation: [(column, type)]} of every model, built on empty inputs in ``root``."""
    from auto_refunds import daily

    settings = dataclasses.replace(Settings.from_env(), data_dir=root)
    layout = settings.layout
    for path, header in (
        (layout.credits(D), CREDITS_HEADER),
        (layout.client_rules, CLIENT_RULES_HEADER),
        (layout.transactions(D), TRANSACTIONS_HEADER),
    ):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(",".join(header) + "\n")
    daily.extract(D, settings)
    with connect(settings, D) as con:
        columns = {}
        for model in (*models.DAILY_MODELS, *models.RECONCILIATION_MODELS):
            models.build_on(con, model, settings)
            described = con.execute(f"describe {model.relation}").fetchall()
            columns[model.relation] = [(row[0], row[1]) for row in described]
    return columns


@dataclasses.dataclass
class ModelUnit:
    """A fresh warehouse (the ``settings`` fixture's) in which one model is built."""

    settings: Settings
    columns: dict[str, list[tuple[str, str]]]

    def build(self, model_name: str, given: dict[str, Rows], as_of: dt.date = D) -> Rows:
        """Create the model's inputs with the ``given`` rows (an input not given is empty),
        build the model and return its rows, sorted, as dicts."""
        model = models.find(model_name)
        reads = models.depends_on(model, SQL_DIR)
        unknown = {name for name in given if name.split(".")[0] in models.LAYERS} - reads
        assert not unknown, f"{model.relation} does not read {sorted(unknown)}"
        with connect(self.settings, as_of) as con:
            for relation in sorted(reads):
                typed = ", ".join(f"{name} {type_}" for name, type_ in self.columns[relation])
                con.execute(f"create or replace table {relation} ({typed})")
            for relation, rows in given.items():
                for row in rows:
                    con.execute(
                        f"insert into {relation} ({', '.join(row)}) "
                        f"values ({', '.join('?' * len(row))})",
                        list(row.values()),
                    )
            models.build_on(con, model, self.settings)
            result = con.execute(f"select * from {model.relation} order by all")
            names = [column[0] for column in result.description]
            return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def only(rows: Rows, *columns: str) -> list[tuple]:
    """The rows reduced to ``columns``, sorted: what a case is about."""
    return sorted(tuple(row[column] for column in columns) for row in rows)


def money(text: str) -> Decimal:
    return Decimal(text)


def ledger_row(refund_id: str, **values) -> dict:
    """A main.refund_ledger row: a refund of 50.00 sent on D - 1 unless told otherwise."""
    return {
        "refund_id": refund_id,
        "credit_id": f"C_{refund_id}",
        "client_id": "CL1",
        "account_id": "A1",
        "original_txn_id": "T1",
        "card_token": "tok_T1",
        "refund_amount": money("50.00"),
        "requested_date": D - dt.timedelta(days=1),
        "refund_file": "refunds_20260104.csv",
        "status": "SENT",
        "status_date": D - dt.timedelta(days=1),
        **values,
    }
