"""Runs of two dates side by side (CONTRACT 7): whatever the interleaving of their tasks, each
refund file holds exactly the decisions of its date made knowing what the other published, and
the end state is the one an undisturbed sequence gives.

Each step here is the function the DAG's task of that name calls, in the order the interleaving
gives; each opens the warehouse and lets it go, as the task does.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from test_kill import fresh_copy, state_of

from auto_refunds import daily, models, reconciliation
from auto_refunds.demo import imaginepay_simulator, sample_data
from auto_refunds.outbox import PublishedFileConflict
from auto_refunds.settings import Settings

D1 = dt.date(2026, 3, 2)
D2 = dt.date(2026, 3, 3)
SPEC = sample_data.Spec(D1, days=2, credits=400, transactions=1600, seed=21)
RECONCILED_TABLES = ("payment_postings", "unmatched_returns", "postings_files", "payment_answers")


def in_folder(folder: Path, monkeypatch) -> Settings:
    monkeypatch.setenv("AUTO_REFUNDS_DATA_DIR", str(folder))
    return Settings.from_env()


def daily_models(day: dt.date, settings: Settings) -> None:
    daily.extract(day, settings)
    for model in models.DAILY_MODELS:
        daily.build_model(day, model.name, settings)


def reconciliation_models(day: dt.date, settings: Settings) -> None:
    reconciliation.load(day, settings)
    for model in models.RECONCILIATION_MODELS:
        reconciliation.build_model(day, model.name, settings)


def everything(folder: Path) -> dict:
    state = state_of(folder, extra_tables=RECONCILED_TABLES)
    # Each refund file holds refunds of credits no other file holds live.
    refunds = [
        line.split(",")[3]
        for name, content in state["files"].items()
        if name.startswith("refunds_") and name.endswith(".csv")
        for line in content.decode().splitlines()[1:]
    ]
    assert len(refunds) == len(set(refunds)), "a credit refunded in two files"
    payments = [
        line.split(",")[0]
        for name, content in state["files"].items()
        if name.startswith("payment_postings_")
        for line in content.decode().splitlines()[1:]
    ]
    assert len(payments) == len(set(payments)), "a payment posted in two files"
    return state


def rerun_changes_nothing(run_all: Callable, folder: Path, expected: dict) -> None:
    """Plain reruns of either date leave everything as it is. A rerun of D1 may refuse, since
    what D2 published since would change D1's published file; it then changes nothing."""
    settings = Settings.from_env()
    run_all(D2, settings)
    assert everything(folder) == expected
    with contextlib.suppress(PublishedFileConflict):
        run_all(D1, settings)
    assert everything(folder) == expected


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("inputs")
    sample_data.generate(folder, SPEC)
    return folder


def undisturbed(folder: Path, run_all: Callable) -> dict:
    """What D1 then D2, each run whole, leave in ``folder``."""
    with pytest.MonkeyPatch.context() as patch:
        settings = in_folder(folder, patch)
        run_all(D1, settings)
        run_all(D2, settings)
    return everything(folder)


@pytest.fixture(scope="module")
def undisturbed_daily(inputs, tmp_path_factory) -> dict:
    return undisturbed(fresh_copy(inputs, tmp_path_factory.mktemp("daily")), daily.run_all)


def interleaving_a(settings: Settings) -> None:
    """Both dates build up to their audit, then D1 publishes, then D2."""
    daily_models(D1, settings)
    daily_models(D2, settings)
    daily.audit(D1, settings)
    daily.audit(D2, settings)
    daily.publish(D1, settings)
    daily.publish(D2, settings)


def interleaving_a_without_audits(settings: Settings) -> None:
    """As an operator with ``airflow tasks test``: both build, D1 publishes, then D2."""
    daily_models(D1, settings)
    daily_models(D2, settings)
    daily.publish(D1, settings)
    daily.publish(D2, settings)


def interleaving_b(settings: Settings) -> None:
    """D2 builds its models, D1 runs whole, then D2 audits and publishes."""
    daily_models(D2, settings)
    daily.run_all(D1, settings)
    daily.audit(D2, settings)
    daily.publish(D2, settings)


def interleaving_model_by_model(settings: Settings) -> None:
    """The two runs alternate task by task, as a backfill beside the scheduled run may."""
    daily.extract(D1, settings)
    daily.extract(D2, settings)
    for model in models.DAILY_MODELS:
        daily.build_model(D1, model.name, settings)
        daily.build_model(D2, model.name, settings)
    daily.audit(D1, settings)
    daily.audit(D2, settings)
    daily.publish(D1, settings)
    daily.publish(D2, settings)


@pytest.mark.parametrize(
    "interleave",
    [interleaving_a, interleaving_a_without_audits, interleaving_b, interleaving_model_by_model],
    ids=lambda step: step.__name__,
)
def test_daily_runs_side_by_side_end_as_an_undisturbed_sequence(
    inputs, undisturbed_daily, tmp_path, monkeypatch, interleave: Callable[[Settings], None]
):
    folder = fresh_copy(inputs, tmp_path)
    interleave(in_folder(folder, monkeypatch))
    assert everything(folder) == undisturbed_daily
    rerun_changes_nothing(daily.run_all, folder, undisturbed_daily)


@pytest.fixture(scope="module")
def answered(inputs, tmp_path_factory) -> Path:
    """Both refund files published and answered by ImaginePay; nothing reconciled yet."""
    folder = tmp_path_factory.mktemp("answered")
    shutil.copytree(inputs / "landing", folder / "landing")
    with pytest.MonkeyPatch.context() as patch:
        settings = in_folder(folder, patch)
        for day in (D1, D2):
            daily.run_all(day, settings)
            imaginepay_simulator.answer(settings.layout, day)
    return folder


@pytest.fixture(scope="module")
def undisturbed_reconciliation(answered, tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("undisturbed_reconciliation") / "data"
    shutil.copytree(answered, folder)
    return undisturbed(folder, reconciliation.run_all)


def reconciliation_a(settings: Settings) -> None:
    reconciliation_models(D1, settings)
    reconciliation_models(D2, settings)
    reconciliation.audit(D1, settings)
    reconciliation.publish(D1, settings)
    reconciliation.audit(D2, settings)
    reconciliation.publish(D2, settings)


def reconciliation_b(settings: Settings) -> None:
    reconciliation_models(D2, settings)
    reconciliation.run_all(D1, settings)
    reconciliation.audit(D2, settings)
    reconciliation.publish(D2, settings)


@pytest.mark.parametrize("interleave", [reconciliation_a, reconciliation_b], ids=["A", "B"])
def test_reconciliations_side_by_side_end_as_an_undisturbed_sequence(
    answered, undisturbed_reconciliation, tmp_path, monkeypatch, interleave
):
    folder = tmp_path / "data"
    shutil.copytree(answered, folder)
    interleave(in_folder(folder, monkeypatch))
    assert everything(folder) == undisturbed_reconciliation
    rerun_changes_nothing(reconciliation.run_all, folder, undisturbed_reconciliation)


def test_a_stale_publish_says_why_it_decides_again(inputs, tmp_path, monkeypatch, caplog):
    settings = in_folder(fresh_copy(inputs, tmp_path), monkeypatch)
    daily_models(D1, settings)
    daily.audit(D1, settings)
    daily.run_all(D2, settings)
    daily.publish(D1, settings)
    assert (
        "Deciding 2026-03-02 again before publishing it: the working tables hold the run of "
        "2026-03-03" in caplog.text
    )
