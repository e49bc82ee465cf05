"""The DAGs: they load, follow the house rules, and run end to end with ``dag.test()``."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pendulum
import pytest

from auto_refunds import sample_data
from auto_refunds.models import DAILY_MODELS

REPO = Path(__file__).resolve().parents[1]
START = dt.date(2026, 3, 2)


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


def test_dags_load_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert {"auto_refunds"} <= set(dagbag.dag_ids)


def test_every_dag_follows_the_house_rules(dagbag):
    for dag in dagbag.dags.values():
        assert dag.doc_md and dag.doc_md.strip().startswith(f"# {dag.dag_id}")
        assert dag.tags
        assert dag.catchup is False
        assert dag.default_args["owner"] == "auto-refunds"
        assert "retries" in dag.default_args
        assert dag.start_date.tzinfo is not None
        # One writer at a time on the DuckDB warehouse.
        assert dag.max_active_runs == 1
        assert dag.max_active_tasks == 1


def test_auto_refunds_runs_one_task_per_model_in_order(dagbag):
    dag = dagbag.dags["auto_refunds"]
    order = ["extract", *(model.name for model in DAILY_MODELS), "audit", "publish"]
    assert sorted(dag.task_ids) == sorted(order)
    for upstream, downstream in zip(order, order[1:], strict=False):
        assert dag.get_task(downstream).upstream_task_ids == {upstream}
    assert [outlet.name for outlet in dag.get_task("publish").outlets] == [
        "auto_refunds.imaginepay_refund_file"
    ]


def test_every_sql_model_file_is_built_by_the_dag():
    on_disk = {path.stem for path in (REPO / "include" / "sql").glob("*/*.sql")}
    on_disk -= {"tables", "macros"}
    assert {model.name for model in DAILY_MODELS} <= on_disk


def test_dag_files_import_nothing_expensive():
    source = (REPO / "dags" / "auto_refunds.py").read_text()
    for heavy in ("import duckdb", "great_expectations", "pandas"):
        assert heavy not in source


def _run(dag, day: dt.date):
    return dag.test(logical_date=pendulum.datetime(day.year, day.month, day.day, tz="UTC"))


def _outcomes(settings, day):
    from auto_refunds.warehouse import connect

    with connect(settings) as con:
        return con.execute(
            "select coalesce(reason_code, outcome), count(*) from credit_outcomes "
            "where as_of_date = ? group by 1 order by 1",
            [day],
        ).fetchall()


def test_auto_refunds_end_to_end_with_a_rerun_and_a_backfill(airflow_db, dagbag, settings):
    sample_data.generate(settings.data_dir, sample_data.Spec(START, 3, 900, 3600, seed=3))
    dag = dagbag.dags["auto_refunds"]
    days = [START + dt.timedelta(days=d) for d in range(3)]
    for day in days[1:]:
        assert _run(dag, day).state == "success"
    published = {p.name: p.read_bytes() for p in settings.layout.refunds_outbox.iterdir()}

    # A rerun of a day already published, then a backfill of the first day after the others.
    assert _run(dag, days[2]).state == "success"
    assert _run(dag, days[0]).state == "success"
    after = {p.name: p.read_bytes() for p in settings.layout.refunds_outbox.iterdir()}
    assert {name: after[name] for name in published} == published
    assert len(after) == 6

    from auto_refunds.warehouse import connect

    with connect(settings) as con:
        # No credit ever holds two refunds; every file total matches its tickler.
        assert (
            con.execute(
                "select credit_id from refund_ledger group by 1 having count(*) > 1"
            ).fetchall()
            == []
        )
        for day in days:
            manifest = json.loads(settings.layout.refunds_manifest(day).read_text())
            total, count = con.execute(
                "select coalesce(sum(refund_amount), 0)::varchar, count(*) "
                "from tickler_true_refunds_due where as_of_date = ?",
                [day],
            ).fetchone()
            assert (manifest["total_amount"], manifest["record_count"]) == (total, count)
    reasons = {label for day in days for label, _ in _outcomes(settings, day)}
    assert reasons >= {
        "DUE",
        "NOT_ENROLLED",
        "ALREADY_REQUESTED",
        "MISSING_REQUIREMENTS",
        "BELOW_MIN_THRESHOLD",
        "NO_MATCHING_TRANSACTION",
        "CREDIT_EXCEEDS_TRANSACTION",
        "DEBIT_PIN_TRANSACTION",
        "CARD_EXPIRED",
        "REFUND_WINDOW_EXPIRED",
    }


def test_a_run_with_a_missing_file_fails(airflow_db, dagbag, settings):
    sample_data.generate(settings.data_dir, sample_data.Spec(START, 1, 50, 200, seed=3))
    settings.layout.credits(START).unlink()
    run = _run(dagbag.dags["auto_refunds"], START)
    assert run.state == "failed"
    assert not settings.layout.refunds_outbox.exists()
