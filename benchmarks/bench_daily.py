"""``make bench``: the whole daily DAG on generated data, beside the floor.

    python benchmarks/bench_daily.py [--credits 1000000] [--transactions 4000000]
        [--profile default|varied|quoted|both|all] [--runs 3] [--rerun] [--nights N]

1. Generates the inputs once (cached under benchmarks/.cache, git-ignored) for one run date, in
   each data profile asked for: ``default`` (the demo's data, about 27% of credits due),
   ``varied`` (shaped like a practice's real data: about 40% due, many shared sales, malformed
   lines scattered) and ``quoted`` (the default's records as many exporters write them: text
   fields quoted, long card tokens, a quoted comma in 1% of lines, one line in 50 ending in CRLF,
   so the line ends are mixed); ``sample_data.PROFILES``. ``both`` is default and varied,
   ``all`` the three.
2. For each of ``--runs`` runs (3; the median counts), on a fresh warehouse: the floor,
   ``benchmarks/floor.sql`` (the refund rules as one hand-written DuckDB query over the same CSVs),
   then ``airflow dags test auto_refunds D``: wall time, peak memory (the largest resident set of
   the process tree); checks that it picks the same refunds as the floor.
3. Runs a DAG of the same task ids with empty tasks, as many times: Airflow's own cost, which no
   pipeline of this shape can go below. The DAG minus it is the work inside the tasks.
4. With ``--rerun``, times a rerun of the same date.
5. Prints the figures, the ratios and every task's time. Targets (docs/performance.md): at 1M
   the work inside the tasks within 3x the floor; at 10M the whole DAG within 2x, < 4 GB.

With ``--nights N`` instead: the steady state. The first extract holds the card history, each later
night's extract about 0.5% new transactions and 0.1% changed statuses, a full credit snapshot each
night. Nights 0 to N run in order on one warehouse, each beside the floor over the same files (the
floor reads every extract again; the DAG keeps what it typed). Targets: a late night within the
floor, and within 1.2x night 2.

Over 300 lines: one command, its three measurements (a date, the steady state, the empty DAG)
sharing the runner and the report.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import statistics
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
import duckdb, os, sys
sql = open(sys.argv[1]).read()
for name, value in zip(("$credits", "$transactions", "$client_rules", "$output"), sys.argv[2:6]):
    quoted = ["'" + part + "'" for part in value.split(os.pathsep)]
    sql = sql.replace(name, "[" + ", ".join(quoted) + "]" if name == "$transactions" else quoted[0])
sql = sql.replace("$as_of", "date '" + sys.argv[6] + "'")
con = duckdb.connect(config={"memory_limit": "3GB"})
con.execute(sql)
"""


def inputs(credits: int, transactions: int, profile: str = "default", nights: int = 0) -> Path:
    """The generated landing files, cached: the default profile's single date keeps the folder
    name of earlier benchmarks."""
    name = f"data_{credits}_{transactions}"
    if profile != "default":
        name += f"_{profile}"
    if nights:
        name += f"_nights{nights}"
    folder = REPO / "benchmarks" / ".cache" / name
    last = DAY + dt.timedelta(days=nights)
    done = folder / ".complete"
    # Earlier benchmarks left the default single date without the mark.
    if not nights and profile == "default" and Layout(folder).credits(last).exists():
        done.touch()
    if not done.exists():
        print(
            f"Generating {credits:,} credits and {transactions:,} transactions, profile "
            f"{profile}, {nights + 1} day(s) (cached in {folder}) ..."
        )
        started = time.perf_counter()
        shutil.rmtree(folder, ignore_errors=True)
        spec = sample_data.Spec(
            DAY,
            nights + 1,
            credits,
            transactions,
            seed=7,
            profile=sample_data.PROFILES[profile],
            steady=bool(nights),
        )
        sample_data.generate(folder, spec)
        assert Layout(folder).credits(last).exists()
        done.touch()
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


def dags_test(dag_id: str, env: dict, day: dt.date = DAY) -> tuple[float, float, str]:
    """``airflow dags test`` of one run of ``day``, measured; stops the benchmark if the run failed
    (the command itself exits 0 either way)."""
    wall, peak, log = measured(["airflow", "dags", "test", dag_id, day.isoformat()], env)
    if dag_run_state(log, dag_id) != "success":
        sys.exit(f"The {dag_id} run did not succeed:\n{log[-5000:]}")
    return wall, peak, log


# Airflow's own cost, measured rather than guessed: the same chain of task ids with nothing in
# them, run the same way. No pipeline of this shape can take less.
EMPTY_DAG = """
import pendulum
from airflow.sdk import chain, dag, task

from auto_refunds.pipeline import DAILY_STEPS


@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False)
def auto_refunds_empty_tasks():
    @task
    def nothing():
        return None

    ids = [step.task_id for step in DAILY_STEPS]
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


def floor(landing: Layout, day: dt.date, output: Path, env: dict) -> tuple[float, float, str]:
    """The floor over the credits of ``day`` and every extract up to it, measured."""
    extracts = os.pathsep.join(str(path) for _, path in landing.transactions_up_to(day))
    return measured(
        [
            sys.executable,
            "-c",
            FLOOR,
            str(REPO / "benchmarks" / "floor.sql"),
            str(landing.credits(day)),
            extracts,
            str(landing.client_rules),
            str(output),
            day.isoformat(),
        ],
        env,
    )


def fresh(work: Path, source: Path) -> dict:
    """A new data folder (the inputs copied, nothing else) and Airflow home; their environment."""
    shutil.rmtree(work, ignore_errors=True)
    data = work / "data"
    shutil.copytree(source / "landing", data / "landing")
    env = {**os.environ, "AUTO_REFUNDS_DATA_DIR": str(data), "AIRFLOW_HOME": str(work / "airflow")}
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env=env,
        check=True,
        capture_output=True,
    )
    return env


def empty_dag_runs(work: Path, env: dict, runs: int) -> tuple[float, int]:
    """Median wall time of the empty DAG, and its task count."""
    folder = work / "empty_dags"
    folder.mkdir(exist_ok=True)
    (folder / "auto_refunds_empty_tasks.py").write_text(EMPTY_DAG)
    walls, tasks = [], 0
    for _ in range(runs):
        wall, _, log = dags_test(
            "auto_refunds_empty_tasks", {**env, "AIRFLOW__CORE__DAGS_FOLDER": str(folder)}
        )
        walls.append(wall)
        tasks = len(task_durations(log))
    return statistics.median(walls), tasks


def warehouse_counts(data: Path, day: dt.date) -> tuple[int, int]:
    """(refunds due, quarantined rows) of ``day`` in the warehouse the DAG left."""
    import duckdb

    con = duckdb.connect(str(Layout(data).warehouse), read_only=True)
    try:
        due = con.execute(
            "select count(*) from main.tickler_true_refunds_due where as_of_date = ?", [day]
        ).fetchone()[0]
        quarantined = con.execute("select count(*) from main.quarantine_rows").fetchone()[0]
    finally:
        con.close()
    return due, quarantined


def single_date(args: argparse.Namespace, profile: str, work: Path) -> dict:
    source = inputs(args.credits, args.transactions, profile)
    landing = Layout(source)
    floors, dags, logs, peaks, same = [], [], [], [], True
    for run in range(args.runs):
        env = fresh(work / f"{profile}_{run}", source)
        data = Path(env["AUTO_REFUNDS_DATA_DIR"])
        floor_out = work / f"floor_{profile}_{run}.csv"
        # The floor first: it also warms the page cache for both.
        floor_wall, floor_peak, _ = floor(landing, DAY, floor_out, env)
        dag_wall, dag_peak, log = dags_test("auto_refunds", env)
        floors.append(floor_wall)
        dags.append(dag_wall)
        logs.append((dag_wall, log))
        peaks.append((dag_peak, floor_peak))
        refunds = Layout(data).refunds(DAY).read_text().splitlines()
        same &= sorted(refunds) == sorted(floor_out.read_text().splitlines())
        due, quarantined = warehouse_counts(data, DAY)
        print(
            f"  {profile} run {run + 1}: DAG {dag_wall:.1f} s, floor {floor_wall:.1f} s, "
            f"{due:,} refunds due ({due / args.credits:.0%}), {quarantined:,} rows quarantined"
        )
        if args.rerun and run == 0:
            rerun_wall, _, _ = dags_test("auto_refunds", env)
            print(f"  {profile} rerun of the same date: {rerun_wall:.1f} s")
        if run < args.runs - 1:
            shutil.rmtree(work / f"{profile}_{run}", ignore_errors=True)
    median_log = sorted(logs, key=lambda item: item[0])[len(logs) // 2][1]
    return {
        "profile": profile,
        "dag": statistics.median(dags),
        "dags": dags,
        "floor": statistics.median(floors),
        "floors": floors,
        "dag_peak": max(p[0] for p in peaks),
        "floor_peak": max(p[1] for p in peaks),
        "same": same,
        "due": due,
        "quarantined": quarantined,
        "durations": task_durations(median_log),
        "env": env,
    }


def report_single(args: argparse.Namespace, results: list[dict], empty: float, tasks: int) -> None:
    print(
        f"\nInputs: {args.credits:,} credits, {args.transactions:,} transactions; median of "
        f"{args.runs} run(s); the same {tasks} tasks, empty: {empty:.1f} s (median)"
    )
    print(
        f"{'profile':9}{'due':>7}{'DAG s':>8}{'floor s':>9}{'ratio':>7}{'in tasks':>10}"
        f"{'ratio':>7}{'DAG GB':>8}{'floor GB':>9}  same refunds"
    )
    for r in results:
        work = r["dag"] - empty
        print(
            f"{r['profile']:9}{r['due'] / args.credits:7.0%}{r['dag']:8.1f}{r['floor']:9.1f}"
            f"{r['dag'] / r['floor']:6.1f}x{work:10.1f}{work / r['floor']:6.1f}x"
            f"{r['dag_peak']:8.2f}{r['floor_peak']:9.2f}  {'yes' if r['same'] else 'NO'}"
        )
        print(
            f"{'':9}runs: DAG {', '.join(f'{v:.1f}' for v in r['dags'])}; "
            f"floor {', '.join(f'{v:.1f}' for v in r['floors'])}"
        )
    for r in results:
        durations = r["durations"]
        print(
            f"\n{r['profile']}: in tasks {sum(durations.values()):.1f} s "
            f"(the median run). Tasks, slowest first:"
        )
        for task_id, seconds in sorted(durations.items(), key=lambda t: -t[1]):
            print(f"  {task_id:55}{seconds:7.2f} s")


def steady_state(args: argparse.Namespace, profile: str, work: Path) -> None:
    source = inputs(args.credits, args.transactions, profile, args.nights)
    landing = Layout(source)
    env = fresh(work / "nights", source)
    data = Path(env["AUTO_REFUNDS_DATA_DIR"])
    empty, tasks = empty_dag_runs(work, env, args.runs)
    print(
        f"\nSteady state, profile {profile}: {args.credits:,} credits a night; the first "
        f"extract {args.transactions:,} transactions' history; the same {tasks} tasks, "
        f"empty: {empty:.1f} s"
    )
    # "tasks s" sums the tasks' own times from the log: on a loaded machine the empty tasks,
    # measured once, are a poor baseline for each night.
    print(
        f"{'night':>5}{'extract MB':>11}{'DAG s':>8}{'tasks s':>9}{'floor s':>9}{'ratio':>7}"
        f"{'tasks':>7}{'DAG GB':>8}{'due':>10}  slowest tasks"
    )
    nights = {}
    for night in range(args.nights + 1):
        day = DAY + dt.timedelta(days=night)
        floor_wall, _, _ = floor(landing, day, work / "floor_night.csv", env)
        dag_wall, dag_peak, log = dags_test("auto_refunds", env, day)
        due, _ = warehouse_counts(data, day)
        extract_mb = landing.transactions(day).stat().st_size / 1e6
        nights[night] = (dag_wall, floor_wall)
        durations = task_durations(log)
        in_tasks = sum(durations.values())
        slowest = sorted(durations.items(), key=lambda t: -t[1])[:3]
        print(
            f"{night:5}{extract_mb:11.1f}{dag_wall:8.1f}{in_tasks:9.1f}"
            f"{floor_wall:9.1f}{dag_wall / floor_wall:6.1f}x"
            f"{in_tasks / floor_wall:6.1f}x{dag_peak:8.2f}{due:10,}  "
            + ", ".join(f"{task} {seconds:.1f}" for task, seconds in slowest),
            flush=True,
        )
    if args.nights >= 2:
        base = nights[2][0]
        for night in sorted({min(5, args.nights), args.nights}):
            dag_wall, floor_wall = nights[night]
            print(
                f"night {night}: {dag_wall / floor_wall:.2f}x the floor over the same files "
                f"(target <= 1), {dag_wall / base:.2f}x night 2 (target <= 1.2)"
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--credits", type=int, default=1_000_000)
    parser.add_argument("--transactions", type=int, default=4_000_000)
    parser.add_argument(
        "--profile",
        choices=[*sample_data.PROFILES, "both", "all"],
        default="both",
        help="both: default and varied; all: every profile",
    )
    parser.add_argument("--runs", type=int, default=3, help="runs of each; the median counts")
    parser.add_argument(
        "--rerun",
        action="store_true",
        help="also time a rerun of the same date (extracts already typed, file unchanged)",
    )
    parser.add_argument(
        "--nights",
        type=int,
        default=0,
        help="steady state: nights 0..N in order on one warehouse (profile varied unless one "
        "is given)",
    )
    args = parser.parse_args()
    profiles = {"both": ["default", "varied"], "all": list(sample_data.PROFILES)}.get(
        args.profile, [args.profile]
    )

    work = Path(tempfile.mkdtemp(prefix="auto-refunds-bench-"))
    try:
        if args.nights:
            steady_state(args, "varied" if len(profiles) > 1 else args.profile, work)
            return
        results = [single_date(args, profile, work) for profile in profiles]
        empty, tasks = empty_dag_runs(work, results[-1]["env"], args.runs)
        report_single(args, results, empty, tasks)
        if not all(r["same"] for r in results):
            sys.exit("The DAG did not pick the floor's refunds")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
