"""`make test-distributed`: the compose topology as processes, driven as an operator would.

PostgreSQL, Redis, api-server, scheduler, dag-processor, triggerer, the warehouse worker
(concurrency 1) and a worker of the default queue (tests/distributed/cluster.py). The tests run in
order and share one cluster and one data folder; each phase compares what the cluster wrote with
`airflow dags test` replaying the same dates, in the same order, on a copy of the data taken
before the phase (``Replay``).

Over 300 lines: the phases run in order on one cluster, so they live in one module.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import duckdb
import pytest
from cluster import REPO, TEST_TUNING, Api, Cluster, airflow_services, port_open, wait_for

from auto_refunds.demo import imaginepay_simulator, sample_data
from auto_refunds.demo.run import dag_run_state
from auto_refunds.layout import Layout
from auto_refunds.models import DAILY_MODELS
from auto_refunds.warehouse import exclusive_lock

pytestmark = pytest.mark.distributed

START = dt.date(2026, 3, 2)
DAYS = [START + dt.timedelta(days=n) for n in range(6)]
D1, D2, D3, D4, D5, D6 = DAYS
DAILY, RECON = "auto_refunds", "refund_reconciliation"
WAREHOUSE_WORKER = "airflow-worker"
DEFAULT_WORKER = "airflow-worker-default"
TERMINAL = {"success", "failed"}
MODEL_TASKS = {model.name for model in DAILY_MODELS}
# The sample size of `make run`.
CREDITS, TRANSACTIONS = 2000, 8000


def logical(day: dt.date) -> str:
    """The logical date of the daily run of ``day`` (data-interval start, 03:00 UTC)."""
    return f"{day.isoformat()}T03:00:00+00:00"


class Replay:
    """`airflow dags test`, the reference: the same dates, same order, on a copy of the data."""

    def __init__(self, root: Path):
        self.root = root
        self.home = root / "replay-airflow-home"
        self.count = 0
        self.seconds: list[float] = []
        # One replay at a time, beside the cluster: each works on its own copy of a snapshot.
        self.pool = ThreadPoolExecutor(max_workers=1)

    def start(self, snapshot: Path, steps: list) -> Future:
        self.count += 1
        return self.pool.submit(self.run, snapshot, steps, self.root / f"replay-{self.count}")

    def env(self, data_dir: Path) -> dict[str, str]:
        base = {
            k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AUTO_REFUNDS"))
        }
        return {
            **base,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AUTO_REFUNDS_DATA_DIR": str(data_dir),
            "AUTO_REFUNDS_PAYMENT_FILE_SETTLE_SECONDS": "0",
            "PYTHONPATH": str(REPO / "plugins"),
            "PATH": f"{REPO / '.venv' / 'bin'}:{os.environ['PATH']}",
        }

    def run(self, snapshot: Path, steps: list, copy: Path) -> Path:
        """Each step: (dag_id, date) or a callable given the copy's Layout. Returns the copy."""
        shutil.copytree(snapshot, copy)
        env = self.env(copy)
        if not self.home.exists():
            self.home.mkdir()
            subprocess.run(["airflow", "db", "migrate"], env=env, check=True, capture_output=True)
        for step in steps:
            if callable(step):
                step(Layout(copy))
                continue
            dag_id, day = step
            started = time.monotonic()
            result = subprocess.run(
                ["airflow", "dags", "test", dag_id, day.isoformat()],
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            self.seconds.append(time.monotonic() - started)
            state = dag_run_state(result.stdout + result.stderr, dag_id)
            assert state == "success", f"replay {dag_id} {day}: {state}\n{result.stdout[-3000:]}"
        return copy


@pytest.fixture(scope="module")
def env():
    root = Path(tempfile.mkdtemp(prefix="auto-refunds-distributed-"))
    # The PostgreSQL server runs as its own user and needs to reach its folder below this one.
    root.chmod(0o755)
    data = root / "data"
    sample_data.generate(data, sample_data.Spec(START, len(DAYS), CREDITS, TRANSACTIONS, seed=7))
    snapshot(data, root / "snapshot-a")
    cluster = Cluster(root)
    replay = Replay(root)
    state: dict = {"root": root, "data": data, "layout": Layout(data), "seen": []}
    started = time.monotonic()
    try:
        state["replay_a"] = replay.start(root / "snapshot-a", [(DAILY, d) for d in (D1, D2, D3)])
        cluster.configure(data, TEST_TUNING)
        cluster.start_airflow()
        state["api"] = Api(cluster.base_url, "airflow", cluster.admin_password)
        state["cluster"] = cluster
        state["replay"] = replay
        yield state
    finally:
        cluster.stop_all()
        replay.pool.shutdown(cancel_futures=True)
        print(f"\ncluster timings: {cluster.timings}; total {time.monotonic() - started:.0f} s")
        if os.environ.get("AUTO_REFUNDS_KEEP_DISTRIBUTED"):
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def snapshot(data: Path, to: Path) -> Path:
    shutil.copytree(data, to, ignore=shutil.ignore_patterns("*.lock", "spill"))
    return to


# -- helpers ----------------------------------------------------------------------------------


def runs(api: Api, dag_id: str) -> list[dict]:
    return api.runs(dag_id)


def all_task_instances(api: Api, dag_id: str) -> list[dict]:
    return api.get(f"/dags/{dag_id}/dagRuns/~/taskInstances?limit=1000")["task_instances"]


def observe(state: dict) -> None:
    """One look at both DAGs' task instances, kept for the checks of several phases."""
    api = state["api"]
    tis = {dag: all_task_instances(api, dag) for dag in (DAILY, RECON)}
    state["seen"].append((time.monotonic(), tis))


def wait_runs(state: dict, dag_id: str, run_ids: set[str], timeout: float) -> dict[str, dict]:
    api = state["api"]

    def done():
        observe(state)
        found = {r["dag_run_id"]: r for r in runs(api, dag_id) if r["dag_run_id"] in run_ids}
        if len(found) == len(run_ids) and all(r["state"] in TERMINAL for r in found.values()):
            return found
        return None

    try:
        return wait_for(done, timeout, f"{dag_id} runs {sorted(run_ids)}", every=2)
    except AssertionError:
        print(state["cluster"].tail(60))
        raise


def wait_quiet(state: dict, timeout: float) -> None:
    """No run of either DAG queued or running, and no refund-file event waiting for a run:
    nothing holds the warehouse, nor is about to. While a reconciliation runs, the scheduler
    keeps the events of later refund files queued and creates their run only a moment after the
    first one ends (max_active_runs), so runs alone can look idle in between."""
    api = state["api"]

    def quiet():
        observe(state)
        states = [r["state"] for dag in (DAILY, RECON) for r in runs(api, dag)]
        waiting = api.get(f"/dags/{RECON}/assets/queuedEvents")["queued_events"]
        return not {"queued", "running"} & set(states) and not waiting

    wait_for(quiet, timeout, "both DAGs to have no active run", every=2)


def backfill(state: dict, first: dt.date, last: dt.date) -> set[str]:
    """`airflow backfill create`, one run at a time: a backfill does not take the DAG's
    max_active_runs, and runs of a backfill side by side would each decide again."""
    before = {r["dag_run_id"] for r in runs(state["api"], DAILY)}
    state["cluster"].airflow(
        "backfill",
        "create",
        "--dag-id",
        DAILY,
        "--max-active-runs",
        "1",
        "--from-date",
        logical(first),
        "--to-date",
        logical(last),
    )
    created = wait_for(
        lambda: (
            {r["dag_run_id"] for r in runs(state["api"], DAILY) if r["run_type"] == "backfill"}
            - before
            or None
        ),
        60,
        "the backfill's runs",
    )
    return created


def trigger(state: dict, day: dt.date, run_id: str) -> str:
    state["api"].call(
        "POST",
        f"/dags/{DAILY}/dagRuns",
        {"dag_run_id": run_id, "logical_date": logical(day).replace("+00:00", "Z")},
    )
    return run_id


def published(layout: Layout, day: dt.date) -> tuple[bytes, bytes]:
    return layout.refunds(day).read_bytes(), layout.refunds_manifest(day).read_bytes()


@contextlib.contextmanager
def reading(layout: Layout) -> Iterator[duckdb.DuckDBPyConnection]:
    """The warehouse read-only, after the writer lock, as a person is told to read it beside
    the cluster: a task that holds it is waited for, not failed."""
    with exclusive_lock(layout.warehouse.with_name(layout.warehouse.name + ".lock"), 300):
        try:
            con = duckdb.connect(str(layout.warehouse), read_only=True)
        except duckdb.IOException as exc:
            raise AssertionError(f"{exc}\nheld by: {command_line(str(exc))}") from exc
        try:
            yield con
        finally:
            con.close()


def command_line(lock_error: str) -> str:
    """The process a DuckDB lock error names, as `ps` would show it."""
    pid = re.search(r"\(PID (\d+)\)", lock_error)
    try:
        return Path(f"/proc/{pid[1]}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (TypeError, OSError):
        return "unknown (gone)"


def ledger(layout: Layout) -> list[tuple]:
    with reading(layout) as con:
        return con.execute(
            "select refund_id, credit_id, refund_amount, requested_date, status "
            "from refund_ledger order by refund_id"
        ).fetchall()


def assert_no_credit_refunded_twice(layout: Layout) -> None:
    with reading(layout) as con:
        doubled = con.execute(
            "select credit_id, count(*) from refund_ledger where status <> 'DECLINED' "
            "group by credit_id having count(*) > 1"
        ).fetchall()
    assert doubled == []


def executed_on(cluster: Cluster) -> dict[str, set[tuple]]:
    """Per worker process: the (dag_id, run_id, task_id, try) it was handed, from its own log."""
    pattern = re.compile(
        r"Executing workload in Celery: .*?task_id='([^']+)', dag_id='([^']+)', "
        r"run_id='([^']+)', try_number=(\d+)"
    )
    found: dict[str, set[tuple]] = {}
    for process in cluster.processes:
        if process.name.startswith("airflow-worker"):
            text = process.log.read_text(errors="replace")
            found.setdefault(process.name.rsplit("#", 1)[0], set()).update(
                (dag, run, task, int(attempt)) for task, dag, run, attempt in pattern.findall(text)
            )
    return found


# -- the phases -------------------------------------------------------------------------------


def test_the_topology_is_docker_compose(env):
    names = {p.name for p in env["cluster"].processes}
    assert set(airflow_services()) <= names
    assert {"postgres", "redis"} <= names
    assert all(p.popen.poll() is None for p in env["cluster"].processes), env["cluster"].tail()


def test_a_backfill_of_three_dates_runs_one_at_a_time_like_dags_test(env):
    api, layout = env["api"], env["layout"]
    for dag in (DAILY, RECON):
        api.call("PATCH", f"/dags/{dag}", {"is_paused": False})
    started = time.monotonic()
    run_ids = backfill(env, D1, D3)
    done = wait_runs(env, DAILY, run_ids, 600)
    env["cluster"].timings["backfill_3_runs_s"] = time.monotonic() - started
    assert len(done) == 3
    assert sorted(r["logical_date"][:10] for r in done.values()) == [str(d) for d in (D1, D2, D3)]
    assert {r["state"] for r in done.values()} == {"success"}, done
    assert {r["run_type"] for r in done.values()} == {"backfill"}
    spans = sorted((when(r["start_date"]), when(r["end_date"])) for r in done.values())
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert start >= end, f"backfill runs overlapped: {spans}"
    per_run = [
        round((when(r["end_date"]) - when(r["start_date"])).total_seconds(), 1)
        for r in done.values()
    ]
    env["cluster"].timings["daily_run_s"] = per_run
    # Where a run's wall time goes: inside the task processes, or between them (Airflow).
    in_tasks = [
        round(sum(ti["duration"] or 0 for ti in api.task_instances(DAILY, run_id)), 1)
        for run_id in done
    ]
    env["cluster"].timings["daily_run_in_tasks_s"] = in_tasks
    snapshot(env["data"], env["root"] / "snapshot-b")
    env["replay_b"] = env["replay"].start(
        env["root"] / "snapshot-b",
        [
            *(lambda lay, d=d: imaginepay_simulator.answer(lay, d) for d in (D1, D2, D3)),
            *((RECON, d) for d in (D1, D2, D3)),
        ],
    )

    replay = env["replay_a"].result()
    for day in (D1, D2, D3):
        assert published(layout, day) == published(Layout(replay), day), day


def test_warehouse_tasks_ran_one_at_a_time(env):
    tis = [ti for dag in (DAILY, RECON) for ti in all_task_instances(env["api"], dag)]
    assert {ti["queue"] for ti in tis} == {"auto_refunds_warehouse"}
    # A rescheduled sensor keeps the start of its first poke: its span covers its wait.
    spans = sorted(
        (when(ti["start_date"]), when(ti["end_date"]), ti["dag_run_id"], ti["task_id"])
        for ti in tis
        # upstream_failed ones never ran (Airflow stamps them when it marks them).
        if ti["state"] in ("success", "failed") and ti["task_id"] != "wait_for_payment_file"
    )
    for (_, end, *first), (start, _, *second) in zip(spans, spans[1:], strict=False):
        assert start >= end, f"{first} and {second} ran at the same time"


def when(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_b_refund_files_start_reconciliation_whose_sensor_waits_holding_no_slot(env):
    layout, api = env["layout"], env["api"]
    # Seen while the backfill ran: the sensor up for reschedule while a daily task ran.
    waiting_beside_work = [
        at
        for at, tis in env["seen"]
        if any(
            ti["task_id"] == "wait_for_payment_file" and ti["state"] == "up_for_reschedule"
            for ti in tis[RECON]
        )
        and any(ti["state"] == "running" for ti in tis[DAILY])
    ]
    started = runs(api, RECON)
    assert started and {r["run_type"] for r in started} == {"asset_triggered"}
    assert waiting_beside_work, "the sensor was never seen waiting while a daily task ran"
    assert not any(layout.postings(day).exists() for day in (D1, D2, D3))

    # The refund files travelled to ImaginePay's inbound folder of the SFTP server, where the
    # simulator reads them and leaves its payment files in the outbound one.
    remote = env["cluster"].remote
    inbound = remote("/exchange/imaginepay/inbound")
    outbound = remote("/exchange/imaginepay/outbound")
    for day in (D1, D2, D3):
        refunds = layout.refunds(day)
        assert (inbound / refunds.name).read_bytes() == refunds.read_bytes()
        assert (inbound / layout.refunds_manifest(day).name).is_file()
        assert not layout.payments(day).exists()
        imaginepay_simulator.answer(layout, day, refunds_from=inbound, payments_to=outbound)
    started_at = time.monotonic()
    wait_for(
        lambda: observe(env) or all(layout.postings(day).exists() for day in (D1, D2, D3)),
        420,
        "the postings of the three dates",
        every=2,
    )
    wait_quiet(env, 300)
    env["cluster"].timings["reconcile_3_dates_s"] = time.monotonic() - started_at
    recon_runs = runs(api, RECON)
    assert {r["state"] for r in recon_runs} == {"success"}, recon_runs
    snapshot(env["data"], env["root"] / "snapshot-c")
    env["replay_c"] = env["replay"].start(env["root"] / "snapshot-c", [(DAILY, D4)])
    # Postings as `dags test` makes them, answering the same refund files.
    replay = env["replay_b"].result()
    for day in (D1, D2, D3):
        assert layout.postings(day).read_bytes() == Layout(replay).postings(day).read_bytes()
    assert ledger(layout) == ledger(Layout(replay))
    # Collected from the SFTP server, reconciled, the postings delivered to ImagineOne's folder
    # and each payment file moved to processed/ there.
    postings = remote("/exchange/imagineone/inbound")
    for day in (D1, D2, D3):
        name = layout.postings(day).name
        assert (postings / name).read_bytes() == layout.postings(day).read_bytes()
        processed = outbound / "processed" / layout.payments(day).name
        assert processed.read_bytes() == layout.payments(day).read_bytes()
    assert sorted(path.name for path in outbound.iterdir()) == ["processed"]


def test_c_a_lost_worker_is_retried_and_changes_nothing(env):
    cluster, layout, api = env["cluster"], env["layout"], env["api"]
    run_id = trigger(env, D4, "kill_test_d4")
    worker = next(p for p in cluster.processes if p.name == WAREHOUSE_WORKER)

    def model_running():
        tis = api.task_instances(DAILY, run_id)
        running = [ti for ti in tis if ti["state"] == "running" and ti["task_id"] in MODEL_TASKS]
        return running[0] if running else None

    victim = wait_for(model_running, 300, "a model task to run", every=0.3)
    started = time.monotonic()
    cluster.kill(worker, signal.SIGKILL)
    worker.popen.wait(10)
    argv = airflow_services()[WAREHOUSE_WORKER]
    cluster.start_service(WAREHOUSE_WORKER + "#2", argv)
    done = wait_runs(env, DAILY, {run_id}, 420)
    cluster.timings["kill_to_success_s"] = time.monotonic() - started
    assert done[run_id]["state"] == "success"
    retried = {ti["task_id"]: ti for ti in api.task_instances(DAILY, run_id)}[victim["task_id"]]
    assert retried["try_number"] >= 2 and retried["state"] == "success"
    env["kill"] = {"run_id": run_id, "task_id": victim["task_id"], "try": retried["try_number"]}

    # Its refund file started a reconciliation that waits for ImaginePay (no answer here): it
    # holds no worker slot and does not touch the warehouse.
    wait_quiet_but_sensors(env)
    snapshot(env["data"], env["root"] / "snapshot-d")
    replay = env["replay_c"].result()
    assert published(layout, D4) == published(Layout(replay), D4)
    assert ledger(layout) == ledger(Layout(replay))
    assert_no_credit_refunded_twice(layout)


def test_d_a_backfill_of_an_old_date_beside_the_run_of_a_later_date(env):
    api, layout, cluster = env["api"], env["layout"], env["cluster"]
    later = trigger(env, D6, "later_d6")
    wait_for(
        lambda: any(ti["state"] == "running" for ti in api.task_instances(DAILY, later)),
        300,
        "the later run to be running",
        every=0.5,
    )
    old = backfill(env, D5, D5)
    assert len(old) == 1
    done = wait_runs(env, DAILY, {later, *old}, 600)
    assert {r["state"] for r in done.values()} == {"success"}, done
    spans = sorted((when(r["start_date"]), when(r["end_date"])) for r in done.values())
    assert spans[1][0] < spans[0][1], f"the two runs were never active together: {spans}"
    # The file published second knows the first: replay in the order they were published.
    order = sorted((D5, D6), key=lambda d: layout.refunds_manifest(d).stat().st_mtime_ns)
    replay = env["replay"].start(env["root"] / "snapshot-d", [(DAILY, d) for d in order]).result()
    for day in (D5, D6):
        assert published(layout, day) == published(Layout(replay), day), day
    wait_quiet_but_sensors(env)
    assert_no_credit_refunded_twice(layout)
    cluster.timings["publish_order_d"] = [str(d) for d in order]


def wait_quiet_but_sensors(env) -> None:
    """The daily DAG is idle; reconciliation runs may only be waiting for their payment file."""

    def quiet():
        observe(env)
        if any(r["state"] in ("queued", "running") for r in runs(env["api"], DAILY)):
            return False
        tis = all_task_instances(env["api"], RECON)
        return not any(ti["state"] in ("running", "queued", "scheduled") for ti in tis)

    wait_for(quiet, 300, "the warehouse to be idle", every=2)


def test_e_a_model_task_log_read_through_the_rest_api_gives_its_row_count(env):
    api, layout = env["api"], env["layout"]
    run_id = env["kill"]["run_id"]
    log = api.get(
        f"/dags/{DAILY}/dagRuns/{run_id}/taskInstances/tickler_true_refunds_due/logs/1"
        "?full_content=true"
    )
    lines = [
        entry.get("event", "") if isinstance(entry, dict) else str(entry)
        for entry in log["content"]
    ]
    pattern = re.compile(r"Built \S*tickler_true_refunds_due: (\d+) rows")
    built = [m for line in lines if (m := pattern.search(line))]
    assert built, lines[-20:]
    manifest = layout.refunds_manifest(D4).read_text()
    assert int(built[-1][1]) == int(re.search(r'"record_count":\s*(\d+)', manifest)[1])


def test_f_every_task_ran_on_the_warehouse_queue_and_nothing_is_left_running(env):
    cluster = env["cluster"]
    on = executed_on(cluster)
    assert on.get(DEFAULT_WORKER, set()) == set(), on.get(DEFAULT_WORKER)
    tis = [ti for dag in (DAILY, RECON) for ti in all_task_instances(env["api"], dag)]
    finished = {
        (ti["dag_id"], ti["dag_run_id"], ti["task_id"], ti["try_number"])
        for ti in tis
        if ti["state"] in ("success", "failed")
    }
    assert finished <= on[WAREHOUSE_WORKER], finished - on[WAREHOUSE_WORKER]
    print(f"\nreplay dags test seconds: {[round(s, 1) for s in env['replay'].seconds]}")
    print(f"timings: {cluster.timings}")
    cluster.stop_all()
    assert all(p.popen.poll() is not None for p in cluster.processes)
    assert [port for port in cluster.ports if port_open(port)] == []
