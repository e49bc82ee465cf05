"""What to reconcile is decided from the published files, not from the Asset events alone
(CONTRACT 7): Airflow may batch several refund-file events into one run, or attach one to no
run; every published refund file is reconciled once its payment file is there, oldest first."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pendulum
import pytest

from auto_refunds import daily, runtime
from auto_refunds.demo import imaginepay_simulator, sample_data
from auto_refunds.warehouse import connect

REPO = Path(__file__).resolve().parents[1]
DAYS = [dt.date(2026, 3, 2) + dt.timedelta(days=n) for n in range(3)]


class Event:
    def __init__(self, day: dt.date):
        self.extra = {"as_of_date": day.isoformat()}


def test_events_batched_into_one_run_name_the_latest_date():
    context = {"triggering_asset_events": {"refund_file": [Event(DAYS[0]), Event(DAYS[2])]}}
    assert runtime.run_date(context) == DAYS[2]


def test_one_run_reconciles_every_answered_date_oldest_first(airflow_db, settings):
    """Three refund files published; the scheduler started one reconciliation run, for the
    middle date: the first date's event was batched away, the last one's started no run."""
    from airflow.dag_processing.dagbag import DagBag

    sample_data.generate(settings.data_dir, sample_data.Spec(DAYS[0], 3, 300, 1200, seed=4))
    for day in DAYS:
        daily.run_all(day, settings)
        imaginepay_simulator.answer(settings.layout, day)
    dag = DagBag(dag_folder=str(REPO / "dags")).dags["refund_reconciliation"]
    middle = DAYS[1]
    run = dag.test(logical_date=pendulum.datetime(middle.year, middle.month, middle.day, tz="UTC"))
    assert run.state == "success"
    with connect(settings) as con:
        reconciled = con.execute(
            "select as_of_date from publications where run_kind = 'reconciliation' order by 1"
        ).fetchall()
        assert [row[0] for row in reconciled] == DAYS
        assert con.execute(
            "select as_of_date, delivered from postings_files order by 1"
        ).fetchall() == [(day, True) for day in DAYS]
    for day in DAYS:
        assert settings.layout.postings(day).is_file()


@pytest.mark.parametrize("missing", [0, 2])
def test_a_date_without_its_payment_file_waits_and_the_others_go_on(airflow_db, settings, missing):
    from auto_refunds import reconciliation

    sample_data.generate(settings.data_dir, sample_data.Spec(DAYS[0], 3, 200, 800, seed=6))
    for day in DAYS:
        daily.run_all(day, settings)
        imaginepay_simulator.answer(settings.layout, day)
    settings.layout.payments(DAYS[missing]).unlink()
    assert reconciliation.pending_dates(settings) == [
        day for n, day in enumerate(DAYS) if n != missing
    ]
