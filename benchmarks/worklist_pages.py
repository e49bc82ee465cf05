"""Times the worklist's queries over a synthetic snapshot of a million exceptions.

    PYTHONPATH=plugins .venv/bin/python benchmarks/worklist_pages.py [--rows 1000000] [--days 30]

Writes snapshots with DuckDB straight to Parquet (no pipeline run): the latest date holds
``--rows`` exceptions and as many credit outcomes, the earlier ``--days`` - 1 dates a tenth each,
plus 10,000 resolutions; then times each page's queries as the API server runs them, and the
CSV of every row. Figures: docs/performance.md#the-worklist-pages.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import tempfile
import time
from pathlib import Path

import duckdb

from auto_refunds.layout import ymd
from auto_refunds.worklist import overview, resolutions, snapshot, story
from auto_refunds.worklist.queries import Filters, Reader

REASONS = [
    "NO_MATCHING_TRANSACTION",
    "CARD_EXPIRED",
    "REFUND_WINDOW_EXPIRED",
    "DEBIT_PIN_TRANSACTION",
    "BELOW_MIN_THRESHOLD",
    "CREDIT_EXCEEDS_TRANSACTION",
    "MISSING_REQUIREMENTS",
]


def _write_date(con, data_dir: Path, day: dt.date, rows: int) -> None:
    folder = snapshot.dates_folder(data_dir) / ymd(day)
    version = folder / "v1"
    version.mkdir(parents=True)
    con.execute("set variable d = ?::date", [day])
    con.execute(f"""create or replace temp table e as
        select getvariable('d') as as_of_date, printf('CR%010d', i) as credit_id,
            printf('CL%03d', i % 40) as client_id, printf('A%08d', i % 300000) as account_id,
            ((i * 7919) % 100000 / 100 + 1)::decimal(18, 2) as credit_amount,
            list_extract({REASONS}, (i % 7 + 1)::int) as reason_code,
            'no settled card sale on account of client on or before the date' as reason_detail,
            case when i % 20 = 0 then 'RECONCILIATION' else 'ELIGIBILITY' end as source,
            case when i % 20 = 0 then printf('AR%020d', i) end as refund_id
        from range({rows}) as t(i)""")
    con.execute(
        f"copy (select * from e order by credit_id) to '{version}/exceptions.parquet' "
        "(format parquet, row_group_size 100000)"
    )
    con.execute(f"""copy (select as_of_date, credit_id, client_id, account_id, credit_amount,
            as_of_date - 30 as credit_date, 'EXCEPTION' as outcome, reason_code, reason_detail,
            null::varchar as original_txn_id, refund_id, '1111' as card_last4
        from e order by credit_id) to '{version}/outcomes.parquet' (format parquet,
        row_group_size 100000)""")
    con.execute(f"""copy (select as_of_date, printf('AR%020d', i) as refund_id,
            printf('CR%010d', i + {rows}) as credit_id, printf('CL%03d', i % 40) as client_id,
            'A1' as account_id, 'T1' as original_txn_id, '1111' as card_last4,
            10.00::decimal(18, 2) as refund_amount
        from range({rows // 5}) as t(i), (select getvariable('d') as as_of_date)
        order by credit_id) to '{version}/refunds_due.parquet' (format parquet)""")
    con.execute(f"""copy (select getvariable('d') as as_of_date,
            printf('CR%010d', i + {rows}) as credit_id, 'CL001' as client_id,
            printf('AR%020d', i) as refund_id, s as status, 'payments_x.csv' as source_file,
            i as line_number, null::varchar as detail, 10.00::decimal(18, 2) as refund_amount
        from range({rows // 5}) as t(i), (values ('SENT'), ('REFUNDED')) as v(s)
        order by credit_id) to '{version}/ledger_events.parquet' (format parquet)""")
    con.execute(f"""copy (select getvariable('d') as as_of_date,
            printf('CR%010d', i + {rows}) as credit_id, printf('P%010d', i) as payment_id,
            'CL001' as client_id, 'A1' as account_id, 'T1' as txn_id,
            printf('AR%020d', i) as refund_id, -10.00::decimal(18, 2) as payment_amount,
            getvariable('d') as processed_date
        from range({rows // 5}) as t(i) order by credit_id) to '{version}/postings.parquet'
        (format parquet)""")
    (folder / "current").write_text("v1")


def _time(label: str, action, repeat: int = 3) -> None:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - started)
    print(f"{label:58s} {best * 1000:8.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="worklist-bench-"))
    try:
        latest = dt.date(2026, 3, 31)
        days = [latest - dt.timedelta(days=n) for n in range(args.days)]
        started = time.perf_counter()
        con = duckdb.connect()
        for day in days:
            _write_date(con, data_dir, day, args.rows if day == latest else args.rows // 10)
        con.close()
        print(
            f"snapshots written in {time.perf_counter() - started:.1f} s "
            f"({args.rows} exceptions on {latest}, {args.rows // 10} on each of "
            f"{args.days - 1} earlier dates)"
        )
        keys = [
            resolutions.ExceptionKey(latest, "ELIGIBILITY", f"CR{i:010d}", REASONS[i % 7])
            for i in range(1, 20_000, 2)
            if i % 20
        ]
        resolutions.record(data_dir, keys, "KEPT_AS_CREDIT", "bench", "bench")
        print(f"{len(keys)} resolutions recorded")

        def page(**changes):
            options = {"start": latest, "end": latest} | changes
            return lambda: Reader(data_dir).page("exceptions", Filters(**options))

        _time(
            "overview (latest date, 30-day charts)",
            lambda: overview.of_date(Reader(data_dir), latest),
        )
        _time("exceptions, open, page 1", page())
        _time("exceptions, open, page 10,000 (offset 500k)", page(page=10_000))
        _time(
            "exceptions, all, sorted by amount desc, page 1",
            page(status="all", sort="amount", descending=True),
        )
        _time(
            "exceptions, open, one client and reason", page(client="CL007", reason="CARD_EXPIRED")
        )
        _time("exceptions, resolved only", page(status="resolved"))
        _time("exceptions, 30 days (3.9M rows), open, page 1", page(start=days[-1]))
        _time(
            "refunds due, page 1",
            lambda: Reader(data_dir).page("refunds_due", Filters(start=latest, end=latest)),
        )
        _time("credit story (30 dates)", lambda: story.of_credit(Reader(data_dir), "CR0000123457"))
        out = Path(tempfile.mkdtemp(prefix="worklist-bench-csv-"))

        def csv_all():
            path = Reader(data_dir).csv(
                "exceptions", Filters(start=latest, end=latest, status="all"), out
            )
            return path.unlink()

        _time("CSV of all 1M exceptions of the date", csv_all, repeat=1)
        _time(
            "CSV of one reason (~143k rows)",
            lambda: (
                Reader(data_dir)
                .csv(
                    "exceptions",
                    Filters(start=latest, end=latest, status="all", reason="CARD_EXPIRED"),
                    out,
                )
                .unlink()
            ),
            repeat=1,
        )
        shutil.rmtree(out)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
