"""Facts the DAGs and docker-compose.yaml share.

DuckDB takes one writer at a time, so under the CeleryExecutor every task of both DAGs goes to
one queue that a single worker with concurrency 1 serves (see docker-compose.yaml). Under the
embedded LocalExecutor the queue is ignored and the DAGs' max_active_tasks=1 does the same.

Retries are for what heals by itself (the warehouse busy past the lock timeout, an I/O error, a
lost worker); a failure that needs a person fails at once (``auto_refunds.errors``).
"""

import datetime as dt

WAREHOUSE_QUEUE = "auto_refunds_warehouse"

DEFAULT_ARGS = {
    "owner": "auto-refunds",
    "retries": 2,
    "retry_delay": dt.timedelta(seconds=30),
    # Multiplier: 30 s, then 60 s.
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": dt.timedelta(minutes=10),
    "queue": WAREHOUSE_QUEUE,
}

AS_OF_DATE_PARAM = {
    "default": None,
    "type": ["null", "string"],
    "format": "date",
    "title": "As-of date",
    "description": (
        "The date D to process, YYYY-MM-DD. Empty: the run's logical date (for the "
        "reconciliation started by a refund file, the date of that file)."
    ),
}
"""The ``as_of_date`` param both DAGs take, typed: null or a date."""
