"""Command line: ``python -m auto_refunds.cli run-daily|run-reconciliation|summary --date D``
and ``scan-card-numbers``.

``run-daily`` and ``run-reconciliation`` run the same steps as the ``auto_refunds`` and
``refund_reconciliation`` DAGs, in one process and without Airflow (for the tests, the benchmark
and quick local checks). ``scan-card-numbers`` is the operator's self-check for card numbers
(auto_refunds.card_scan). Each command imports what it needs only when it runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m auto_refunds.cli")
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("run-daily", "run-reconciliation", "summary"):
        command = commands.add_parser(name)
        command.add_argument("--date", type=dt.date.fromisoformat, required=True)
    from auto_refunds.card_scan import SCAN_HELP

    scan = commands.add_parser(
        "scan-card-numbers",
        description=SCAN_HELP,
        help="look for card numbers in the warehouse, the outputs and the logs",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    scan.add_argument(
        "--logs", type=Path, action="append", default=[], help="another log folder to scan"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    from auto_refunds.layout import private_umask
    from auto_refunds.log_masking import install_log_filter
    from auto_refunds.settings import Settings

    private_umask()
    install_log_filter()
    if args.command == "scan-card-numbers":
        from auto_refunds import card_scan

        return card_scan.run(Settings.from_env(), args.logs)
    from auto_refunds import daily, reconciliation, report

    if args.command == "run-daily":
        print(daily.as_dict(daily.run_all(args.date)))
    if args.command == "run-reconciliation":
        # As the DAG: the dates answered but not reconciled yet go first or after, oldest first.
        reconciliation.reconcile_pending(args.date, "before")
        print(reconciliation.as_dict(reconciliation.run_all(args.date)))
        reconciliation.reconcile_pending(args.date, "after")
    print(report.daily_summary(args.date))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
