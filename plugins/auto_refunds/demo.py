"""``make run``: sample data for a few days, the daily DAG for each day, and a summary.

Each day runs exactly as an operator would run it: ``airflow dags test auto_refunds D``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path

from auto_refunds import report, sample_data
from auto_refunds.settings import Settings

_QUERY_HINT = (
    ".venv/bin/python -c \"import duckdb; duckdb.connect('{warehouse}', read_only=True)"
    ".sql('from tickler_refund_exceptions limit 10').show()\""
)
_FINISHED = re.compile(r"DagRun Finished: dag_id=(\w+), .*?state=(\w+)")


def run_dag(dag_id: str, day: dt.date, log_dir: Path) -> tuple[str, Path]:
    """Run one DAG for ``day`` with ``airflow dags test``; returns (state, log file)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_file = log_dir / f"{dag_id}_{day:%Y%m%d}.log"
    with open(log_file, "w") as handle:
        subprocess.run(
            ["airflow", "dags", "test", dag_id, day.isoformat()],
            stdout=handle,
            stderr=subprocess.STDOUT,
            check=False,
        )
    # `dags test` exits 0 whatever happened: the run's state is in its log.
    states = [state for dag, state in _FINISHED.findall(log_file.read_text()) if dag == dag_id]
    return (states[-1] if states else "unknown"), log_file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2026, 3, 2))
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--credits", type=int, default=2000)
    parser.add_argument("--transactions", type=int, default=8000)
    args = parser.parse_args(argv)

    settings = Settings.from_env()
    layout = settings.layout
    days = [args.start + dt.timedelta(days=d) for d in range(args.days)]
    if not all(layout.credits(day).exists() for day in days):
        print(f"Generating sample data in {settings.data_dir} ...")
        sample_data.generate(
            settings.data_dir,
            sample_data.Spec(args.start, args.days, args.credits, args.transactions, seed=7),
        )

    log_dir = settings.data_dir / "logs"
    failed = False
    for day in days:
        state, log_file = run_dag("auto_refunds", day, log_dir)
        print(f"\nauto_refunds {day}: run {state}  (log: {log_file})")
        if state != "success":
            failed = True
            print("  the run did not succeed; see the log above")
            continue
        print(report.daily_summary(day, settings))

    airflow_home = os.environ.get("AIRFLOW_HOME", "~/airflow")
    print(
        f"""
Where things are:
  refund files      {layout.refunds_outbox}
  warehouse         {layout.warehouse}
                    e.g. {_QUERY_HINT.format(warehouse=layout.warehouse)}
  quality results   {settings.quality_results_dir}
  run logs          {log_dir}   (task logs: {airflow_home}/logs)"""
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
