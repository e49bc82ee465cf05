"""``make run``: the whole money loop over a few consecutive days of sample data.

Run as ``python -m auto_refunds.demo``. For each day D, exactly as an operator would run it:

1. the credit snapshot of D loses the credits whose refund ImaginePay approved before D
   (ImagineOne posted them, so their balance is gone); declined ones stay and come back as
   PREVIOUSLY_DECLINED;
2. ``airflow dags test auto_refunds D``: the refund file of D, delivered to ImaginePay's
   location (a local folder under ``exchange/`` unless an Airflow connection says otherwise);
3. the local ImaginePay simulator answers it: the payment file of D at ImaginePay's outbound
   location, which the reconciliation collects, and the REFUND transactions it made in the
   extract of D+1;
4. ``airflow dags test refund_reconciliation D``: ledger, exceptions, postings of D;
5. a summary a billing manager can read.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import os
import re
import subprocess
from pathlib import Path

from auto_refunds import report
from auto_refunds.demo import imaginepay_simulator, sample_data
from auto_refunds.layout import CREDITS_HEADER, open_private, private_umask
from auto_refunds.outbox import atomic_write_bytes
from auto_refunds.settings import Settings
from auto_refunds.warehouse import connect

_FINISHED = re.compile(r"DagRun Finished: dag_id=(\w+), .*?state=(\w+)")
_QUERY_HINT = (
    ".venv/bin/python -c \"import duckdb; duckdb.connect('{warehouse}', read_only=True)"
    ".sql('from tickler_refund_exceptions limit 10').show()\""
)


def run_dag(dag_id: str, day: dt.date, log_dir: Path) -> tuple[str, Path]:
    """Run one DAG for ``day`` with ``airflow dags test``; returns (state, log file)."""
    log_file = log_dir / f"{dag_id}_{day:%Y%m%d}.log"
    with open_private(log_file) as handle:
        subprocess.run(
            ["airflow", "dags", "test", dag_id, day.isoformat()],
            stdout=handle,
            stderr=subprocess.STDOUT,
            check=False,
        )
    return dag_run_state(log_file.read_text(), dag_id), log_file


def succeeded(dag_id: str, day: dt.date, log_dir: Path) -> bool:
    """Run one DAG for ``day`` and say how it ended."""
    state, log_file = run_dag(dag_id, day, log_dir)
    print(f"{dag_id}: {state}  (log: {log_file})")
    return state == "success"


def dag_run_state(log: str, dag_id: str) -> str:
    """`airflow dags test` exits 0 whatever happened: the run's state is in its log."""
    states = [state for dag, state in _FINISHED.findall(log) if dag == dag_id]
    return states[-1] if states else "unknown"


def drop_posted_credits(settings: Settings, day: dt.date) -> int:
    """What ImagineOne does overnight: a credit refunded before ``day`` leaves its snapshot."""
    path = settings.layout.credits(day)
    if not settings.layout.warehouse.exists():
        return 0
    with connect(settings) as con:
        posted = {
            row[0]
            for row in con.execute(
                "select credit_id from refund_ledger where status = 'REFUNDED' and status_date < ?",
                [day],
            ).fetchall()
        }
    header, *lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if next(csv.reader(io.StringIO(line)), [""])[0] not in posted]
    if len(kept) != len(lines):
        assert header.strip() == ",".join(CREDITS_HEADER)
        atomic_write_bytes(path, "".join([header, *kept]).encode())
    return len(lines) - len(kept)


def simulator_folders(settings: Settings) -> dict[str, Path]:
    """Where the simulator reads the delivered refund file and leaves its payment file: the
    local folders of ImaginePay's two locations. A location that is a server (an SFTP
    connection) is not the simulator's: it then answers from the outbox into the inbox."""
    from auto_refunds import locations

    refunds = locations.resolve(locations.REFUNDS, settings.data_dir)
    payments = locations.resolve(locations.PAYMENTS, settings.data_dir)
    if isinstance(refunds, locations.LocalFolder) and isinstance(payments, locations.LocalFolder):
        print(
            "ImaginePay's locations are local folders (no SFTP connection defined): refund files "
            f"are delivered to {refunds.root}, payment files collected from {payments.root}"
        )
        return {"refunds_from": refunds.root, "payments_to": payments.root}
    print(
        "ImaginePay's locations are not both local folders: the simulator reads the outbox and "
        "answers into the inbox"
    )
    return {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m auto_refunds.demo", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2026, 3, 2))
    parser.add_argument("--days", type=int, default=4)
    parser.add_argument("--credits", type=int, default=2000)
    parser.add_argument("--transactions", type=int, default=8000)
    args = parser.parse_args(argv)
    # What the demo writes, and the `airflow dags test` runs it starts (their task logs
    # included), grant nothing to others whatever the umask.
    private_umask()

    # The simulator renames each payment file into place whole: nothing to wait for (the
    # settle interval is for files copied in by a transfer that writes them piece by piece).
    os.environ.setdefault("AUTO_REFUNDS_PAYMENT_FILE_SETTLE_SECONDS", "0")
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
    folders = simulator_folders(settings)
    failed = False
    for day in days:
        left = drop_posted_credits(settings, day)
        print(f"\n=== {day} ===  ({left} refunded credits left ImagineOne's snapshot)")
        if not succeeded("auto_refunds", day, log_dir):
            failed = True
            break
        answered = imaginepay_simulator.answer(layout, day, **folders)
        print(f"ImaginePay simulator answered: {answered}")
        if not succeeded("refund_reconciliation", day, log_dir):
            failed = True
            break
        print(report.daily_summary(day, settings))

    airflow_home = os.environ.get("AIRFLOW_HOME", "~/airflow")
    print(
        f"""
Where things are:
  refund files      {layout.refunds_outbox}
  postings          {layout.postings(days[0]).parent}
  delivered files   {settings.data_dir / "exchange"}   (table file_deliveries)
  warehouse         {layout.warehouse}
                    e.g. {_QUERY_HINT.format(warehouse=layout.warehouse)}
  quality results   {settings.quality_results_dir}
  run logs          {log_dir}   (task logs: {airflow_home}/logs)"""
    )
    return 1 if failed else 0
