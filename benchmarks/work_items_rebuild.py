"""Times the work items' rebuild: the SQL steps against the row-by-row Python reference.

    PYTHONPATH=plugins .venv/bin/python benchmarks/work_items_rebuild.py [--rows 1000000]

Synthetic history in an in-memory DuckDB: ``--days`` dates, each credit an exception on about
half of them (two reasons, two amounts, so items open, change and reopen), every snapshot holding
the credit on its exception dates and most others, 1% of credits refunded, and 10,000
resolutions. Figures: docs/worklist.md#how-it-is-built.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import duckdb

from auto_refunds.worklist import items

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

SETUP = """
create temp table in_snapshot_days as
select (date '2026-01-01' + d::integer) as as_of_date from range({days}) as t(d);
create temp table grid as
select c, d, hash(c, d) % 100 as roll from range({credits}) as a(c), range({days}) as b(d);
create temp table in_exceptions as
select (date '2026-01-01' + d::integer) as as_of_date, 'C' || c as credit_id, 'CL1' as client_id,
    'A' || c as account_id,
    (case when roll % 7 = 0 then 45 else 50 end)::decimal(18, 2) as credit_amount,
    case when roll % 11 = 0 then 'CARD_EXPIRED' else 'NO_MATCHING_TRANSACTION' end
        as reason_code,
    'why' as reason_detail, 'ELIGIBILITY' as source, '' as refund_id
from grid where roll < 50;
create temp table in_held as
select (date '2026-01-01' + d::integer) as as_of_date, 'C' || c as credit_id
from grid where roll < 95;
create temp table in_refunded as
select (date '2026-01-01' + d::integer) as as_of_date, 'C' || c as credit_id, 'R' || c as refund_id
from grid where roll = 99 and c % 10 = 0;
create temp table in_resolutions as
select as_of_date, source, credit_id, reason_code, refund_id, 'KEPT_AS_CREDIT' as resolution,
    'clerk' as resolved_by, '2026-01-02T00:00:00+00:00' as resolved_at,
    row_number() over () as resolution_order
from in_exceptions using sample 10000 rows (reservoir, 7);
create temp table in_due (credit_id varchar, due_on date);
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=10)
    args = parser.parse_args()
    from items_reference import walk

    con = duckdb.connect()
    for statement in SETUP.format(days=args.days, credits=2 * args.rows // args.days).split(";"):
        if statement.strip():
            con.execute(statement)
    count = con.execute("select count(*) from in_exceptions").fetchone()[0]
    print(f"{count:,} exception rows over {args.days} dates")

    started = time.perf_counter()
    items.run_steps(con)
    built = con.execute("select count(*) from built_items").fetchone()[0]
    print(f"SQL: {built:,} items in {time.perf_counter() - started:.1f} s")

    started = time.perf_counter()
    exceptions = [items.Exception_(*row) for row in con.execute("from in_exceptions").fetchall()]
    snapshots = {day: set() for (day,) in con.execute("from in_snapshot_days").fetchall()}
    for day, credit_id in con.execute("from in_held").fetchall():
        snapshots[day].add(credit_id)
    refunded = con.execute("from in_refunded").fetchall()
    resolved = {
        tuple(row[:5]): items.Resolution(*row[5:])
        for row in con.execute("from in_resolutions").fetchall()
    }
    fetched = time.perf_counter()
    walked = walk(exceptions, snapshots, refunded, resolved)
    done = time.perf_counter()
    print(
        f"Python: {len(walked):,} items in {done - started:.1f} s"
        f" ({fetched - started:.1f} s reading the rows into Python, {done - fetched:.1f} s walking)"
    )
    return 0 if len(walked) == built else 1


if __name__ == "__main__":
    raise SystemExit(main())
