"""The operator's self-check: ``python -m auto_refunds.cli scan-card-numbers`` (CONTRACT 7).

Looks for card numbers wherever the product writes: every column of every table of every
schema of the warehouse (opened read-only), every file under the data root except the input
folders ``landing/`` and ``inbox/``, and the task logs. Prints each place it finds one, with
the value masked, and exits 1 on any finding, 0 when there is none, 2 when it could not look.

Identifier columns are skipped, as CONTRACT 7 keeps them as they are (a processor's id may be
a long number that happens to pass Luhn): columns whose name ends in ``_id``, and the columns
``merchant_reference`` and ``source_file``. Everything else is cast to text and checked with
the warehouse's own ``has_card_number`` macro (include/sql/warehouse/card_numbers.sql). The
lines of the landing tables keep their identifier fields too: a line found there is split
with Python's own CSV reader (not the warehouse's parser) and only its other fields count; so
are the lines of a CSV file under the data root, by its header. A Parquet file (the worklist's
snapshots) is read as a table.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from auto_refunds import card_numbers
from auto_refunds.layout import is_identifier
from auto_refunds.settings import Settings

if TYPE_CHECKING:
    from auto_refunds.landing import Source

ID_COLUMNS = ("merchant_reference", "source_file")
# exchange/imaginepay_payments is ImaginePay's outbound location on the embedded default: its
# payment files are inputs, as in inbox/.
INPUT_FOLDERS = ("landing", "inbox", "exchange/imaginepay_payments")
# Scanned as tables; the spill folder only holds a running query's temporary data.
WAREHOUSE_FILES = (".duckdb", ".duckdb.wal", ".duckdb.lock")
SHOWN_PER_PLACE = 20
SCAN_HELP = f"""\
Scan the warehouse (every column of every table, read-only), every file under the data root
except {", ".join(f + "/" for f in INPUT_FOLDERS)}, and the task logs ($AIRFLOW_HOME/logs, or
AIRFLOW__LOGGING__BASE_LOG_FOLDER, and any --logs folder) for card numbers. Prints where each
is, masked; exits 1 if any is found, 0 if none, 2 if the warehouse cannot be opened.
Identifier columns are not scanned (CONTRACT 7 keeps ids as they are): columns named *_id,
{", ".join(ID_COLUMNS)}."""


@dataclass(frozen=True)
class Finding:
    place: str
    """``schema.table.column`` or a file path."""
    where: str
    """The row key (``source_file:line_number``, an id or the rowid) or the line number."""
    masked: str


def is_id_column(name: str) -> bool:
    return is_identifier(name) or name.lower() in ID_COLUMNS


def _record_holds_card_number(
    line: str, header: Sequence[str], kept: Callable[[str], bool]
) -> bool:
    """Whether a CSV line holds a card number outside the fields ``kept`` keeps as they are.
    A line that is not one record of the header's width counts whole."""
    fields = next(csv.reader([line]), [])
    if len(fields) != len(header):
        return card_numbers.contains(line)
    return any(
        card_numbers.contains(value)
        for field, value in zip(header, fields, strict=True)
        if not kept(field)
    )


def _landed_line_holds_card_number(source: Source, line: str) -> bool:
    """Whether a landed line holds a card number outside the fields landing keeps as they are.
    A line the pipe feed marked was landed masked but for its first field, its id."""
    from auto_refunds.pipe_feed import is_marked

    if is_marked(line):
        return card_numbers.contains(line.partition(",")[2])
    return _record_holds_card_number(line, source.header, is_identifier)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _row_key(columns: list[str], row_number: str) -> str:
    if "source_file" in columns and "line_number" in columns:
        return "source_file || ':' || line_number"
    ids = [name for name in columns if name.lower().endswith("_id")]
    if ids:
        return f"'{ids[0]}=' || {_quoted(ids[0])}"
    return f"'row=' || {row_number}"


def _scan_relation(
    con,
    relation: str,
    place: str,
    source: Source | None = None,
    row_number: str = "rowid",
) -> Iterator[Finding]:
    """Every value of ``relation`` (a table, or a file read by DuckDB) holding a card number,
    but in its id columns; in the landed lines of ``source``, but in their id fields."""
    columns = [row[0] for row in con.execute(f"describe select * from {relation}").fetchall()]
    scanned = [name for name in columns if not is_id_column(name) and name != row_number]
    if not scanned:
        return
    values = [f"{_quoted(name)}::varchar" for name in scanned]
    rows = con.execute(
        f"select {_row_key(columns, row_number)}, {', '.join(values)} from {relation} "
        f"where {' or '.join(f'has_card_number({value})' for value in values)}"
    ).fetchall()
    for key, *row in rows:
        for name, value in zip(scanned, row, strict=True):
            if value is None or not card_numbers.contains(value):
                continue
            if (
                source is None
                or name != "raw_line"
                or (_landed_line_holds_card_number(source, value))
            ):
                where = card_numbers.mask(str(key))
                yield Finding(f"{place}.{name}", where, card_numbers.mask(value))


def scan_warehouse(path: Path, sql_dir: Path) -> Iterator[Finding]:
    import duckdb

    from auto_refunds.landing import SOURCES

    landed = {source.table: source for source in SOURCES.values() if source.table}
    con = duckdb.connect(str(path), read_only=True)
    try:
        card_numbers.register(con, sql_dir)
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_type = 'BASE TABLE' and table_catalog = current_database() "
            "order by all"
        ).fetchall()
        for schema, table in tables:
            yield from _scan_relation(
                con,
                f"{_quoted(schema)}.{_quoted(table)}",
                f"{schema}.{table}",
                landed.get(f"{schema}.{table}"),
            )
    finally:
        con.close()


def scan_parquet(path: Path, sql_dir: Path) -> Iterator[Finding]:
    """A Parquet file (the worklist's snapshots) is read as the table it holds: its bytes are
    compressed, so a scan of its lines would see nothing."""
    import duckdb

    con = duckdb.connect()
    try:
        card_numbers.register(con, sql_dir)
        literal = "'" + str(path).replace("'", "''") + "'"
        relation = f"read_parquet({literal}, file_row_number = true)"
        yield from _scan_relation(con, relation, str(path), row_number="file_row_number")
    finally:
        con.close()


def _files(root: Path, skipped: Iterable[Path]) -> Iterator[Path]:
    skipped = {path.resolve() for path in skipped}
    for folder, folders, files in os.walk(root):
        here = Path(folder)
        folders[:] = sorted(name for name in folders if (here / name).resolve() not in skipped)
        for name in sorted(files):
            if not name.endswith(WAREHOUSE_FILES):
                yield here / name


def scan_file(path: Path) -> Iterator[Finding]:
    """Every line holding a card number. In a CSV file (the refund and postings files) the
    identifier columns its header names are kept as they are, so only the other fields count,
    on the lines that are one record of the header's width."""
    header: list[str] = []
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            text = line.decode("utf-8", errors="replace").rstrip("\r\n")
            if number == 1 and path.suffix == ".csv":
                header = next(csv.reader([text]), [])
            if not card_numbers.contains(text):
                continue
            if number == 1 or not header or (_record_holds_card_number(text, header, is_id_column)):
                yield Finding(str(path), str(number), card_numbers.mask(text))


def log_folders(extra: Iterable[Path] = ()) -> list[Path]:
    """Airflow's task log folder (if Airflow is set up here) and any folder given."""
    folders = list(extra)
    base = os.environ.get("AIRFLOW__LOGGING__BASE_LOG_FOLDER")
    if not base and os.environ.get("AIRFLOW_HOME"):
        base = str(Path(os.environ["AIRFLOW_HOME"]) / "logs")
    if base:
        folders.append(Path(base))
    return folders


def scan(settings: Settings, logs: Iterable[Path] = ()) -> Iterator[Finding]:
    root = settings.data_dir
    warehouse = settings.layout.warehouse
    if warehouse.exists():
        yield from scan_warehouse(warehouse, settings.sql_dir)
    inputs = [root / name for name in INPUT_FOLDERS]
    seen: set[Path] = set()
    for folder in [root, *log_folders(logs)]:
        if not folder.is_dir():
            continue
        # The data root's own logs (make run's) are in its walk already.
        for path in _files(folder, inputs if folder == root else ()):
            if path.resolve() not in seen:
                seen.add(path.resolve())
                if path.suffix == ".parquet":
                    yield from scan_parquet(path, settings.sql_dir)
                else:
                    yield from scan_file(path)


def run(settings: Settings, logs: Iterable[Path] = ()) -> int:
    """Prints every finding (at most SHOWN_PER_PLACE per place); the exit code."""
    import duckdb

    shown: dict[str, int] = {}
    try:
        for finding in scan(settings, logs):
            shown[finding.place] = shown.get(finding.place, 0) + 1
            if shown[finding.place] <= SHOWN_PER_PLACE:
                print(f"{finding.place} [{finding.where}]: {finding.masked}")
    except duckdb.Error as error:
        print(f"cannot scan the warehouse {settings.layout.warehouse}: {error}")
        return 2
    for place, count in shown.items():
        if count > SHOWN_PER_PLACE:
            print(f"{place}: {count - SHOWN_PER_PLACE} more")
    total = sum(shown.values())
    print(f"{total} card number(s) found in {len(shown)} place(s)" if total else "no card number")
    return 1 if total else 0
