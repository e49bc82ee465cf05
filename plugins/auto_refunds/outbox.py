"""Files the pipeline sends out: written whole or not at all, and never silently changed.

A file is first written to a hidden candidate beside its final name (flushed to disk), then
renamed into place; the folder is flushed after the rename. Once a file is published, a rerun
that would write different bytes fails and names the rows that differ.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from auto_refunds.faults import crash_point


class PublishedFileConflict(RuntimeError):
    pass


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, content: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def write_candidate(con: duckdb.DuckDBPyConnection, query: str, path: Path) -> Path:
    """Write a query's rows in the contract's CSV dialect to a hidden file beside ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    candidate = path.with_name(f".{path.name}.candidate")
    target = str(candidate).replace("'", "''")
    con.execute(
        f"copy ({query}) to '{target}' "
        "(format csv, header true, delimiter ',', quote '\"', escape '\"', new_line '\\n')"
    )
    with open(candidate, "rb+") as handle:
        os.fsync(handle.fileno())
    crash_point("mid_file_write")
    return candidate


def promote(candidate: Path, path: Path) -> None:
    os.replace(candidate, path)
    fsync_dir(path.parent)


def read_as_text(con: duckdb.DuckDBPyConnection, path: Path, name: str, header: tuple) -> None:
    """Load one of our CSV files into the temp table ``name``, every column as text."""
    columns = ", ".join(f"'{column}': 'VARCHAR'" for column in header)
    con.execute(
        f"""
        create or replace temp table {name} as
        select * from read_csv(?, header = true, columns = {{{columns}}}, auto_detect = false,
                               delim = ',', quote = '"', escape = '"')
        """,
        [str(path)],
    )


def describe_difference(
    con: duckdb.DuckDBPyConnection, published: Path, candidate: Path, header: tuple, key: str
) -> str:
    """The rows, by ``key``, that the candidate adds, removes and changes against the published."""
    read_as_text(con, published, "published_file", header)
    read_as_text(con, candidate, "rerun_file", header)
    added, removed, changed = (
        [row[0] for row in con.execute(sql).fetchall()]
        for sql in (
            f"select {key} from rerun_file anti join published_file using ({key}) order by 1",
            f"select {key} from published_file anti join rerun_file using ({key}) order by 1",
            f"select {key} from rerun_file inner join published_file using ({key}) "
            "where rerun_file is distinct from published_file order by 1",
        )
    )
    con.execute("drop table published_file; drop table rerun_file")
    return "; ".join(
        f"{len(keys)} row(s) {verb}"
        + (f" ({', '.join(keys[:5])}{', ...' if len(keys) > 5 else ''})" if keys else "")
        for verb, keys in (("added", added), ("removed", removed), ("changed", changed))
    )


def refuse_change(
    con: duckdb.DuckDBPyConnection,
    published: Path,
    candidate: Path,
    header: tuple,
    key: str,
    context: str = "",
) -> None:
    """Drop the candidate and fail, naming the rows that would have changed the published file."""
    difference = describe_difference(con, published, candidate, header, key)
    candidate.unlink()
    raise PublishedFileConflict(
        f"{published} was already published and this run would change it: {difference}. "
        f"The published file is left as it was{context}."
    )
