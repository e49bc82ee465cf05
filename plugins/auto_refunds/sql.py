"""The SQL statements the package runs that are not models: ``include/sql/publish/``.

They live beside the models so that sqlfluff lints them and a grep finds them.
"""

from __future__ import annotations

from auto_refunds.settings import Settings


def statement(name: str) -> str:
    """The text of ``include/sql/<name>.sql`` (for example ``publish/ledger_record_sent``)."""
    return (Settings.from_env().sql_dir / f"{name}.sql").read_text()
