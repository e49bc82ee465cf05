"""The model runner checks itself: the hand-written build order against the relations each SQL
file reads, every SQL file against the DAGs' model lists, and each reason code against the one
model that decides it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from auto_refunds import models

SQL_DIR = Path(__file__).resolve().parents[1] / "include" / "sql"
MODEL_LISTS = {"daily": models.DAILY_MODELS, "reconciliation": models.RECONCILIATION_MODELS}

# Each reason code of CONTRACT 3 and 5 and where it is decided (docs/formats-and-rules.md,
# "Where each rule lives"). NOT_ENROLLED and ALREADY_REQUESTED are outcomes, not reason codes.
DECIDED_IN = {
    **dict.fromkeys(
        ("PREVIOUSLY_DECLINED", "MISSING_REQUIREMENTS", "BELOW_MIN_THRESHOLD"),
        {"intermediate/int_credits_screened.sql"},
    ),
    **dict.fromkeys(
        (
            "NO_MATCHING_TRANSACTION",
            "DEBIT_PIN_TRANSACTION",
            "CARD_EXPIRED",
            "REFUND_WINDOW_EXPIRED",
        ),
        {"intermediate/int_credits_matched_to_sales.sql"},
    ),
    # Rule 7, and the sharing of a sale after rule 11.
    "CREDIT_EXCEEDS_TRANSACTION": {
        "intermediate/int_credits_matched_to_sales.sql",
        "intermediate/int_credits_allocated_to_sales.sql",
    },
    **dict.fromkeys(
        (
            "REFUND_DECLINED",
            "RETURN_AMOUNT_MISMATCH",
            "NO_PROCESSOR_RESPONSE",
            "APPROVED_AFTER_DECLINE",
        ),
        {"marts/tickler_reconciliation_exceptions.sql"},
    ),
}


def model_files() -> set[str]:
    """Every SQL model on disk, as layer.name: warehouse setup, the publish statements and
    helper statements left out."""
    return {
        f"{path.parent.name}.{path.stem}"
        for path in SQL_DIR.glob("*/*.sql")
        if path.parent.name not in ("warehouse", "publish")
        # A model's helper statements are named <model>.<step>.sql.
        and "." not in path.stem
    }


@pytest.mark.parametrize("dag", MODEL_LISTS)
def test_each_model_reads_only_models_built_before_it_in_its_dag(dag):
    built: set[str] = set()
    for model in MODEL_LISTS[dag]:
        unbuilt = models.depends_on(model, SQL_DIR) - built
        assert not unbuilt, f"{model.relation} reads {sorted(unbuilt)}, not built before it"
        built.add(model.relation)


def test_the_dependencies_are_read_from_from_and_join_clauses():
    model = models.find("int_credit_candidates")
    assert models.depends_on(model, SQL_DIR) == {
        "intermediate.int_credits_screened",
        "intermediate.int_sales_remaining",
    }
    # main.* and landing.* are sources; comments are not read.
    assert models.depends_on(models.find("int_sales_remaining"), SQL_DIR) == {
        "intermediate.int_imaginepay__transactions_known_at_date",
    }


@pytest.mark.parametrize("dag", MODEL_LISTS)
def test_a_view_is_read_by_one_model_at_most(dag):
    # A view is computed by each model that reads it: a second reader would compute it twice,
    # which costs more than the table it replaced (docs/design.md, "Views computed where they
    # are read").
    for view in (model for model in MODEL_LISTS[dag] if model.materialized == "view"):
        readers = [
            model.relation
            for model in MODEL_LISTS[dag]
            if view.relation in models.depends_on(model, SQL_DIR)
        ]
        assert len(readers) <= 1, f"{view.relation} is a view read by {readers}"


def test_every_model_file_is_built_by_exactly_one_dag_and_every_model_has_a_file():
    listed = [model.relation for dag in MODEL_LISTS.values() for model in dag]
    assert len(listed) == len(set(listed)), "a model is listed twice"
    assert set(listed) == model_files()
    for dag in MODEL_LISTS.values():
        for model in dag:
            assert model.layer in {"staging", "intermediate", "marts"}
            assert model.path(SQL_DIR).is_file()


@pytest.mark.parametrize("code", sorted(DECIDED_IN))
def test_each_reason_code_is_decided_in_one_model(code):
    # What `grep -rl "'CODE'" include/sql --include=*.sql` finds.
    found = {
        str(path.relative_to(SQL_DIR))
        for path in SQL_DIR.rglob("*.sql")
        if re.search(f"'{code}'", path.read_text())
    }
    assert found == DECIDED_IN[code]
    assert len(found) <= (2 if code == "CREDIT_EXCEEDS_TRANSACTION" else 1)
