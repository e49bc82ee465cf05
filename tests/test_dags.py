"""The DAGs: they load, follow the house rules, and run end to end with ``dag.test()``.

Over 300 lines: the house rules and the end-to-end runs share the DAG bag and its fixtures.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pendulum
import pytest

from auto_refunds.demo import sample_data
from auto_refunds.models import DAILY_MODELS, RECONCILIATION_MODELS

REPO = Path(__file__).resolve().parents[1]
START = dt.date(2026, 3, 2)


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


def test_dags_load_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == {"auto_refunds", "refund_reconciliation"}


TAGS = ["auto-refunds", "imaginepay", "imagineone"]
HOUSE_RULES = {
    "auto_refunds": {"tags": set(TAGS)},
    "refund_reconciliation": {"tags": {*TAGS, "reconciliation"}},
}


@pytest.mark.parametrize("dag_id", sorted(HOUSE_RULES))
def test_every_dag_follows_the_house_rules(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert dag.doc_md and dag.doc_md.strip().startswith(f"# {dag.dag_id}")
    assert dag.tags == HOUSE_RULES[dag_id]["tags"]
    assert dag.owner == dag.default_args["owner"] == "auto-refunds"
    assert {task.owner for task in dag.tasks} == {"auto-refunds"}
    assert "retries" in dag.default_args
    assert dag.catchup is False
    assert dag.start_date == pendulum.datetime(2026, 1, 1, tz="UTC")
    assert dag.start_date.utcoffset() == dt.timedelta(0)
    # One writer at a time on the DuckDB warehouse.
    assert dag.max_active_runs == 1
    assert dag.max_active_tasks == 1


def test_auto_refunds_runs_daily_at_three_utc_for_the_day_before(dagbag):
    from airflow.timetables.interval import CronDataIntervalTimetable

    timetable = dagbag.dags["auto_refunds"].timetable
    assert type(timetable) is CronDataIntervalTimetable
    assert timetable.serialize() == {"expression": "0 3 * * *", "timezone": "UTC"}


def test_refund_reconciliation_is_scheduled_on_the_refund_file_alone(dagbag):
    from airflow.sdk.definitions.timetables.assets import AssetTriggeredTimetable

    from auto_refunds.assets import REFUND_FILE

    timetable = dagbag.dags["refund_reconciliation"].timetable
    assert type(timetable) is AssetTriggeredTimetable
    assert list(timetable.asset_condition.objects) == [REFUND_FILE]


@pytest.mark.parametrize("dag_id", sorted(HOUSE_RULES))
def test_every_task_retries_twice_with_a_bounded_exponential_backoff(dagbag, dag_id):
    policies = {
        task.task_id: (
            task.retries,
            task.retry_exponential_backoff,
            task.retry_delay,
            task.max_retry_delay,
        )
        for task in dagbag.dags[dag_id].tasks
    }
    # The backoff is a multiplier in Airflow 3.3: 30 s, then 60 s, never above 10 minutes.
    expected = (2, 2.0, dt.timedelta(seconds=30), dt.timedelta(minutes=10))
    assert policies == dict.fromkeys(policies, expected)


def test_auto_refunds_runs_one_task_per_model_in_order(dagbag):
    dag = dagbag.dags["auto_refunds"]
    order = ["extract", *(model.name for model in DAILY_MODELS), "audit", "publish"]
    order += ["deliver_refund_file", "refresh_worklist"]
    assert sorted(dag.task_ids) == sorted(order)
    for upstream, downstream in zip(order, order[1:], strict=False):
        assert dag.get_task(downstream).upstream_task_ids == {upstream}
    assert [outlet.name for outlet in dag.get_task("publish").outlets] == [
        "auto_refunds.imaginepay_refund_file"
    ]


def test_every_sql_model_file_is_built_by_the_dag(dagbag):
    # A model file is include/sql/<layer>/<name>.sql in a model layer; <name>.supersede.sql and
    # <name>.repeated_keys.sql are parts of one, publish/ and warehouse/ hold no models.
    from auto_refunds.models import LAYERS

    on_disk = {
        path.name.removesuffix(".sql")
        for layer in LAYERS
        for path in (REPO / "include" / "sql" / layer).glob("*.sql")
        if "." not in path.name.removesuffix(".sql")
    }
    built = {task_id for dag in dagbag.dags.values() for task_id in dag.task_ids}
    assert on_disk, "no model file found"
    assert sorted(on_disk - built) == []
    # And the other way: every model the daily DAG builds has its file.
    assert {model.name for model in DAILY_MODELS} <= on_disk


# Run in a fresh interpreter: which modules a DAG file loads, beyond what Airflow's SDK loads.
_IMPORT_PROBE = """
import importlib.util, json, sys
import airflow.sdk
heavy = ("duckdb", "great_expectations", "pandas")
before = [name for name in heavy if name in sys.modules]
spec = importlib.util.spec_from_file_location("dag_file", sys.argv[1])
spec.loader.exec_module(importlib.util.module_from_spec(spec))
print(json.dumps({"before": before, "after": [name for name in heavy if name in sys.modules]}))
"""


def _heavy_modules_loaded_by(dag_file: Path) -> dict[str, list[str]]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "plugins")}
    probe = subprocess.run(
        [sys.executable, "-c", _IMPORT_PROBE, str(dag_file)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr
    return json.loads(probe.stdout.splitlines()[-1])


@pytest.mark.parametrize("dag_file", ["auto_refunds.py", "refund_reconciliation.py"])
def test_dag_files_import_nothing_heavy(dag_file):
    loaded = _heavy_modules_loaded_by(REPO / "dags" / dag_file)
    # Airflow's SDK loads none of them itself, so the DAG file is held to none at all.
    assert loaded == {"before": [], "after": []}


def test_the_import_probe_sees_a_heavy_import(tmp_path):
    dag_file = tmp_path / "heavy.py"
    dag_file.write_text("import duckdb\n")
    assert _heavy_modules_loaded_by(dag_file)["after"] == ["duckdb"]


def _imported_modules(path: Path) -> set[str]:
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported |= {f"{node.module}.{alias.name}" for alias in node.names}
    return imported


def test_nothing_the_dags_run_imports_the_demo():
    package = REPO / "plugins" / "auto_refunds"
    run = [*(REPO / "dags").glob("*.py"), *package.glob("*.py")]
    demo_users = [
        (path.name, name)
        for path in run
        for name in sorted(_imported_modules(path))
        if name == "auto_refunds.demo" or name.startswith("auto_refunds.demo.")
    ]
    assert demo_users == []
    assert (package / "demo" / "__main__.py").exists()


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


def _refund_file_events() -> list[dict]:
    """The extras of the refund-file Asset's events, oldest first."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return list(
            session.scalars(
                select(AssetEvent.extra)
                .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
                .where(AssetModel.name == "auto_refunds.imaginepay_refund_file")
                .order_by(AssetEvent.id)
            )
        )


def test_auto_refunds_end_to_end_with_a_rerun_and_a_backfill(airflow_db, dagbag, settings):
    from auto_refunds.worklist import snapshot

    sample_data.generate(settings.data_dir, sample_data.Spec(START, 3, 900, 3600, seed=3))
    dag = dagbag.dags["auto_refunds"]
    days = [START + dt.timedelta(days=d) for d in range(3)]
    events_before = len(_refund_file_events())
    for day in days[1:]:
        assert _run(dag, day).state == "success"
    published = {p.name: p.read_bytes() for p in settings.layout.refunds_outbox.iterdir()}

    # A rerun of a day already published, then a backfill of the first day after the others.
    assert _run(dag, days[2]).state == "success"
    assert _run(dag, days[0]).state == "success"
    after = {p.name: p.read_bytes() for p in settings.layout.refunds_outbox.iterdir()}
    assert {name: after[name] for name in published} == published
    assert len(after) == 6
    # Each publish's event names its date (what starts the reconciliation of that date), and
    # each run's refresh_worklist wrote the snapshot of its date.
    events = _refund_file_events()[events_before:]
    assert [event["as_of_date"] for event in events] == [
        day.isoformat() for day in (days[1], days[2], days[2], days[0])
    ]
    assert {"path", "record_count", "total_amount", "sha256"} <= set(events[0])
    assert [snapshot.current(settings.data_dir, day) is not None for day in days] == [True] * 3

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


def test_refund_reconciliation_is_started_by_the_refund_file(dagbag):
    dag = dagbag.dags["refund_reconciliation"]
    assert [asset.name for asset in dag.timetable.asset_condition.objects] == [
        "auto_refunds.imaginepay_refund_file"
    ]
    sensor = dag.get_task("wait_for_payment_file")
    assert sensor.mode == "reschedule"
    assert sensor.timeout == 24 * 3600
    order = ["wait_for_payment_file", "reconcile_earlier_dates", "load"]
    order += [*(m.name for m in RECONCILIATION_MODELS), "audit", "publish", "deliver_postings"]
    order += ["refresh_worklist"]
    assert sorted(dag.task_ids) == sorted([*order, "reconcile_later_dates"])
    for upstream, downstream in zip(order, order[1:], strict=False):
        assert dag.get_task(downstream).upstream_task_ids == {upstream}
    # Beside the worklist's snapshot of D, which neither waits for nor holds back.
    assert dag.get_task("reconcile_later_dates").upstream_task_ids == {"publish"}
    assert dag.get_task("reconcile_later_dates").downstream_task_ids == set()


def test_run_all_runs_the_tasks_of_the_dags_in_their_order(dagbag):
    """``daily.run_all`` and ``reconciliation.run_all`` (tests, benchmark, CLI, demo) run the
    steps the DAGs make their tasks of: the same functions, in the same order."""
    from auto_refunds import pipeline

    def chain(dag, first: str) -> list[str]:
        order = [first]
        while following := dag.get_task(order[-1]).downstream_task_ids - {"reconcile_later_dates"}:
            (task_id,) = following
            order.append(task_id)
        return order

    daily, recon = dagbag.dags["auto_refunds"], dagbag.dags["refund_reconciliation"]
    for dag, first, steps in (
        (daily, "extract", pipeline.DAILY_STEPS),
        (recon, "load", pipeline.RECONCILIATION_STEPS),
    ):
        assert chain(dag, first) == [step.task_id for step in steps]
        for step in steps:
            assert dag.get_task(step.task_id).op_args == (step.function, *step.args)
            assert callable(pipeline.resolve(step.function))
    for step in (pipeline.RECONCILE_EARLIER_DATES, pipeline.RECONCILE_LATER_DATES):
        assert recon.get_task(step.task_id).op_args == (step.function, *step.args)


def _parse_errors_with(monkeypatch, **env: str) -> dict:
    from airflow.dag_processing.dagbag import DagBag

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return DagBag(dag_folder=str(REPO / "dags")).import_errors


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("AUTO_REFUNDS_PAYMENT_FILE_POKE_SECONDS", "often"),
        ("AUTO_REFUNDS_PAYMENT_FILE_POKE_SECONDS", "0"),
        ("AUTO_REFUNDS_PAYMENT_FILE_TIMEOUT_HOURS", "-1"),
    ],
)
def test_a_bad_sensor_setting_fails_the_parse_naming_the_variable(monkeypatch, variable, value):
    errors = _parse_errors_with(monkeypatch, **{variable: value})
    assert [Path(path).name for path in errors] == ["refund_reconciliation.py"]
    assert f"{variable}={value!r}" in next(iter(errors.values()))


def test_the_sensor_settings_are_read_without_touching_the_data_folder(monkeypatch, tmp_path):
    from airflow.dag_processing.dagbag import DagBag

    data_dir = tmp_path / "not_there"
    monkeypatch.setenv("AUTO_REFUNDS_DATA_DIR", str(data_dir))
    monkeypatch.setenv("AUTO_REFUNDS_PAYMENT_FILE_POKE_SECONDS", "45")
    monkeypatch.setenv("AUTO_REFUNDS_PAYMENT_FILE_TIMEOUT_HOURS", "2")
    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    sensor = bag.dags["refund_reconciliation"].get_task("wait_for_payment_file")
    assert (sensor.poke_interval, sensor.timeout) == (45, 2 * 3600)
    assert not data_dir.exists()


def test_the_money_loop_end_to_end_over_several_days(airflow_db, dagbag, settings):
    from auto_refunds.demo import imaginepay_simulator
    from auto_refunds.demo.run import drop_posted_credits
    from auto_refunds.warehouse import connect
    from auto_refunds.worklist import snapshot

    days = [START + dt.timedelta(days=d) for d in range(4)]
    sample_data.generate(settings.data_dir, sample_data.Spec(START, 4, 400, 1600, seed=5))
    daily, recon = dagbag.dags["auto_refunds"], dagbag.dags["refund_reconciliation"]
    for day in days:
        drop_posted_credits(settings, day)
        assert _run(daily, day).state == "success"
        published = snapshot.current(settings.data_dir, day)
        imaginepay_simulator.answer(settings.layout, day)
        assert _run(recon, day).state == "success"
        # Each DAG's refresh_worklist wrote D's snapshot after its publish.
        assert published is not None
        assert snapshot.current(settings.data_dir, day).name > published.name
    # Rerunning a reconciliation changes nothing.
    postings = settings.layout.postings(days[1]).read_bytes()
    assert _run(recon, days[1]).state == "success"
    assert settings.layout.postings(days[1]).read_bytes() == postings

    with connect(settings) as con:
        reasons = {
            row[0]
            for row in con.execute(
                "select distinct reason_code from tickler_refund_exceptions"
            ).fetchall()
        }
        assert {"REFUND_DECLINED", "NO_PROCESSOR_RESPONSE", "PREVIOUSLY_DECLINED"} <= reasons
        # Every refund posted once, for minus what we sent.
        assert con.execute(
            """
            select count(*) from payment_postings
            inner join refund_ledger using (refund_id)
            where payment_amount <> -refund_amount or status <> 'REFUNDED'
            """
        ).fetchone() == (0,)
        assert (
            con.execute(
                "select refund_id from payment_postings where refund_id is not null "
                "group by 1 having count(*) > 1"
            ).fetchall()
            == []
        )
