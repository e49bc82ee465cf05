"""Facts the DAGs and docker-compose.yaml share.

DuckDB takes one writer at a time, so under the CeleryExecutor every task of both DAGs goes to
one queue that a single worker with concurrency 1 serves (see docker-compose.yaml). Under the
embedded LocalExecutor the queue is ignored and the DAGs' max_active_tasks=1 does the same.
"""

WAREHOUSE_QUEUE = "auto_refunds_warehouse"

DEFAULT_ARGS = {"owner": "auto-refunds", "retries": 0, "queue": WAREHOUSE_QUEUE}
