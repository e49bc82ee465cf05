"""The refund worklist: the ticklers as work queues in the Airflow UI (an Airflow plugin).

The pages never open the DuckDB warehouse. Each publish writes what they read as per-date
Parquet snapshots (``snapshot``); people's resolutions of exceptions go to their own append-only
SQLite store (``resolutions``). ``plugin`` is what Airflow's plugin manager loads, through
``plugins/auto_refunds_worklist.py``; ``app`` builds the FastAPI app on first use, and imports
DuckDB only inside the routes.
"""
