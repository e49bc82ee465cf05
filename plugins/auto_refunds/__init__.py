"""Auto-Refunds: refunds patients' credit balances to the card they paid with.

The package holds everything the DAGs call; the DAG files in ``dags/`` stay thin.
"""
