"""The refund worklist: the ticklers as work queues in the Airflow UI (an Airflow plugin).

The pages never open the DuckDB warehouse. After each publish, the pipelines' ``refresh_worklist``
step (``snapshot.refresh``) writes what they read as per-date Parquet snapshots, whose columns are
defined once in ``columns``; people's resolutions of exceptions go to their own append-only SQLite
store (``resolutions``); the same step rebuilds the work items, one per credit and problem over
every date (``items``). ``plugin`` is what Airflow's plugin manager loads, through
``plugins/auto_refunds_worklist.py``; ``app`` builds the FastAPI app on first use from the router
in ``routes`` (its dependencies in ``dependencies``, its HTML in ``rendering``), which imports
DuckDB (``queries``, ``overview``, ``story``) only inside the routes.
"""
