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
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import inspect
import logging
import os
import re
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from auto_refunds import card_numbers
from auto_refunds.errors import NeedsAPerson
from auto_refunds.faults import crash_point
from auto_refunds.layout import (
    CLIENT_RULES_HEADER,
    CREDITS_HEADER,
    PAYMENTS_HEADER,
    TRANSACTIONS_HEADER,
    is_identifier,
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
    # Read straight from its file by its staging model, never stored as lines: that model masks
    # each field as it reads it (and checks the card fields first, naming the field), so its
    # lines are read as they are. Masking whole lines costs a regular expression over every
    # line, and the extracts are the bulk of the data.
    masked_by_staging: bool = False

    def landed_line(self, raw_line: str = "raw_line") -> str:
        """SQL of a line as it is landed: card numbers masked in every field but the identifiers
        (CONTRACT 7), or the line as it is when its staging model masks it. Needs ``masking`` on
        the connection."""
        if self.masked_by_staging:
            return raw_line
        kept = [at for at, field in enumerate(self.header, 1) if is_identifier(field)]
        return (
            f"case when regexp_matches({raw_line}, '{card_numbers.MAYBE_A_CARD_NUMBER}') "
            f"then {_MASK_FUNCTION}({raw_line}, {len(self.header)}, {kept}) "
            f"else {raw_line} end"
        )


CREDITS = Source("credits", "landing.imagineone__credits", CREDITS_HEADER)
CLIENT_RULES = Source(
    "client_rules", "landing.imagineone__client_rules", CLIENT_RULES_HEADER, dated=False
)
TRANSACTIONS = Source("transactions", None, TRANSACTIONS_HEADER, masked_by_staging=True)
PAYMENTS = Source("payments", "landing.imaginepay__payments", PAYMENTS_HEADER)
SOURCES = {source.kind: source for source in (CREDITS, CLIENT_RULES, TRANSACTIONS, PAYMENTS)}


@dataclass(frozen=True)
class Landed:
    source_file: str
    data_lines: int
    reloaded: bool


# Nearly every line holds no 13 digits in a row and costs only card_numbers.MAYBE_A_CARD_NUMBER.
_MASK_FUNCTION = "mask_card_numbers_in_fields"
# The RFC 4180 line and field of csv_fields (include/sql/warehouse/macros.sql).
_CSV_LINE = re.compile(r'("(?:[^"]|"")*"|[^,"]*)(,("(?:[^"]|"")*"|[^,"]*))*')
_CSV_FIELD = re.compile(r',("(?:[^"]|"")*"|[^,"]*)')


def _fields(line: str) -> list[str] | None:
    """The fields of a line as staging reads them (csv_fields); None when the quoting is broken."""
    if '"' not in line:
        return [field.strip(" ") for field in line.split(",")]
    if not _CSV_LINE.fullmatch(line):
        return None
    return [
        (field[1:-1].replace('""', '"') if field.startswith('"') else field).strip(" ")
        for field in _CSV_FIELD.findall("," + line)
    ]


def _quoted(field: str) -> str:
    must = any(char in field for char in ',"\r\n')
    return '"' + field.replace('"', '""') + '"' if must else field


def mask_fields(line: str | None, width: int, kept: list[int]) -> str | None:
    """``line`` with the card numbers of its fields masked, but those at the 1-based positions
    ``kept``, which stay as they are so that staging types the real ids. A line that does not
    split into ``width`` fields, or is not UTF-8, is quarantined whatever it holds: it is masked
    whole. A line rewritten loses its fields' surrounding blanks and the quotes they did not
    need, which staging ignores anyway."""
    if line is None:
        return None
    if _not_utf8(line):
        # Its first field is its id, kept so that it still counts when repeated (CONTRACT 2);
        # the rest was masked before its bytes were escaped (_escaped), and is masked again.
        first, comma, rest = line.partition(",")
        return first + comma + card_numbers.mask(rest) if comma else card_numbers.mask(line)
    fields = _fields(line)
    if fields is None or len(fields) != width:
        return card_numbers.mask(line)
    masked = [
        value if at in kept else card_numbers.mask(value) for at, value in enumerate(fields, 1)
    ]
    return line if masked == fields else ",".join(_quoted(value) for value in masked)


def landing_version(kind: str) -> str:
    """What a change of decides how the lines of ``kind`` are landed, for the typing's version."""
    # The whole module: the landed lines depend on its functions (reading, joining records,
    # masking) and on its constants, which no function's source holds.
    return (
        SOURCES[kind].landed_line()
        + inspect.getsource(sys.modules[__name__])
        + inspect.getsource(card_numbers)
    )


@contextmanager
def masking(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """``Source.landed_line`` can run on ``con`` meanwhile. Only the lines that may hold a card
    number call into Python."""
    con.create_function(
        _MASK_FUNCTION, mask_fields, ["VARCHAR", "INTEGER", "INTEGER[]"], "VARCHAR",
        side_effects=False,
    )
    yield
    # Not after a failure: the statement aborted the caller's transaction (see insertion_order).
    con.remove_function(_MASK_FUNCTION)


# A line that is not valid UTF-8 reaches staging as this mark and the line, its undecodable bytes
# escaped (\xff): staging quarantines it (CONTRACT 2) and the other lines go on.
NOT_UTF8_MARK = "\x01"


@dataclass(frozen=True)
class Fingerprint:
    sha256: str
    valid_utf8: bool
    # Whether the file holds a double quote anywhere: only then can a quoted field hold a line
    # break. Not kept with the file's registration: unknown is taken as quoted.
    quoted: bool = True


def fingerprint(path: Path) -> Fingerprint:
    """The file's SHA-256, whether all of it is UTF-8 and whether it holds a quote, in one read.
    ASCII blocks (nearly all) are not decoded."""
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    valid = True
    quoted = False
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
            quoted = quoted or b'"' in block
            if valid and not (block.isascii() and not decoder.getstate()[0]):
                try:
                    decoder.decode(block)
                except UnicodeDecodeError:
                    valid = False
    if valid:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            valid = False
    return Fingerprint(digest.hexdigest(), valid, quoted)


def sha256_of(path: Path) -> str:
    return fingerprint(path).sha256


@contextmanager
def readable(path: Path, valid_utf8: bool) -> Iterator[Path]:
    """The file DuckDB reads for ``path``: the file itself; or, when some of its lines are not
    UTF-8 (DuckDB refuses the whole file then), a named pipe fed line for line, in which each
    such line is ``NOT_UTF8_MARK`` and its text with the undecodable bytes escaped.

    A pipe rather than a copy: the file may hold card numbers (a card_token that staging
    quarantines), and no file the product writes may (CONTRACT 7). DuckDB reads the pipe with
    the same reader as any file, so its lines split exactly as theirs do. Read it once, to its
    end, inside the context.
    """
    if valid_utf8:
        yield path
        return
    folder = Path(tempfile.mkdtemp(prefix="auto-refunds-not-utf8-"))
    try:
        pipe = folder / path.name
        os.mkfifo(pipe, 0o600)
        feed = _PipeFeed(path, pipe)
        try:
            yield pipe
            feed.finished()
        finally:
            feed.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class _PipeFeed:
    """Writes ``path``'s lines, escaped where they are not UTF-8, into the named pipe ``pipe``
    from a thread, while DuckDB reads the pipe."""

    def __init__(self, path: Path, pipe: Path) -> None:
        self.path, self.pipe = path, pipe
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._feed, name="not-utf8-feed", daemon=True)
        self.thread.start()

    def _feed(self) -> None:
        try:
            # The pipe first, always: DuckDB waits in its open() until a writer opens it. This
            # open waits for DuckDB's, or for stop()'s.
            target = open(self.pipe, "wb")  # noqa: SIM115 (closed by the with below)
        except BaseException as exc:
            self.error = exc
            return
        try:
            with target, open(self.path, "rb") as source:
                for line in source:
                    try:
                        line.decode("utf-8")
                    except UnicodeDecodeError:
                        text = line.rstrip(b"\r\n")
                        line = (NOT_UTF8_MARK + _escaped(text)).encode() + line[len(text) :]
                    target.write(line)
        except BaseException as exc:
            self.error = exc

    def finished(self) -> None:
        """After DuckDB's read succeeded: it read every line only if the feed wrote them all.
        A feed cut short (the file unreadable half way) would have looked like a shorter file."""
        self.thread.join(_FEED_JOIN_SECONDS)
        if self.thread.is_alive() or self.error is not None:
            reason = self.error or "DuckDB stopped reading before its end"
            raise InputFileError(f"{self.path}: cannot be read: {reason}")

    def stop(self) -> None:
        """End the feed. One whose reader failed, or never opened the pipe, waits in its open()
        or a write(): opening the read end ends the open(), reading what is written lets the
        write() return, and once no reader holds the pipe the next write fails."""
        while self.thread.is_alive():
            drain = os.open(self.pipe, os.O_RDONLY | os.O_NONBLOCK)
            try:
                while True:
                    try:
                        if not os.read(drain, 1 << 16):
                            break
                    except BlockingIOError:
                        break
            finally:
                os.close(drain)
            self.thread.join(0.05)


# The feed has written its last line once DuckDB has read it; it only has to close the pipe.
_FEED_JOIN_SECONDS = 5.0


def _escaped(text: bytes) -> str:
    """``text`` decoded, each undecodable byte escaped (``\\xff``) and the card numbers of the
    decoded runs between them masked (CONTRACT 7), but for its first field, its id, when that
    decodes: kept as it is, so that a line repeating another's id still counts (CONTRACT 2;
    staging masks the raw line it quarantines, ids included). A byte that does not decode is no
    letter or digit, so it ends a card number; once escaped, its letters (``xff``) would join the
    digits that follow into one word that hides the number."""
    first, comma, rest = text.partition(b",")
    if comma:
        try:
            return first.decode("utf-8") + "," + _escaped_and_masked(rest)
        except UnicodeDecodeError:
            pass
    return _escaped_and_masked(text)


def _escaped_and_masked(text: bytes) -> str:
    pieces = []
    while True:
        try:
            pieces.append(card_numbers.mask(text.decode("utf-8")))
            return "".join(pieces)
        except UnicodeDecodeError as exc:
            pieces.append(card_numbers.mask(text[: exc.start].decode("utf-8")))
            pieces.append(text[exc.start : exc.end].decode("utf-8", "backslashreplace"))
            text = text[exc.end :]


def check_header(path: Path, expected: tuple[str, ...]) -> None:
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
    if found != expected:
        raise InputFileError(
            f"{path} line 1: wrong header: expected {','.join(expected)!r}, "
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
    check_header(path, source.header)
    printed = known_print or fingerprint(path)
    digest = printed.sha256
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
        insert = f"insert into {source.table} (source_file{date_column}, line_number, raw_line)"
        if printed.quoted:
            # Records are joined across the line breaks of quoted fields before they are
            # masked, so that each is masked field by field like any other.
            with insertion_order(con), readable(path, printed.valid_utf8) as lines:
                read_file(
                    con,
                    path,
                    "create or replace temp table landing_lines as "
                    + lines_query(lines, line="raw_line"),
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
            with insertion_order(con), masking(con), readable(path, printed.valid_utf8) as lines:
                read_file(
                    con,
                    path,
                    f"{insert} select ?{date_value}, line_number, raw_line "
                    f"from ({lines_query(lines, source.landed_line())})",
                    params,
                )
        lines = scalar(con, f"select count(*) from {source.table} where source_file = ?", [name])
    else:
        # The data lines of lines_query, counted without numbering them: every line that is not
        # blank, less the header (checked above, so not blank). It also fails an unreadable file.
        with readable(path, printed.valid_utf8) as physical:
            lines = read_file(
                con,
                path,
                f"select count(*) - 1 from ({_physical_lines(physical)}) where {_NOT_BLANK}",
            ).fetchone()[0]
    crash_point("mid_load")
    con.execute(
        """
        insert or replace into landing.files
            (source_file, file_kind, file_date, sha256, data_lines, valid_utf8)
        values (?, ?, ?, ?, ?, ?)
        """,
        [name, source.kind, file_date, digest, lines, printed.valid_utf8],
    )
    log.info("Landed %s: %d data lines (sha256 %s)", path, lines, digest[:12])
    return Landed(name, lines, reloaded=True)


# A line of blanks only is blank. ltrim decides it as well as trim, and in DuckDB 2.0 it is much
# cheaper than trim (docs/design.md#performance has the figures).
_NOT_BLANK = "ltrim(raw_line) <> ''"


# DuckDB refuses a whole file for one line longer than its max_line_size (2 MB by default): a
# line up to this length is read, so that staging quarantines it and the other lines go on
# (CONTRACT 2); a longer one fails the file, naming it. The buffer stays DuckDB's default size.
_MAX_LINE_BYTES = 16 << 20
_BUFFER_BYTES = 32 << 20


def _physical_lines(path: Path) -> str:
    # NUL as the delimiter and no quoting: every physical line arrives whole, in order.
    return f"""
        select raw_line
        from read_csv(
            {sql_literal(str(path))}, header = false, columns = {{'raw_line': 'VARCHAR'}},
            delim = '\\0', quote = '', escape = '', auto_detect = false,
            max_line_size = {_MAX_LINE_BYTES}, buffer_size = {_BUFFER_BYTES}
        )
    """


def lines_query(path: Path, line: str) -> str:
    """The data lines of ``path`` as (line_number, raw_line), header and blank lines left out,
    each as the SQL ``line`` makes it of ``raw_line`` (``Source.landed_line``).

    The line numbers come from scan order: run it inside ``insertion_order``.
    """
    return f"""
        select line_number, {line} as raw_line
        from (
            select row_number() over () as line_number, raw_line
            from ({_physical_lines(path)})
        )
        where line_number > 1 and {_NOT_BLANK}
    """


# A quoted field holds at most this many line breaks: an unbalanced quote (a broken line) must not
# draw the lines after it into one record.
_MAX_LINES_A_RECORD = 20

_ODD_QUOTES = """(length(raw_line) - length(replace(raw_line, '"', ''))) % 2 = 1"""


def _not_utf8(line: str) -> bool:
    return line.startswith(NOT_UTF8_MARK)


def _is_record(line: str, width: int) -> bool:
    fields = _fields(line)
    return fields is not None and len(fields) == width


def join_quoted_line_breaks(
    con: duckdb.DuckDBPyConnection, table: str, width: int
) -> list[int]:
    """Join into one record the physical lines of ``table`` (line_number, raw_line) that a quoted
    field's line breaks split (RFC 4180 2.6); returns the line numbers of the records joined.

    A line leaves a quote open when it holds an odd number of quotes, and the next such line
    closes it. The lines from one to the other (at most ``_MAX_LINES_A_RECORD``) become one
    record, numbered by its first line and joined by LF, when that record reads as ``width``
    fields and no line between reads as a record of its own; otherwise the opening line is broken
    quoting on its own (staging quarantines it) and the lines after it stay as they are. A blank
    line inside the field is lost with the other blank lines.
    """
    odd = [
        row[0]
        for row in con.execute(
            f"select line_number from {table} where {_ODD_QUOTES} order by line_number"
        ).fetchall()
    ]
    # Every line that could belong to a record: from each odd line to the next, when close.
    wanted = sorted({
        number
        for first, last in zip(odd, odd[1:], strict=False)
        if last - first < _MAX_LINES_A_RECORD
        for number in range(first, last + 1)
    })
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
        # Blank lines were left out of the table: their numbers are missing.
        numbers = [n for n in range(first, last + 1) if n in text]
        lines = [text[n] for n in numbers]
        record = "\n".join(lines)
        # A line between that reads as a record of its own is one: two broken lines around it
        # must not swallow it.
        if (
            not any(_not_utf8(line) for line in lines)
            and _is_record(record, width)
            and not any(_is_record(line, width) for line in lines[1:-1])
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
