"""A kill -9 at any moment of a real run, then a rerun, ends exactly as an uninterrupted run:
no partial file, no lost or doubled ledger entry.

Each run here is a separate process (``python -m auto_refunds.cli run-daily``) killed with
SIGKILL, either at a named crash point or after a random delay. A random kill counts only when it
landed in the run: the process was still running when the signal went (it died of it), had begun
its work and had not finished its writes; a kill that came too late (or too early) is tried again
from the same state, sooner (or later), a bounded number of times.

Over 300 lines: every crash point and the random kills share the runner that kills and compares.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import random
import re
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
    data_dir: Path,
    day: dt.date,
    crash_at: str | None = None,
    command: str = "run-daily",
    *,
    stdout=subprocess.DEVNULL,
    stderr=subprocess.PIPE,
) -> subprocess.Popen:
    """Start the run, in a session of its own (see ``reaped``); unbuffered, so that what it
    prints is there the moment it prints it."""
    env = {
        **os.environ,
        "AUTO_REFUNDS_DATA_DIR": str(data_dir),
        "PYTHONPATH": str(REPO / "plugins"),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("AUTO_REFUNDS_CRASH_AT", None)
    if crash_at:
        env["AUTO_REFUNDS_CRASH_AT"] = crash_at
    return subprocess.Popen(
        [sys.executable, "-m", "auto_refunds.cli", command, "--date", day.isoformat()],
        env=env,
        stdout=stdout,
        stderr=stderr,
        text=True,
        start_new_session=True,
    )


@contextlib.contextmanager
def reaped(process: subprocess.Popen):
    """Whatever happens in the block (a failed assertion, a timeout), the process and whatever
    it started are gone after it: SIGKILL to the session the test started, by its id."""
    try:
        yield process
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=60)


def run_killed_at(data_dir: Path, day: dt.date, crash_at: str, command: str = "run-daily") -> None:
    with reaped(run_daily(data_dir, day, crash_at=crash_at, command=command)) as killed:
        _, stderr = killed.communicate(timeout=300)
    assert killed.returncode == -signal.SIGKILL, f"the run was not killed: {stderr[-3000:]}"


def run_to_end(data_dir: Path, day: dt.date, command: str = "run-daily") -> float:
    """Run to its end; how long it took, in seconds."""
    started = time.monotonic()
    with reaped(run_daily(data_dir, day, command=command)) as process:
        _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr[-3000:]
    return time.monotonic() - started


# -- kills at random moments ------------------------------------------------------------------
KILLS = 3
ATTEMPTS_PER_KILL = 6
KILLS_BUDGET_SECONDS = 900
# A logged step of the run: "2026-03-03 10:00:00,123 auto_refunds.landing Landed ...".
LOGGED_STEP = re.compile(r"^\S+ \S+ (auto_refunds\.\S+ .{0,60})", re.M)


def writes_done(command: str, day: dt.date, stdout: str) -> bool:
    """Whether the run had finished writing: run-daily prints its result once run_all has
    returned; run-reconciliation reconciles later dates after printing its own, then prints the
    summary (read only)."""
    if command == "run-daily":
        return bool(stdout.strip())
    return any(line.startswith(f"{day.isoformat()}:") for line in stdout.splitlines())


def kill_once(
    data_dir: Path, day: dt.date, command: str, delay: float, logs: Path
) -> tuple[str, str]:
    """Start the run and SIGKILL it after ``delay`` s: ("landed", the last step it logged),
    or ("too late", why) or ("too early", why)."""
    logs.mkdir(parents=True, exist_ok=True)
    with (
        (logs / "stdout").open("w") as stdout,
        (logs / "stderr").open("w") as stderr,
        reaped(run_daily(data_dir, day, command=command, stdout=stdout, stderr=stderr)) as process,
    ):
        try:
            process.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    out, err = (logs / "stdout").read_text(), (logs / "stderr").read_text()
    if process.returncode != -signal.SIGKILL:
        # It ended before the signal: a run on its own must succeed.
        assert process.returncode == 0, err[-3000:]
        return "too late", f"the run ended by itself within {delay:.2f} s"
    if writes_done(command, day, out):
        return "too late", f"killed after {delay:.2f} s, its writes already done"
    steps = LOGGED_STEP.findall(err)
    if not steps:
        return "too early", f"killed after {delay:.2f} s, before its first step"
    return "landed", steps[-1]


def kill_at_random_moments(
    data_dir: Path, day: dt.date, command: str, typical_seconds: float, seed: int, logs: Path
) -> list[str]:
    """Kill runs of ``command`` for ``day`` KILLS times, one after the other, each at a random
    moment while it works; the step after which each kill landed. A kill that missed the run is
    undone (the data folder as before it) and tried again sooner or later, within bounds."""
    chooser = random.Random(seed)
    deadline = time.monotonic() + KILLS_BUDGET_SECONDS
    landed: list[str] = []
    for kill in range(KILLS):
        fraction, misses = chooser.uniform(0.1, 0.9), []
        for attempt in range(ATTEMPTS_PER_KILL):
            assert time.monotonic() < deadline, f"out of time: landed {landed}, missed {misses}"
            before = logs / f"before-{kill}-{attempt}"
            shutil.copytree(data_dir, before, symlinks=True)
            outcome, detail = kill_once(
                data_dir, day, command, fraction * typical_seconds, logs / f"{kill}-{attempt}"
            )
            if outcome == "landed":
                landed.append(detail)
                print(f"kill {kill + 1} of {command}: landed after {detail!r}; missed: {misses}")
                break
            misses.append(detail)
            shutil.rmtree(data_dir)
            shutil.copytree(before, data_dir, symlinks=True)
            fraction = fraction / 2 if outcome == "too late" else (fraction + 1) / 2
        else:
            pytest.fail(
                f"kill {kill + 1} never landed in a running {command} in {ATTEMPTS_PER_KILL} "
                f"attempts (a run takes about {typical_seconds:.1f} s): {misses}"
            )
    return landed


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
def run_seconds() -> dict[str, float]:
    """How long an uninterrupted run of each command took here (the fixtures below measure)."""
    return {}


@pytest.fixture(scope="module")
def uninterrupted(inputs, tmp_path_factory, run_seconds) -> dict:
    folder = tmp_path_factory.mktemp("uninterrupted")
    shutil.copytree(inputs / "landing", folder / "landing")
    run_to_end(folder, DAY_1)
    run_seconds["run-daily"] = run_to_end(folder, DAY_2)
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
    run_killed_at(folder, DAY_2, crash_at)

    outbox = folder / "outbox" / "imaginepay"
    if crash_at in ("mid_load", "mid_model", "mid_file_write"):
        assert not (outbox / "refunds_20260303.manifest.json").exists()
    run_to_end(folder, DAY_2)
    assert state_of(folder) == uninterrupted


def test_kills_at_random_moments(inputs, uninterrupted, run_seconds, tmp_path):
    folder = fresh_copy(inputs, tmp_path)
    run_to_end(folder, DAY_1)
    landed = kill_at_random_moments(
        folder, DAY_2, "run-daily", run_seconds["run-daily"], 20260303, tmp_path / "kills"
    )
    assert len(landed) == KILLS, landed
    run_to_end(folder, DAY_2)
    assert state_of(folder) == uninterrupted, f"kills landed after: {landed}"


def test_the_next_day_heals_a_kill_between_the_file_and_the_ledger(inputs, uninterrupted, tmp_path):
    """The run of D is never rerun: the run of D+1 still sees D's published refunds."""
    folder = fresh_copy(inputs, tmp_path)
    run_killed_at(folder, DAY_1, "between_manifest_and_ledger")
    run_to_end(folder, DAY_2)
    healed = state_of(folder)
    assert healed["refund_ledger"] == uninterrupted["refund_ledger"]
    assert healed["tickler_true_refunds_due"] == [
        row for row in uninterrupted["tickler_true_refunds_due"] if row[0] == DAY_2
    ]


# Reconciliation: four dates published and answered; the kill hits the reconciliation of the first.
RECONCILED = [DAY_1 + dt.timedelta(days=n) for n in range(4)]
RECONCILIATION_TABLES = (
    "payment_postings",
    "unmatched_returns",
    "postings_files",
    "payment_files",
    "payment_answers",
)


def reconcile(data_dir: Path, day: dt.date) -> float:
    return run_to_end(data_dir, day, command="run-reconciliation")


def kill_reconciliation(data_dir: Path, day: dt.date, crash_at: str) -> None:
    run_killed_at(data_dir, day, crash_at, command="run-reconciliation")


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
def reconciled(answered, tmp_path_factory, run_seconds) -> dict:
    folder = copy_of(answered, tmp_path_factory.mktemp("reconciled"))
    run_seconds["run-reconciliation"] = reconcile(folder, RECONCILED[0])
    for day in RECONCILED[1:]:
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


def test_reconciliation_killed_at_random_moments(answered, reconciled, run_seconds, tmp_path):
    folder = copy_of(answered, tmp_path)
    landed = kill_at_random_moments(
        folder,
        RECONCILED[0],
        "run-reconciliation",
        run_seconds["run-reconciliation"],
        20260302,
        tmp_path / "kills",
    )
    assert len(landed) == KILLS, landed
    reconcile(folder, RECONCILED[0])
    for day in RECONCILED[1:]:
        reconcile(folder, day)
    assert state_of(folder, RECONCILIATION_TABLES) == reconciled, f"kills landed after: {landed}"
