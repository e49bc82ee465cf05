"""Assets shared by the DAGs: the daily export's outlet is the reconciliation's schedule."""

from airflow.sdk import Asset

REFUND_FILE = Asset(name="auto_refunds.imaginepay_refund_file")
"""A refund file published to ImaginePay; each event's extra names its date, path, count, total."""
