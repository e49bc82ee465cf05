"""How physical lines become CSV records and a record becomes fields (RFC 4180), as staging
reads them.

``split_fields`` splits a line the way the warehouse macro ``csv_fields``
(include/sql/warehouse/macros.sql) does, and ``join_quoted_line_breaks`` joins the physical lines
that the line breaks of a quoted field split (RFC 4180 2.6) back into one record. Part of
``file_lines.LINES_VERSION``.
"""

from __future__ import annotations

import logging
import re

import duckdb

from auto_refunds.pipe_feed import is_marked

log = logging.getLogger(__name__)

# The RFC 4180 line and field of csv_fields (include/sql/warehouse/macros.sql).
_CSV_LINE = re.compile(r'("(?:[^"]|"")*"|[^,"]*)(,("(?:[^"]|"")*"|[^,"]*))*')
_CSV_FIELD = re.compile(r',("(?:[^"]|"")*"|[^,"]*)')


def split_fields(line: str) -> list[str] | None:
    """The fields of a line as staging reads them (csv_fields); None when the quoting is broken."""
    if '"' not in line:
        return [field.strip(" ") for field in line.split(",")]
    if not _CSV_LINE.fullmatch(line):
        return None
    return [
        (field[1:-1].replace('""', '"') if field.startswith('"') else field).strip(" ")
        for field in _CSV_FIELD.findall("," + line)
    ]


def quote_field(field: str) -> str:
    """``field`` as it is written in a CSV line: quoted only when it must be."""
    must = any(char in field for char in ',"\r\n')
    return '"' + field.replace('"', '""') + '"' if must else field


def is_record(line: str, width: int) -> bool:
    """Whether ``line`` reads as a record of ``width`` fields."""
    fields = split_fields(line)
    return fields is not None and len(fields) == width


# A quoted field holds at most this many line breaks: an unbalanced quote (a broken line) must not
# draw the lines after it into one record.
_MAX_LINES_A_RECORD = 20

_ODD_QUOTES = """(length(raw_line) - length(replace(raw_line, '"', ''))) % 2 = 1"""


def join_quoted_line_breaks(con: duckdb.DuckDBPyConnection, table: str, width: int) -> list[int]:
    """Join into one record the physical lines of ``table`` (line_number, raw_line) that a quoted
    field's line breaks split (RFC 4180 2.6); returns the line numbers of the records joined.

    A line leaves a quote open when it holds an odd number of quotes, and the next such line
    closes it. The lines from one to the other (at most ``_MAX_LINES_A_RECORD``) become one
    record, numbered by its first line and joined by LF, when that record reads as ``width``
    fields and no line between reads as a record of its own; otherwise the opening line is broken
    quoting on its own (staging quarantines it) and the lines after it stay as they are. A blank
    line inside the field is kept as an empty line (the blanks of a line of blanks are not).
    """
    odd = [
        row[0]
        for row in con.execute(
            f"select line_number from {table} where {_ODD_QUOTES} order by line_number"
        ).fetchall()
    ]
    # Every line that could belong to a record: from each odd line to the next, when close.
    wanted = sorted(
        {
            number
            for first, last in zip(odd, odd[1:], strict=False)
            if last - first < _MAX_LINES_A_RECORD
            for number in range(first, last + 1)
        }
    )
    if not wanted:
        return []
    text = dict(
        con.execute(
            f"select line_number, raw_line from {table} "
            "where line_number in (select unnest(?::bigint[]))",
            [wanted],
        ).fetchall()
    )
    firsts: list[int] = []
    records: list[str] = []
    joined_lines: list[int] = []
    at = 0
    while at + 1 < len(odd):
        first, last = odd[at], odd[at + 1]
        if last - first >= _MAX_LINES_A_RECORD:
            at += 1
            continue
        # Blank lines were left out of the table: their numbers are missing. Inside a quoted
        # field such a line is part of the field's text, as an empty line.
        numbers = [n for n in range(first, last + 1) if n in text]
        lines = [text.get(n, "") for n in range(first, last + 1)]
        record = "\n".join(lines)
        # A line between that reads as a record of its own is one: two broken lines around it
        # must not swallow it.
        if (
            not any(is_marked(line) for line in lines)
            and is_record(record, width)
            and not any(is_record(line, width) for line in lines[1:-1])
        ):
            firsts.append(first)
            records.append(record)
            joined_lines += numbers[1:]
            at += 2
        else:
            at += 1
    if records:
        con.execute(
            f"update {table} set raw_line = joined.raw_line "
            "from (select unnest(?::bigint[]) as line_number, unnest(?::varchar[]) as raw_line) "
            f"as joined where {table}.line_number = joined.line_number",
            [firsts, records],
        )
        con.execute(
            f"delete from {table} where line_number in (select unnest(?::bigint[]))",
            [joined_lines],
        )
        log.info("Joined %d record(s) whose quoted fields hold line breaks", len(records))
    return firsts
