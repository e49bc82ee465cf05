"""Command line: ``python -m auto_refunds.cli run-daily --date D`` and ``summary --date D``.

``run-daily`` runs the same steps as the ``auto_refunds`` DAG, in one process and without
Airflow (for the tests, the benchmark and quick local checks).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging

from auto_refunds import daily, report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m auto_refunds.cli")
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("run-daily", "summary"):
        command = commands.add_parser(name)
        command.add_argument("--date", type=dt.date.fromisoformat, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.command == "run-daily":
        print(daily.as_dict(daily.run_all(args.date)))
    print(report.daily_summary(args.date))


if __name__ == "__main__":
    main()
