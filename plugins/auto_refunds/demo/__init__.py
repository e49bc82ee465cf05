"""The demo, apart from what the DAGs run: sample data, a local ImaginePay simulator and the
``make run`` driver (``python -m auto_refunds.demo``).

Nothing in ``dags/`` or in the rest of ``auto_refunds`` imports this package.
"""
