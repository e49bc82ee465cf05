"""Every setting of Auto-Refunds, read from ``AUTO_REFUNDS_*`` environment variables.

Settings are read when a task runs, never when a DAG file is parsed, so a test or an operator can
change the environment between runs without restarting anything. The one exception is the payment
file sensor's timeout and poke interval, which are part of the task's definition: the
reconciliation DAG file reads them alone (``payment_file_sensor_timing``), cheaply. Every value
is checked as it is read: a bad one raises ``SettingsError``, naming the variable and its value,
so the task (or the parse) fails at its start instead of half way through. An empty or unset
variable takes its default.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from auto_refunds.layout import Layout, make_folder

REPO_ROOT = Path(__file__).resolve().parents[2]
PREFIX = "AUTO_REFUNDS_"
MAX_THREADS = 256
MIN_MEMORY_BYTES = 64 * 1000**2
# DuckDB's memory_limit: a number and a unit (1000-based KB..TB, 1024-based KiB..TiB), or a
# percentage of the machine's memory.
_UNIT_BYTES = {"B": 1} | {
    prefix + suffix: base**power
    for power, prefix in enumerate("KMGT", start=1)
    for suffix, base in (("", 1000), ("B", 1000), ("IB", 1024))
}
_MEMORY = re.compile(r"(?P<number>[0-9]+(?:\.[0-9]+)?) ?(?P<unit>[A-Za-z]+|%)")


class SettingsError(ValueError):
    """A setting with a value the product cannot run with."""


def _env(name: str, default: str) -> str:
    value = os.environ.get(PREFIX + name, "").strip()
    return value or default


def _bad(name: str, value: str, why: str) -> SettingsError:
    return SettingsError(f"{PREFIX}{name}={value!r}: {why}")


def _number(name: str, default: str, kind: type, minimum: float, maximum: float = math.inf):
    text = _env(name, default)
    try:
        value = kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise _bad(name, text, f"not {what}") from None
    if not (math.isfinite(value) and minimum <= value <= maximum):
        bounds = f"at least {minimum:g}" if maximum == math.inf else f"{minimum:g} to {maximum:g}"
        raise _bad(name, text, f"must be {bounds}")
    return value


def _positive(name: str, default: str) -> float:
    value = _number(name, default, float, 0)
    if value == 0:
        raise _bad(name, _env(name, default), "must be above 0")
    return value


def _memory_limit(name: str, default: str) -> str:
    text = _env(name, default)
    match = _MEMORY.fullmatch(text)
    if not match:
        raise _bad(name, text, "not a DuckDB memory size such as 3GB, 512MB, 2GiB or 80%")
    number, unit = float(match["number"]), match["unit"].upper()
    if unit == "%":
        if not 0 < number <= 100:
            raise _bad(name, text, "a percentage of memory must be above 0 and at most 100")
        return text
    if unit not in _UNIT_BYTES:
        raise _bad(name, text, "unknown unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)")
    size = number * _UNIT_BYTES[unit]
    if size < MIN_MEMORY_BYTES:
        raise _bad(name, text, "must be at least 64MB")
    return text


def _folder(name: str, default: str, create: bool) -> Path:
    text = _env(name, default)
    path = Path(text).expanduser().resolve()
    if create and not path.exists():
        try:
            make_folder(path)
        except OSError as error:
            raise _bad(name, text, f"cannot create the folder {path}: {error.strerror}") from None
    if not path.is_dir():
        raise _bad(name, text, f"{path} is not a folder")
    if create and not os.access(path, os.W_OK | os.X_OK):
        raise _bad(name, text, f"the folder {path} is not writable")
    if create:
        _refuse_shared(name, text, path)
    return path


def _refuse_shared(name: str, text: str, path: Path) -> None:
    """CONTRACT 7: a folder whose contents another user could replace (the outbox swapped for
    theirs, a refund file altered) is refused. Its owner and its group are trusted; others are
    not: the folder must be ours (or root's), not writable by others, and no folder above it
    may be writable by others without the sticky bit (they could rename it away and put theirs
    in its place; /tmp's sticky bit stops that)."""
    info = path.stat()
    if info.st_uid not in (os.geteuid(), 0):
        raise _bad(
            name,
            text,
            f"the folder {path} belongs to user id {info.st_uid}, not to this process's user "
            f"(id {os.geteuid()}): its owner could replace anything in it",
        )
    if info.st_mode & stat.S_IWOTH:
        raise _bad(
            name,
            text,
            f"the folder {path} is writable by others (mode {stat.S_IMODE(info.st_mode):04o}): "
            f"anyone could replace what is in it; chmod o-w {path}",
        )
    for above in path.parents:
        mode = above.stat().st_mode
        if mode & stat.S_IWOTH and not mode & stat.S_ISVTX:
            raise _bad(
                name,
                text,
                f"the folder {above} above it is writable by others without the sticky bit "
                f"(mode {stat.S_IMODE(mode):04o}): anyone could replace {path}; chmod o-w {above}",
            )


class SensorTiming(NamedTuple):
    """The payment file sensor's two settings (``payment_file_sensor_timing``)."""

    timeout_hours: float
    poke_seconds: float

    @property
    def timeout(self) -> dt.timedelta:
        return dt.timedelta(hours=self.timeout_hours)


def payment_file_sensor_timing() -> SensorTiming:
    """The payment file sensor's timeout and poke interval, each checked (``SettingsError``).

    Read when the reconciliation DAG file is parsed, so it reads these two variables and nothing
    else: no folder is looked at or created. A bad value fails the parse, naming the variable.
    """
    return SensorTiming(
        timeout_hours=_positive("PAYMENT_FILE_TIMEOUT_HOURS", "24"),
        poke_seconds=_positive("PAYMENT_FILE_POKE_SECONDS", "300"),
    )


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
    no_response_after_days: int
    """A refund unanswered this many days after its file date is raised as NO_PROCESSOR_RESPONSE."""
    payment_file_settle_seconds: float = 60.0
    """A payment file is read once its size and modification time held this long (CONTRACT 7)."""
    payment_file_poke_seconds: float = 300.0
    """How often the reconciliation's sensor looks for the payment file."""

    @classmethod
    def from_env(cls) -> Settings:
        """The settings of this process's environment, each checked (``SettingsError``).

        The data root is created if missing; the SQL folder must hold the warehouse's SQL.
        """
        sql_dir = _folder("SQL_DIR", str(REPO_ROOT / "include" / "sql"), create=False)
        if not (sql_dir / "warehouse" / "tables.sql").is_file():
            raise _bad("SQL_DIR", _env("SQL_DIR", str(sql_dir)), "holds no warehouse/tables.sql")
        sensor = payment_file_sensor_timing()
        return cls(
            data_dir=_folder("DATA_DIR", str(REPO_ROOT / "data"), create=True),
            sql_dir=sql_dir,
            duckdb_memory_limit=_memory_limit("DUCKDB_MEMORY_LIMIT", "3GB"),
            duckdb_threads=_number("DUCKDB_THREADS", "0", int, 0, MAX_THREADS),
            lock_timeout_seconds=_positive("LOCK_TIMEOUT_SECONDS", "600"),
            payment_file_timeout_hours=sensor.timeout_hours,
            no_response_after_days=_number("NO_RESPONSE_AFTER_DAYS", "3", int, 1),
            payment_file_settle_seconds=_number("PAYMENT_FILE_SETTLE_SECONDS", "60", float, 0),
            payment_file_poke_seconds=sensor.poke_seconds,
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
