"""Command line: ``python -m auto_refunds.cli run-daily|run-reconciliation|summary --date D``.

``run-daily`` and ``run-reconciliation`` run the same steps as the ``auto_refunds`` and
``refund_reconciliation`` DAGs, in one process and without Airflow (for the tests, the benchmark
and quick local checks).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging

from auto_refunds import daily, reconciliation, report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m auto_refunds.cli")
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("run-daily", "run-reconciliation", "summary"):
        command = commands.add_parser(name)
        command.add_argument("--date", type=dt.date.fromisoformat, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.command == "run-daily":
        print(daily.as_dict(daily.run_all(args.date)))
    if args.command == "run-reconciliation":
        # As the DAG: the dates answered but not reconciled yet go first or after, oldest first.
        reconciliation.reconcile_pending(args.date, "before")
        print(reconciliation.as_dict(reconciliation.run_all(args.date)))
        reconciliation.reconcile_pending(args.date, "after")
    print(report.daily_summary(args.date))


if __name__ == "__main__":
    main()
