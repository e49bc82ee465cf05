"""Typing of accumulating extracts, one file at a time, kept until the file or the model changes.

ImaginePay extracts accumulate every day and are the bulk of the data: typing every extract up
to D again on every run would make each night cost the whole history. So a per-file model is
built here file by file: its SELECT reads one extract at a time from ``landing_file``, each
extract is typed once, and its rows are kept, keyed by the file, until its content or the
typing's version changes (``typing_version``: constants bumped on purpose, never a hash of the
code, so that editing a comment types nothing again). The model's supersede SQL then dates the
versions of its key that the extract superseded, so what is known at D is a filter (a view)
rather than a pass over every extract on every run (docs/design.md, "Landing and staging").

Nothing here knows which extract or key it types: the caller passes them.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from auto_refunds import fingerprints
from auto_refunds.faults import crash_point

if TYPE_CHECKING:
    import duckdb

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PerFileModel:
    """A model typed file by file into the kept table ``relation``."""

    relation: str
    # The landing.files kind it types.
    file_kind: str
    # The id a later file can bring a new version of; unique within one file.
    key: str
    # The model's SELECT over ``landing_file``.
    sql: str
    # Which typing made a file's rows (``typing_version.typing_version``), kept with each file
    # typed: a file typed by another version is typed again.
    version: str
    # Creates the temp table ``repeated_keys`` of the keys on more than one line of
    # ``landing_file``, which the SELECT reads. A line's key is its first field, whose hash
    # ``landing_file`` holds as ``id_hash`` (the macro line_id_hash).
    repeated_keys_sql: str
    # Dates superseded versions of the keys in the temp table ``touched_keys``.
    supersede_sql: str
    # Columns stored without compression; a change is a change of the version, so that every
    # file is stored alike.
    uncompressed: tuple[str, ...] = ()


def build_per_file(con: duckdb.DuckDBPyConnection, model: PerFileModel, folder: Path) -> int:
    """Type every registered file of the model's kind dated up to D, in ``folder``, that is not
    typed yet, or whose content or model changed since; return the model's rows for D.

    Each file is replaced in one transaction, and only after checking that its content is still
    the one registered at extract: the typed rows are always those of the registered file.
    """
    from auto_refunds.file_lines import InputFileError
    from auto_refunds.warehouse import transaction

    started = time.perf_counter()
    version = model.version
    if not _is_current(con, model, version):
        # No kept table yet, or typed by another version of the model: type every file again.
        # Safe to be killed here: the next run finds the table gone and starts over.
        with transaction(con):
            con.execute(f"drop table if exists {model.relation}")
            con.execute("delete from staging.typed_files where file_kind = ?", [model.file_kind])
    pending = con.execute(
        """
        select
            files.source_file,
            files.file_date,
            files.sha256,
            files.valid_utf8,
            files.plain_lines,
            files.mixed_line_ends
        from landing.files as files
        left join staging.typed_files as typed
            on files.source_file = typed.source_file
        where
            files.file_kind = $kind
            and files.file_date <= getvariable('as_of_date')
            and typed.sha256 is distinct from files.sha256
        order by files.file_date, files.source_file
        """,
        {"kind": model.file_kind},
    ).fetchall()
    for source_file, file_date, digest, *line_ends in pending:
        path = folder / source_file
        changed = InputFileError(
            f"{path}: changed or removed since it was registered; run the extract again"
        )
        if not path.is_file():
            raise changed
        with transaction(con):
            registered = (source_file, file_date, digest, fingerprints.reading_of(*line_ends))
            _type_file(con, model, path, registered, changed)
            crash_point("mid_model")
            con.execute(
                "insert or replace into staging.typed_files values (?, ?, ?, ?)",
                [source_file, model.file_kind, digest, version],
            )
            for temp in (
                "view landing_file",
                "table landing_lines",
                "table file_keys",
                "table repeated_keys",
            ):
                con.execute(f"drop {temp}")
        log.info("Typed %s into %s", source_file, model.relation)
    rows = con.execute(
        f"select count(*) from {model.relation} where file_date <= getvariable('as_of_date')"
    ).fetchone()[0]
    log.info(
        "Built %s: %d rows in %.2f s (%d file(s) typed in this run)",
        model.relation,
        rows,
        time.perf_counter() - started,
        len(pending),
    )
    return rows


def _type_file(
    con: duckdb.DuckDBPyConnection,
    model: PerFileModel,
    path: Path,
    registered: tuple[str, dt.date, str, fingerprints.Reading],
    changed: Exception,
) -> None:
    """Replace the kept rows of one registered file (name, date, sha256, how DuckDB reads its
    lines) by its typed lines, inside the caller's transaction."""
    from auto_refunds.csv_records import join_quoted_line_breaks
    from auto_refunds.field_masking import masking
    from auto_refunds.file_lines import insertion_order, lines_query, read_file, sql_literal
    from auto_refunds.landing import SOURCES
    from auto_refunds.pipe_feed import readable

    source = SOURCES[model.file_kind]
    source_file, file_date, digest, reading = registered
    with ThreadPoolExecutor(1) as hasher:
        # Hashed again while DuckDB numbers the lines, which leaves a core free: the file is
        # typed only if it is still the content registered.
        rehashed = hasher.submit(fingerprints.fingerprint, path)
        with insertion_order(con), masking(con), readable(path, reading) as lines:
            # DuckDB's error may quote a line (CONTRACT 7: read_file masks it and names the file).
            # Each line's id hashed as it is numbered, while the line is at hand: read back
            # from the numbered lines, which spill at the largest size, it cost twice as much.
            read_file(
                con,
                path,
                "create or replace temp table landing_lines as "
                "select line_number, raw_line, line_id_hash(raw_line) as id_hash from ("
                + lines_query(
                    lines, source.landed_line(), reading is fingerprints.Reading.LINE_ENDS_MIXED
                )
                + ")",
            )
        printed = rehashed.result()
        if printed.sha256 != digest:
            raise changed
    if printed.quoted:
        joined = join_quoted_line_breaks(con, "landing_lines", len(source.header))
        # A record joined from lines has the id of its whole first field, which its first line
        # alone may not read as.
        if joined:
            con.execute(
                "update landing_lines set id_hash = line_id_hash(raw_line) "
                "where line_number in (select unnest(?::bigint[]))",
                [joined],
            )
    # The file's name and date are the same on every line: held once, not per line, so that
    # numbering the lines has less to spill.
    con.execute(
        f"""
        create or replace temp view landing_file as
        select
            {sql_literal(source_file)} as source_file,
            date '{file_date.isoformat()}' as file_date,
            line_number,
            raw_line,
            id_hash
        from landing_lines
        """
    )
    con.execute(model.repeated_keys_sql)
    if not table_exists(con, model.relation):
        _create_table(con, model)
    # The keys of the file's earlier content too: versions it superseded may be latest again.
    con.execute(
        f"create or replace temp table file_keys as "
        f"select {model.key} from {model.relation} where source_file = ?",
        [source_file],
    )
    con.execute(f"delete from {model.relation} where source_file = ?", [source_file])
    con.execute(f"insert into {model.relation} by name\n{model.sql}")
    _supersede(con, model, source_file)


def _create_table(con: duckdb.DuckDBPyConnection, model: PerFileModel) -> None:
    """The kept table, with the columns and types of the model's SELECT, those of
    ``model.uncompressed`` declared uncompressed (which a CREATE TABLE AS cannot say)."""
    columns = con.execute(f"describe\n{model.sql}").fetchall()
    missing = set(model.uncompressed) - {column[0] for column in columns}
    if missing:
        raise ValueError(f"{model.relation} has no column {', '.join(sorted(missing))}")
    declared = ", ".join(
        f'"{name}" {data_type}'
        + (" using compression uncompressed" if name in model.uncompressed else "")
        for name, data_type, *_ in columns
    )
    con.execute(f"create table {model.relation} ({declared})")


def _supersede(con: duckdb.DuckDBPyConnection, model: PerFileModel, source_file: str) -> None:
    """Date the versions of the keys the file just typed shares with other files.

    Only keys held by another file can have more than one version: with no other file typed
    (the first extract, the whole card history), there is nothing to date; an extract of new
    keys only costs a scan of the keys and no update.
    """
    key = model.key
    others = con.execute(
        f"select count(*) from (select 1 from {model.relation} where source_file <> ? limit 1)",
        [source_file],
    ).fetchone()[0]
    if not others:
        return
    con.execute(
        f"""
        create or replace temp table touched_keys as
        with file_keys_before_and_after as (
            select {key} from file_keys
            union all
            select {key} from {model.relation} where source_file = $file
        )
        select distinct {key} from {model.relation}
        where
            source_file <> $file
            and {key} in (select file_keys_before_and_after.{key} from file_keys_before_and_after)
        """,
        {"file": source_file},
    )
    if con.execute("select count(*) from touched_keys").fetchone()[0]:
        con.execute(model.supersede_sql)
    con.execute("drop table touched_keys")


def table_exists(con: duckdb.DuckDBPyConnection, relation: str) -> bool:
    schema, name = relation.split(".")
    return bool(
        con.execute(
            "select count(*) from duckdb_tables() where schema_name = ? and table_name = ?",
            [schema, name],
        ).fetchone()[0]
    )


def _is_current(con: duckdb.DuckDBPyConnection, model: PerFileModel, version: str) -> bool:
    """The kept table exists and every file in it was typed by this version of the model."""
    stale = con.execute(
        "select count(*) from staging.typed_files where file_kind = ? and model_version <> ?",
        [model.file_kind, version],
    ).fetchone()[0]
    return table_exists(con, model.relation) and not stale
