"""Landing: register each input file by its content, and copy the small ones in line by line.

Nothing is interpreted here beyond the header and card numbers. Each physical line is kept with
its file and line number (the header is line 1), so the staging models can type it and every
malformed row can be quarantined with the place it came from. A line is kept with the card
numbers of its non-identifier fields masked (CONTRACT 7, ``Source.landed_line``): the ids stay
as they are, so staging types the real ones, and no table holds a card number elsewhere. A
file is read again only when its content changes (sha256), which makes rerunning any date
cheap and idempotent.

ImaginePay transaction extracts are the exception to the copy. They accumulate every day and
are by far the largest input, so copying their lines in and then typing every extract up to D
again on every run would grow each night's work with the whole history. They are only
registered here; their staging model types each extract once, straight from the registered
file, and keeps the typed lines (see ``extract_typing.build_per_file``). That model also masks
their fields itself (``Source.masked_by_staging``).

The steps of a file's way in have their own modules: ``fingerprints`` (its SHA-256 and how its
lines end), ``file_lines`` (its numbered lines, read by DuckDB), ``pipe_feed`` (a file that is not
all UTF-8, or holds a bare CR, a NUL byte or a line too long), ``csv_records`` (records joined
across quoted line breaks, split into fields) and ``field_masking`` (the card numbers of a landed
line's fields).
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb

from auto_refunds import card_numbers, fingerprints
from auto_refunds.csv_records import join_quoted_line_breaks
from auto_refunds.faults import crash_point
from auto_refunds.field_masking import masked_line_sql, masking
from auto_refunds.file_lines import (
    NOT_BLANK,
    InputFileError,
    insertion_order,
    lines_query,
    physical_lines_query,
    read_file,
)
from auto_refunds.fingerprints import Fingerprint, Reading
from auto_refunds.layout import (
    CLIENT_RULES_HEADER,
    CREDITS_HEADER,
    PAYMENTS_HEADER,
    TRANSACTIONS_HEADER,
)
from auto_refunds.pipe_feed import readable
from auto_refunds.warehouse import scalar

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Source:
    kind: str
    # None: registered only, its lines are read straight from the file by its staging model.
    table: str | None
    header: tuple[str, ...]
    dated: bool = True
    # Read straight from its file by its staging model, never stored as lines: that model masks
    # each field as it reads it (and checks the card fields first, naming the field), so its
    # lines are read as they are. Masking whole lines costs a regular expression over every
    # line, and the extracts are the bulk of the data.
    masked_by_staging: bool = False
    # A last column a file may have or not (CONTRACT 2): its header is then ``header`` with it.
    optional_last: str | None = None

    def landed_line(self, raw_line: str = "raw_line") -> str:
        """SQL of a line as it is landed: card numbers masked in every field but the identifiers
        (CONTRACT 7), or the line as it is when its staging model masks it. Needs ``masking`` on
        the connection."""
        if self.masked_by_staging:
            return raw_line
        return masked_line_sql(raw_line, self.header)


CREDITS = Source("credits", "landing.imagineone__credits", CREDITS_HEADER)
CLIENT_RULES = Source(
    "client_rules",
    "landing.imagineone__client_rules",
    CLIENT_RULES_HEADER,
    dated=False,
    optional_last="refund_deadline_days",
)
TRANSACTIONS = Source("transactions", None, TRANSACTIONS_HEADER, masked_by_staging=True)
PAYMENTS = Source("payments", "landing.imaginepay__payments", PAYMENTS_HEADER)
SOURCES = {source.kind: source for source in (CREDITS, CLIENT_RULES, TRANSACTIONS, PAYMENTS)}


@dataclass(frozen=True)
class Landed:
    source_file: str
    data_lines: int
    reloaded: bool


def check_header(
    path: Path, expected: tuple[str, ...], optional_last: str | None = None
) -> tuple[str, ...]:
    """The file's header: ``expected``, or ``expected`` and ``optional_last`` when that is given;
    any other fails naming the file."""
    if not path.is_file():
        raise InputFileError(f"{path}: file not found")
    try:
        # Only the first line is decoded: a later line that is not UTF-8 is quarantined.
        with open(path, "rb") as handle:
            first = handle.readline().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"{path}: cannot be read: {exc}") from exc
    try:
        found = tuple(field.strip() for field in next(csv.reader([first]), []))
    except csv.Error:
        # A bare carriage return (a file with old Mac line ends): no header the contract's.
        found = None
    if found == expected or (optional_last and found == (*expected, optional_last)):
        return found
    optionally = f" (then {optional_last!r}, optionally)" if optional_last else ""
    raise InputFileError(
        f"{path} line 1: wrong header: expected {','.join(expected)!r}{optionally}, "
        # A file sent without its header starts with a data line (CONTRACT 7: masked). Up
        # to its first line break of any kind: a file with bare CR line ends is one line.
        f"found {card_numbers.mask((first.splitlines() or [''])[0])!r}"
    )


def land(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    path: Path,
    file_date: dt.date | None,
    known_print: Fingerprint | None = None,
) -> Landed:
    """Register ``path`` and copy its lines into ``source.table``, unless the same content is
    there already (a source without a table is registered only).

    ``known_print`` is the file's fingerprint when the caller has read it already. Runs inside
    the caller's transaction: a failure leaves the warehouse as it was.
    """
    # A file with the source's optional last column is landed and masked at its own width.
    source = replace(source, header=check_header(path, source.header, source.optional_last))
    printed = known_print or fingerprints.fingerprint(path)
    digest = printed.sha256
    name = path.name
    known = con.execute(
        "select sha256, data_lines, plain_lines, mixed_line_ends from landing.files "
        "where source_file = ?",
        [name],
    ).fetchone()
    if known is not None and known[0] == digest:
        if known[2] is None or known[3] is None:
            # Registered before its line ends were looked at: the typing reads it through the
            # pipe feed until they are known.
            con.execute(
                "update landing.files set plain_lines = ?, mixed_line_ends = ? "
                "where source_file = ?",
                [printed.plain_lines, printed.mixed_line_ends, name],
            )
        return Landed(name, known[1], reloaded=False)
    mixed = printed.reading is Reading.LINE_ENDS_MIXED

    if source.table is not None:
        con.execute(f"delete from {source.table} where source_file = ?", [name])
        date_column = ", file_date" if source.dated else ""
        date_value = ", ?::date" if source.dated else ""
        params = [name, file_date] if source.dated else [name]
        insert = f"insert into {source.table} (source_file{date_column}, line_number, raw_line)"
        if printed.quoted:
            # Records are joined across the line breaks of quoted fields before they are
            # masked, so that each is masked field by field like any other.
            with insertion_order(con), readable(path, printed.reading) as lines:
                read_file(
                    con,
                    path,
                    "create or replace temp table landing_lines as "
                    + lines_query(lines, "raw_line", mixed),
                )
            join_quoted_line_breaks(con, "landing_lines", len(source.header))
            with masking(con):
                con.execute(
                    f"{insert} select ?{date_value}, line_number, {source.landed_line()} "
                    "from landing_lines",
                    params,
                )
            con.execute("drop table landing_lines")
        else:
            with insertion_order(con), masking(con), readable(path, printed.reading) as lines:
                read_file(
                    con,
                    path,
                    f"{insert} select ?{date_value}, line_number, raw_line "
                    f"from ({lines_query(lines, source.landed_line(), mixed)})",
                    params,
                )
        lines = scalar(con, f"select count(*) from {source.table} where source_file = ?", [name])
    else:
        # The data lines of lines_query, counted without numbering them: every line that is not
        # blank, less the header (checked above, so not blank). It also fails an unreadable file.
        with readable(path, printed.reading) as physical:
            lines = read_file(
                con,
                path,
                f"select count(*) - 1 from ({physical_lines_query(physical, mixed)}) "
                f"where {NOT_BLANK}",
            ).fetchone()[0]
    crash_point("mid_load")
    con.execute(
        """
        insert or replace into landing.files
            (
                source_file, file_kind, file_date, sha256, data_lines, valid_utf8, plain_lines,
                mixed_line_ends, header_fields
            )
        values (?, ?, ?, ?, ?, ?, ?, ?, ?)
        """,
        [
            name,
            source.kind,
            file_date,
            digest,
            lines,
            printed.valid_utf8,
            printed.plain_lines,
            printed.mixed_line_ends,
            len(source.header),
        ],
    )
    log.info("Landed %s: %d data lines (sha256 %s)", path, lines, digest[:12])
    return Landed(name, lines, reloaded=True)
