"""``make bench``: the whole daily DAG on generated data, beside the floor.

    python benchmarks/bench_daily.py [--credits 1000000] [--transactions 4000000] [--rerun]

1. Generates the inputs once (cached under benchmarks/.cache) for one run date.
2. Runs the floor, ``benchmarks/floor.sql``: the refund rules as one hand-written DuckDB query
   over the same CSVs; the fastest of ``--floor-runs`` (3) counts.
3. Runs ``airflow dags test auto_refunds D`` on a fresh warehouse: wall time, peak memory
   (the largest resident set of the process tree), credits per second; checks that it picks the
   same refunds as the floor.
4. Runs a DAG of the same task ids with empty tasks: Airflow's own cost, which no pipeline of
   this shape can go below.
5. With ``--rerun``, times a rerun of the same date.
6. Prints the figures, the ratio and every task's time. Targets: within 3x the floor, < 4 GB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))

from auto_refunds.demo import sample_data  # noqa: E402
from auto_refunds.demo.run import dag_run_state  # noqa: E402
from auto_refunds.layout import Layout  # noqa: E402

DAY = dt.date(2026, 3, 2)
FLOOR = """
import duckdb, sys
sql = open(sys.argv[1]).read()
for name, value in zip(("$credits", "$transactions", "$client_rules", "$output"), sys.argv[2:6]):
    sql = sql.replace(name, "'" + value + "'")
sql = sql.replace("$as_of", "date '" + sys.argv[6] + "'")
con = duckdb.connect(config={"memory_limit": "3GB"})
con.execute(sql)
"""


def inputs(credits: int, transactions: int) -> Path:
    folder = REPO / "benchmarks" / ".cache" / f"data_{credits}_{transactions}"
    if not (folder / "landing" / "imagineone" / f"credits_{DAY:%Y%m%d}.csv").exists():
        print(f"Generating {credits:,} credits and {transactions:,} transactions (cached) ...")
        started = time.perf_counter()
        sample_data.generate(folder, sample_data.Spec(DAY, 1, credits, transactions, seed=7))
        print(f"  generated in {time.perf_counter() - started:.1f} s")
    return folder


# Runs a command and reports the largest resident set among its processes (ru_maxrss of the
# children of this small wrapper, so each measurement stands alone).
PEAK = """
import resource, subprocess, sys
code = subprocess.run(sys.argv[1:]).returncode
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""


def measured(command: list[str], env: dict) -> tuple[float, float, str]:
    """Run a command; (wall seconds, peak RSS in GB of its largest process, its output)."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", PEAK, *command], env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    peak_kb = int(result.stderr.strip().splitlines()[-1])
    return wall, peak_kb / 1024 / 1024, result.stdout + result.stderr


def dags_test(dag_id: str, env: dict) -> tuple[float, float, str]:
    """``airflow dags test`` of one run of D, measured; stops the benchmark if the run failed
    (the command itself exits 0 either way)."""
    wall, peak, log = measured(["airflow", "dags", "test", dag_id, DAY.isoformat()], env)
    if dag_run_state(log, dag_id) != "success":
        sys.exit(f"The {dag_id} run did not succeed:\n{log[-5000:]}")
    return wall, peak, log


# Airflow's own cost, measured rather than guessed: the same chain of task ids with nothing in
# them, run the same way. No pipeline of this shape can take less.
EMPTY_DAG = """
import pendulum
from airflow.sdk import chain, dag, task

from auto_refunds.models import DAILY_MODELS


@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False)
def auto_refunds_empty_tasks():
    @task
    def nothing():
        return None

    ids = ["extract", *(model.name for model in DAILY_MODELS), "audit", "publish"]
    chain(*(nothing.override(task_id=task_id)() for task_id in ids))


auto_refunds_empty_tasks()
"""


def task_durations(log: str) -> dict[str, float]:
    """Seconds each task took, from the start and end lines ``dags test`` logs."""
    marks = re.findall(
        r"^(\S+Z) .*\[DAG TEST\] (starting|end task) task_id=(\S+)", log, re.MULTILINE
    )
    started: dict[str, dt.datetime] = {}
    durations: dict[str, float] = {}
    for stamp, what, task_id in marks:
        moment = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        if what == "starting":
            started[task_id] = moment
        elif task_id in started:
            durations[task_id] = (moment - started[task_id]).total_seconds()
    return durations


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--credits", type=int, default=1_000_000)
    parser.add_argument("--transactions", type=int, default=4_000_000)
    parser.add_argument("--floor-runs", type=int, default=3, help="the floor's best of N")
    parser.add_argument(
        "--rerun", action="store_true",
        help="also time a rerun of the same date (extracts already typed, file unchanged)",
    )
    args = parser.parse_args()

    source = inputs(args.credits, args.transactions)
    landing = Layout(source)
    work = Path(tempfile.mkdtemp(prefix="auto-refunds-bench-"))
    try:
        data = work / "data"
        shutil.copytree(source / "landing", data / "landing")
        env = {
            **os.environ,
            "AUTO_REFUNDS_DATA_DIR": str(data),
            "AIRFLOW_HOME": str(work / "airflow"),
        }
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            env=env, check=True, capture_output=True,
        )

        # The floor first: it also warms the page cache for both. Its time varies from run to run
        # (docs/design.md#performance), so the fastest of --floor-runs is the floor (the harder
        # target).
        floor_out = work / "floor_refunds.csv"
        floor_wall, floor_peak, _ = min(
            measured(
                [
                    sys.executable, "-c", FLOOR, str(REPO / "benchmarks" / "floor.sql"),
                    str(landing.credits(DAY)), str(landing.transactions(DAY)),
                    str(landing.client_rules), str(floor_out), DAY.isoformat(),
                ],
                env,
            )
            for _ in range(args.floor_runs)
        )
        dag_wall, dag_peak, log = dags_test("auto_refunds", env)
        empty_dags = work / "empty_dags"
        empty_dags.mkdir()
        (empty_dags / "auto_refunds_empty_tasks.py").write_text(EMPTY_DAG)
        empty_wall, _, empty_log = dags_test(
            "auto_refunds_empty_tasks", {**env, "AIRFLOW__CORE__DAGS_FOLDER": str(empty_dags)}
        )
        refunds = Layout(data).refunds(DAY)
        same = sorted(refunds.read_text().splitlines()) == sorted(
            floor_out.read_text().splitlines()
        )

        print(f"\nInputs: {args.credits:,} credits, {args.transactions:,} transactions")
        print(f"{'':28}{'wall s':>9}{'peak GB':>9}{'credits/s':>12}")
        for label, wall, peak in (
            ("whole daily DAG", dag_wall, dag_peak),
            ("floor (one query)", floor_wall, floor_peak),
        ):
            print(f"{label:28}{wall:9.1f}{peak:9.2f}{args.credits / wall:12,.0f}")
        print(f"ratio DAG / floor: {dag_wall / floor_wall:.1f}x (target 3x); "
              f"peak {dag_peak:.2f} GB (target < 4 GB)")
        print(f"same refunds as the floor: {'yes' if same else 'NO'}")
        if args.rerun:
            rerun_wall, rerun_peak, _ = dags_test("auto_refunds", env)
            print(f"{'rerun of the same date':28}{rerun_wall:9.1f}{rerun_peak:9.2f}")
        print(f"the same {len(task_durations(empty_log))} tasks, empty: {empty_wall:.1f} s, so the "
              f"work itself is {(dag_wall - empty_wall) / floor_wall:.1f}x the floor")
        durations = task_durations(log)
        in_tasks = sum(durations.values())
        print(f"\nIn tasks {in_tasks:.1f} s; Airflow start-up and hand-overs "
              f"{dag_wall - in_tasks:.1f} s. Tasks, slowest first:")
        for task_id, seconds in sorted(durations.items(), key=lambda t: -t[1]):
            print(f"  {task_id:55}{seconds:7.2f} s")
        if not same:
            sys.exit(1)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
