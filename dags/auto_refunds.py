"""
# auto_refunds

The nightly Auto-Refunds run for date **D** (the run's logical date).

1. **extract** first finishes what a stopped run of either DAG left half-done (a published
   refund file the ledger does not know, a committed postings file not delivered; logged as
   *Recovery*), then lands ImagineOne's credit snapshot of D, the client rules and every
   ImaginePay extract dated on or before D in the DuckDB warehouse, line by line.
2. One task per **SQL model** (`include/sql/staging`, `intermediate`, `marts`) decides each
   credit's outcome by the contract's refund rules, in their order; each task logs its row count
   (a view is computed where it is read, and not counted).
3. **audit** runs the Great Expectations suites; a failure stops the run before anything is
   published.
4. **publish** writes `outbox/imaginepay/refunds_YYYYMMDD.csv` and its manifest atomically,
   records the refunds in the ledger and replaces D's partition of the ticklers. It emits the
   refund-file Asset that starts `refund_reconciliation`.
5. **refresh_worklist** writes the worklist's snapshot of D (the Parquet files its pages read)
   from the warehouse as published, and rebuilds the work items (`main.tickler_items`); a retry
   writes them again whole.

Runs of several dates may be active together (a backfill beside the scheduled run): publish
checks that D's decision is still the one the warehouse would make now, and decides again, audited,
when another date published in between. A rerun of D replaces D's rows and nothing else; a rerun
that would change an already published refund file fails and leaves it as it was. Failures a retry
can fix are retried; the others fail at once, saying what to do. See README.md and docs/.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag
from airflow.timetables.interval import CronDataIntervalTimetable

from auto_refunds.assets import REFUND_FILE
from auto_refunds.dag_tasks import step_tasks
from auto_refunds.deployment import AS_OF_DATE_PARAM, DEFAULT_ARGS
from auto_refunds.pipeline import DAILY_STEPS


@dag(
    dag_id="auto_refunds",
    # Data-interval semantics: the run of D starts at 03:00 UTC on D+1, once D's files are in.
    schedule=CronDataIntervalTimetable("0 3 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    # DuckDB takes one writer: runs and their tasks go one at a time.
    max_active_runs=1,
    max_active_tasks=1,
    default_args=DEFAULT_ARGS,
    params={"as_of_date": Param(**AS_OF_DATE_PARAM)},
    tags=["auto-refunds", "imaginepay", "imagineone"],
    doc_md=__doc__,
)
def auto_refunds():
    # extract >> one task per model >> audit >> publish >> refresh_worklist
    step_tasks(DAILY_STEPS, outlets={"publish": [REFUND_FILE]})


auto_refunds()
