"""Landing: register each input file by its content, and copy the small ones in line by line.

Nothing is interpreted here beyond the header. Each physical line is kept with its file and
line number (the header is line 1), so the staging models can type it and every malformed row
can be quarantined with the place it came from. A file is read again only when its content
changes (sha256), which makes rerunning any date cheap and idempotent.

ImaginePay transaction extracts are the exception to the copy. They accumulate every day and
are by far the largest input, so copying their lines in and then typing every extract up to D
again on every run would grow each night's work with the whole history. They are only
registered here; their staging model types each extract once, straight from the registered
file, and keeps the typed lines (see ``extract_typing.build_per_file``).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from auto_refunds.errors import NeedsAPerson
from auto_refunds.faults import crash_point
from auto_refunds.layout import (
    CLIENT_RULES_HEADER,
    CREDITS_HEADER,
    PAYMENTS_HEADER,
    TRANSACTIONS_HEADER,
)
from auto_refunds.warehouse import scalar

log = logging.getLogger(__name__)


class InputFileError(NeedsAPerson):
    """A landing file that cannot be used at all: missing, unreadable, or with a wrong header."""

    action = "ask the sender for a complete, readable file with the contract's header, then rerun"


@dataclass(frozen=True)
class Source:
    kind: str
    # None: registered only, its lines are read straight from the file by its staging model.
    table: str | None
    header: tuple[str, ...]
    dated: bool = True


CREDITS = Source("credits", "landing.imagineone__credits", CREDITS_HEADER)
CLIENT_RULES = Source(
    "client_rules", "landing.imagineone__client_rules", CLIENT_RULES_HEADER, dated=False
)
TRANSACTIONS = Source("transactions", None, TRANSACTIONS_HEADER)
PAYMENTS = Source("payments", "landing.imaginepay__payments", PAYMENTS_HEADER)


@dataclass(frozen=True)
class Landed:
    source_file: str
    data_lines: int
    reloaded: bool


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_header(path: Path, expected: tuple[str, ...]) -> None:
    if not path.is_file():
        raise InputFileError(f"{path}: file not found")
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            first = handle.readline()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"{path}: cannot be read: {exc}") from exc
    found = tuple(field.strip() for field in next(csv.reader([first]), []))
    if found != expected:
        raise InputFileError(
            f"{path} line 1: wrong header: expected {','.join(expected)!r}, "
            f"found {first.rstrip(chr(13) + chr(10))!r}"
        )


def land(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    path: Path,
    file_date: dt.date | None,
    digest: str | None = None,
) -> Landed:
    """Register ``path`` and copy its lines into ``source.table``, unless the same content is
    there already (a source without a table is registered only).

    ``digest`` is the file's sha256 when the caller has read it already. Runs inside the
    caller's transaction: a failure leaves the warehouse as it was.
    """
    check_header(path, source.header)
    digest = digest or sha256_of(path)
    name = path.name
    known = con.execute(
        "select sha256, data_lines from landing.files where source_file = ?", [name]
    ).fetchone()
    if known is not None and known[0] == digest:
        return Landed(name, known[1], reloaded=False)

    if source.table is not None:
        con.execute(f"delete from {source.table} where source_file = ?", [name])
        date_column = ", file_date" if source.dated else ""
        date_value = ", ?::date" if source.dated else ""
        params = [name, file_date] if source.dated else [name]
        with insertion_order(con):
            _read(
                con,
                path,
                f"""
                insert into {source.table} (source_file{date_column}, line_number, raw_line)
                select ?{date_value}, line_number, raw_line from ({lines_query(path)})
                """,
                params,
            )
        lines = scalar(con, f"select count(*) from {source.table} where source_file = ?", [name])
    else:
        # The data lines of lines_query, counted without numbering them: every line that is not
        # blank, less the header (checked above, so not blank). It also fails an unreadable file.
        lines = _read(
            con,
            path,
            f"select count(*) - 1 from ({_physical_lines(path)}) where {_NOT_BLANK}",
        ).fetchone()[0]
    crash_point("mid_load")
    con.execute(
        """
        insert or replace into landing.files (source_file, file_kind, file_date, sha256, data_lines)
        values (?, ?, ?, ?, ?)
        """,
        [name, source.kind, file_date, digest, lines],
    )
    log.info("Landed %s: %d data lines (sha256 %s)", path, lines, digest[:12])
    return Landed(name, lines, reloaded=True)


# A line of blanks only is blank. ltrim decides it as well as trim, and in DuckDB 2.0 it is much
# cheaper than trim (docs/design.md#performance has the figures).
_NOT_BLANK = "ltrim(raw_line) <> ''"


def _physical_lines(path: Path) -> str:
    # NUL as the delimiter and no quoting: every physical line arrives whole, in order.
    return f"""
        select raw_line
        from read_csv(
            {sql_literal(str(path))}, header = false, columns = {{'raw_line': 'VARCHAR'}},
            delim = '\\0', quote = '', escape = '', auto_detect = false
        )
    """


def lines_query(path: Path) -> str:
    """The data lines of ``path`` as (line_number, raw_line), header and blank lines left out.

    The line numbers come from scan order: run it inside ``insertion_order``.
    """
    return f"""
        select line_number, raw_line
        from (
            select row_number() over () as line_number, raw_line
            from ({_physical_lines(path)})
        )
        where line_number > 1 and {_NOT_BLANK}
    """


@contextmanager
def insertion_order(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Scan order is only guaranteed with this setting, which the warehouse leaves off."""
    con.execute("set preserve_insertion_order = true")
    try:
        yield
    finally:
        con.execute("set preserve_insertion_order = false")


def _read(con: duckdb.DuckDBPyConnection, path: Path, sql: str, params: list | None = None):
    try:
        return con.execute(sql, params or [])
    except duckdb.Error as exc:
        raise InputFileError(f"{path}: cannot be read: {exc}") from exc


def sql_literal(text: str) -> str:
    """``text`` as a SQL string literal, for the statements that take no parameters (views)."""
    return "'" + text.replace("'", "''") + "'"
