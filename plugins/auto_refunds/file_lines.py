"""How DuckDB reads an input file as its numbered physical lines, and the error of a file that
cannot be used at all.

Every physical line arrives whole and in order, numbered from 1 (the header); blank lines and the
header are left out of the data lines. What a line holds is not looked at here: splitting it
into fields and joining the lines of a quoted line break is ``csv_records``; a file whose lines
end in both LF and CRLF is read in one thread (``mixed_line_ends``); a file that is not all UTF-8,
or some of whose lines hold a bare CR or a NUL byte, is first turned into one DuckDB can read by
``pipe_feed``.

``LINES_VERSION`` versions how a file becomes the numbered, masked records that the typed
extracts are made of (this module, ``pipe_feed``, ``csv_records``, ``field_masking``): bump it
when a change there changes them. tests/test_typing_version.py fails until you do.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from auto_refunds import card_numbers
from auto_refunds.errors import NeedsAPerson
from auto_refunds.fingerprints import MAX_LINE_BYTES

# How a file becomes numbered records: the reading here, the escaping of pipe_feed, the joining
# and splitting of csv_records, the masking of field_masking. Part of every typed extract's
# version (typing_version): bumping it types every extract again.
LINES_VERSION = 3


class InputFileError(NeedsAPerson):
    """A landing file that cannot be used at all: missing, unreadable, or with a wrong header."""

    action = "ask the sender for a complete, readable file with the contract's header, then rerun"


# A line of blanks only is blank. ltrim decides it as well as trim, and in DuckDB 2.0 it is much
# cheaper than trim (docs/design.md#performance has the figures).
NOT_BLANK = "ltrim(raw_line) <> ''"


# DuckDB refuses a whole file for one line longer than its max_line_size (2 MB by default): a
# line up to this length is read, so that staging quarantines it and the other lines go on
# (CONTRACT 2); a file with a longer one is read through the pipe feed, which cuts that line and
# marks it (fingerprints.MAX_LINE_BYTES). The buffer stays DuckDB's default size.
_BUFFER_BYTES = 32 << 20


# A file whose lines end in both LF and CRLF (fingerprints.Reading.LINE_ENDS_MIXED): DuckDB reads
# it only with CRLF as the line end and strict mode off, which takes a lone LF as a line end too,
# and only in one thread (its parallel reader refuses such a file).
_LINE_ENDS_MIXED = "new_line = '\\r\\n', strict_mode = false, parallel = false,"


def physical_lines_query(path: Path, mixed_line_ends: bool = False) -> str:
    """SQL of every physical line of ``path`` as ``raw_line``, header and blank lines included;
    ``mixed_line_ends`` for a file whose lines end in both LF and CRLF."""
    # NUL as the delimiter and no quoting: every physical line arrives whole, in order.
    return f"""
        select raw_line
        from read_csv(
            {sql_literal(str(path))}, header = false, columns = {{'raw_line': 'VARCHAR'}},
            delim = '\\0', quote = '', escape = '', auto_detect = false,
            {_LINE_ENDS_MIXED if mixed_line_ends else ""}
            max_line_size = {MAX_LINE_BYTES}, buffer_size = {_BUFFER_BYTES}
        )
    """


def lines_query(path: Path, line: str, mixed_line_ends: bool = False) -> str:
    """The data lines of ``path`` as (line_number, raw_line), header and blank lines left out,
    each as the SQL ``line`` makes it of ``raw_line`` (``Source.landed_line``).

    The line numbers come from scan order: run it inside ``insertion_order``.
    """
    return f"""
        select line_number, {line} as raw_line
        from (
            select row_number() over () as line_number, raw_line
            from ({physical_lines_query(path, mixed_line_ends)})
        )
        where line_number > 1 and {NOT_BLANK}
    """


@contextmanager
def insertion_order(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Scan order is only guaranteed with this setting, which the warehouse leaves off."""
    con.execute("set preserve_insertion_order = true")
    try:
        yield
    except BaseException:
        # A statement that failed has aborted the caller's transaction, which takes no statement
        # until it is rolled back: restoring the setting would only hide the error (the file it
        # names). The connection ends with the failed task.
        raise
    con.execute("set preserve_insertion_order = false")


def read_file(con: duckdb.DuckDBPyConnection, path: Path, sql: str, params: list | None = None):
    """Run ``sql``, which reads ``path``: a file DuckDB cannot read fails naming it."""
    try:
        return con.execute(sql, params or [])
    except duckdb.Error as exc:
        # DuckDB's message may quote a line of the file (CONTRACT 7: masked).
        raise InputFileError(f"{path}: cannot be read: {card_numbers.mask(str(exc))}") from exc


def sql_literal(text: str) -> str:
    """``text`` as a SQL string literal, for the statements that take no parameters (views)."""
    return "'" + text.replace("'", "''") + "'"
