"""A kill -9 at any moment of a real run, then a rerun, ends exactly as an uninterrupted run:
no partial file, no lost or doubled ledger entry.

Each run here is a separate process (``python -m auto_refunds.cli run-daily``) killed with
SIGKILL, either at a named crash point or after a random delay.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from auto_refunds.demo import sample_data

REPO = Path(__file__).resolve().parents[1]
DAY_1 = dt.date(2026, 3, 2)
DAY_2 = dt.date(2026, 3, 3)
SPEC = sample_data.Spec(DAY_1, days=2, credits=600, transactions=2400, seed=11)


def run_daily(
    data_dir: Path, day: dt.date, crash_at: str | None = None, command: str = "run-daily"
) -> subprocess.Popen:
    env = {
        **os.environ,
        "AUTO_REFUNDS_DATA_DIR": str(data_dir),
        "PYTHONPATH": str(REPO / "plugins"),
    }
    env.pop("AUTO_REFUNDS_CRASH_AT", None)
    if crash_at:
        env["AUTO_REFUNDS_CRASH_AT"] = crash_at
    return subprocess.Popen(
        [sys.executable, "-m", "auto_refunds.cli", command, "--date", day.isoformat()],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_to_end(data_dir: Path, day: dt.date, command: str = "run-daily") -> None:
    process = run_daily(data_dir, day, command=command)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr[-3000:]


DAILY_TABLES = (
    "refund_ledger",
    "refund_ledger_events",
    "refund_files",
    "tickler_true_refunds_due",
    "tickler_refund_exceptions",
    "credit_outcomes",
    "quarantine_rows",
)


def state_of(data_dir: Path, extra_tables: tuple[str, ...] = ()) -> dict:
    """Everything a run leaves behind that matters: outbox bytes and the published tables."""
    files = {
        path.name: path.read_bytes()
        for path in sorted((data_dir / "outbox").rglob("*"))
        if path.is_file()
    }
    con = duckdb.connect(str(data_dir / "warehouse" / "auto_refunds.duckdb"), read_only=True)
    try:
        tables = {
            table: con.execute(f"select * from {table} order by all").fetchall()
            for table in (*DAILY_TABLES, *extra_tables)
        }
    finally:
        con.close()
    return {"files": files, **tables}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("inputs")
    sample_data.generate(folder, SPEC)
    return folder


@pytest.fixture(scope="module")
def uninterrupted(inputs, tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("uninterrupted")
    shutil.copytree(inputs / "landing", folder / "landing")
    run_to_end(folder, DAY_1)
    run_to_end(folder, DAY_2)
    return state_of(folder)


def fresh_copy(inputs: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    shutil.copytree(inputs / "landing", folder / "landing")
    return folder


@pytest.mark.parametrize(
    "crash_at",
    [
        "mid_load",
        "mid_model",
        "mid_file_write",
        "between_file_and_manifest",
        "between_manifest_and_ledger",
    ],
)
def test_a_kill_at_each_crash_point_then_a_rerun_ends_as_if_never_killed(
    inputs, uninterrupted, tmp_path, crash_at
):
    folder = fresh_copy(inputs, tmp_path)
    run_to_end(folder, DAY_1)
    killed = run_daily(folder, DAY_2, crash_at=crash_at)
    killed.communicate(timeout=300)
    assert killed.returncode == -signal.SIGKILL, "the run was not killed"

    outbox = folder / "outbox" / "imaginepay"
    if crash_at in ("mid_load", "mid_model", "mid_file_write"):
        assert not (outbox / "refunds_20260303.manifest.json").exists()
    run_to_end(folder, DAY_2)
    assert state_of(folder) == uninterrupted


def test_kills_at_random_moments(inputs, uninterrupted, tmp_path):
    chooser = random.Random(20260303)
    folder = fresh_copy(inputs, tmp_path)
    run_to_end(folder, DAY_1)
    for _ in range(3):
        process = run_daily(folder, DAY_2)
        time.sleep(chooser.uniform(0.5, 5.0))
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=300)
    run_to_end(folder, DAY_2)
    assert state_of(folder) == uninterrupted


def test_the_next_day_heals_a_kill_between_the_file_and_the_ledger(inputs, uninterrupted, tmp_path):
    """The run of D is never rerun: the run of D+1 still sees D's published refunds."""
    folder = fresh_copy(inputs, tmp_path)
    killed = run_daily(folder, DAY_1, crash_at="between_manifest_and_ledger")
    killed.communicate(timeout=300)
    assert killed.returncode == -signal.SIGKILL
    run_to_end(folder, DAY_2)
    healed = state_of(folder)
    assert healed["refund_ledger"] == uninterrupted["refund_ledger"]
    assert healed["tickler_true_refunds_due"] == [
        row for row in uninterrupted["tickler_true_refunds_due"] if row[0] == DAY_2
    ]


# Reconciliation: four dates published and answered; the kill hits the reconciliation of the first.
RECONCILED = [DAY_1 + dt.timedelta(days=n) for n in range(4)]
RECONCILIATION_TABLES = ("payment_postings", "unmatched_returns", "postings_files", "payment_files")


def reconcile(data_dir: Path, day: dt.date) -> None:
    run_to_end(data_dir, day, command="run-reconciliation")


def kill_reconciliation(data_dir: Path, day: dt.date, crash_at: str) -> None:
    killed = run_daily(data_dir, day, crash_at=crash_at, command="run-reconciliation")
    killed.communicate(timeout=300)
    assert killed.returncode == -signal.SIGKILL, "the run was not killed"


@pytest.fixture(scope="module")
def answered(tmp_path_factory) -> Path:
    from auto_refunds import daily
    from auto_refunds.demo import imaginepay_simulator
    from auto_refunds.settings import Settings

    folder = tmp_path_factory.mktemp("answered")
    sample_data.generate(folder, sample_data.Spec(DAY_1, 4, 400, 1600, seed=13))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AUTO_REFUNDS_DATA_DIR", str(folder))
        settings = Settings.from_env()
        for day in RECONCILED:
            daily.run_all(day, settings)
            imaginepay_simulator.answer(settings.layout, day)
    return folder


def copy_of(answered: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    shutil.copytree(answered, folder)
    return folder


@pytest.fixture(scope="module")
def reconciled(answered, tmp_path_factory) -> dict:
    folder = copy_of(answered, tmp_path_factory.mktemp("reconciled"))
    for day in RECONCILED:
        reconcile(folder, day)
    return state_of(folder, RECONCILIATION_TABLES)


RECONCILIATION_CRASH_POINTS = [
    "mid_load",
    "mid_model",
    "mid_file_write",
    "between_ledger_and_postings",
]


@pytest.mark.parametrize("crash_at", RECONCILIATION_CRASH_POINTS)
def test_a_killed_reconciliation_then_a_rerun_ends_as_if_never_killed(
    answered, reconciled, tmp_path, crash_at
):
    folder = copy_of(answered, tmp_path)
    kill_reconciliation(folder, RECONCILED[0], crash_at)
    postings = folder / "outbox" / "imagineone" / "payment_postings_20260302.csv"
    if crash_at != "between_ledger_and_postings":
        assert not postings.exists()
    reconcile(folder, RECONCILED[0])
    for day in RECONCILED[1:]:
        reconcile(folder, day)
    assert state_of(folder, RECONCILIATION_TABLES) == reconciled


@pytest.mark.parametrize("crash_at", ["mid_model", "between_ledger_and_postings"])
def test_a_killed_reconciliation_healed_by_the_next_dates_before_its_rerun(
    answered, reconciled, tmp_path, crash_at
):
    """No refund ages into NO_PROCESSOR_RESPONSE for want of a file that was answered: the next
    dates reconcile the killed one first, or deliver the postings file it committed."""
    folder = copy_of(answered, tmp_path)
    kill_reconciliation(folder, RECONCILED[0], crash_at)
    for day in RECONCILED[1:]:
        reconcile(folder, day)
    assert state_of(folder, RECONCILIATION_TABLES) == reconciled
    reconcile(folder, RECONCILED[0])
    assert state_of(folder, RECONCILIATION_TABLES) == reconciled


def test_reconciliation_killed_at_random_moments(answered, reconciled, tmp_path):
    chooser = random.Random(20260302)
    folder = copy_of(answered, tmp_path)
    for _ in range(3):
        process = run_daily(folder, RECONCILED[0], command="run-reconciliation")
        time.sleep(chooser.uniform(0.5, 8.0))
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=300)
    reconcile(folder, RECONCILED[0])
    for day in RECONCILED[1:]:
        reconcile(folder, day)
    assert state_of(folder, RECONCILIATION_TABLES) == reconciled
