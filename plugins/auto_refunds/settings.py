"""Every setting of Auto-Refunds, read from ``AUTO_REFUNDS_*`` environment variables.

Settings are read when a task runs, never when a DAG file is parsed, so a test or an operator can
change the environment between runs without restarting anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from auto_refunds.layout import Layout

REPO_ROOT = Path(__file__).resolve().parents[2]


def _env(name: str, default: str) -> str:
    value = os.environ.get(f"AUTO_REFUNDS_{name}", "").strip()
    return value or default


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    """Root of landing/, inbox/, outbox/ and warehouse/ (CONTRACT section 1)."""
    sql_dir: Path
    """The SQL models, one folder per layer."""
    duckdb_memory_limit: str
    """DuckDB's memory_limit; it spills to disk beyond it."""
    duckdb_threads: int
    """DuckDB worker threads; 0 means one per core."""
    lock_timeout_seconds: float
    """How long a run waits for another run to release the warehouse before it fails."""
    payment_file_timeout_hours: float
    """How long reconciliation waits for ImaginePay's payment file."""
    payment_file_settle_seconds: float
    """A payment file is read once its size and modification time held this long (CONTRACT 7)."""
    no_response_after_days: int
    """A refund unanswered this many days after its file date is raised as NO_PROCESSOR_RESPONSE."""

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            data_dir=Path(_env("DATA_DIR", str(REPO_ROOT / "data"))).resolve(),
            sql_dir=Path(_env("SQL_DIR", str(REPO_ROOT / "include" / "sql"))).resolve(),
            duckdb_memory_limit=_env("DUCKDB_MEMORY_LIMIT", "3GB"),
            duckdb_threads=int(_env("DUCKDB_THREADS", "0")),
            lock_timeout_seconds=float(_env("LOCK_TIMEOUT_SECONDS", "600")),
            payment_file_timeout_hours=float(_env("PAYMENT_FILE_TIMEOUT_HOURS", "24")),
            payment_file_settle_seconds=float(_env("PAYMENT_FILE_SETTLE_SECONDS", "60")),
            no_response_after_days=int(_env("NO_RESPONSE_AFTER_DAYS", "3")),
        )

    @property
    def layout(self) -> Layout:
        return Layout(self.data_dir)

    @property
    def quality_results_dir(self) -> Path:
        return self.data_dir / "quality" / "validations"

    @property
    def data_docs_dir(self) -> Path:
        return self.data_dir / "quality" / "data_docs"
