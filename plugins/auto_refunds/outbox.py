"""Files the pipeline sends out: written whole or not at all, private, and never silently changed.

One mechanism for every file we publish (the refund file and the postings file):

1. ``stage`` writes the rows to a hidden candidate beside the final name, created exclusively and
   never through a symbolic link, flushed to disk;
2. if the file is already published, the same bytes mean there is nothing to do, and other bytes
   fail naming the rows that differ (a file sent is never altered);
3. ``Staged.promote`` renames the candidate into place and flushes the folder.

Everything written under the data root grants nothing to others (CONTRACT 7):
``layout.private_umask``.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

import duckdb

from auto_refunds.errors import NeedsAPerson
from auto_refunds.faults import crash_point
from auto_refunds.fingerprints import sha256_of
from auto_refunds.layout import make_folder

_EXCLUSIVE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW


class PublishedFileConflict(NeedsAPerson):
    action = (
        "a published file is never changed: if the new inputs are right, correct the difference "
        "with ImaginePay/ImagineOne by hand; otherwise restore the inputs of that date"
    )


class UnsafePath(NeedsAPerson):
    action = "remove the link or file named above (and find who planted it), then clear the task"


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _refuse_link(path: Path) -> None:
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise UnsafePath(f"{path}: is a symbolic link or not a regular file; nothing was published")


def _create_exclusive(path: Path) -> int:
    """A new private file at ``path``: fails on a link, replaces a leftover regular file."""
    _refuse_link(path)
    path.unlink(missing_ok=True)
    try:
        return os.open(path, _EXCLUSIVE, 0o640)
    except FileExistsError as exc:
        raise UnsafePath(f"{path}: appeared while it was being created") from exc


def atomic_write_bytes(path: Path, content: bytes) -> None:
    make_folder(path.parent)
    _refuse_link(path)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = _create_exclusive(tmp)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _copy_to(con: duckdb.DuckDBPyConnection, query: str, target: Path) -> None:
    """Write a query's rows in the contract's CSV dialect into a new file of ours: DuckDB opens
    it by name, so the name is created first, exclusively, and DuckDB writes it in place."""
    os.close(_create_exclusive(target))
    created = os.lstat(target)
    quoted = str(target).replace("'", "''")
    con.execute(
        f"copy ({query}) to '{quoted}' "
        "(format csv, header true, delimiter ',', quote '\"', escape '\"', new_line '\\n', "
        "use_tmp_file false)"
    )
    written = os.lstat(target)
    if not stat.S_ISREG(written.st_mode) or written.st_ino != created.st_ino:
        raise UnsafePath(f"{target}: was replaced while it was written; nothing was published")
    with open(target, "rb+") as handle:
        os.fsync(handle.fileno())


@dataclass(frozen=True)
class Staged:
    """A file ready to publish: ``candidate`` is None when the same bytes are published already."""

    path: Path
    candidate: Path | None
    sha256: str

    def promote(self) -> bool:
        """Rename the candidate into place; returns whether anything was written."""
        if self.candidate is None:
            return False
        _refuse_link(self.path)
        os.replace(self.candidate, self.path)
        fsync_dir(self.path.parent)
        return True

    def discard(self) -> None:
        if self.candidate is not None:
            self.candidate.unlink(missing_ok=True)


def stage(
    con: duckdb.DuckDBPyConnection,
    query: str,
    path: Path,
    header: tuple[str, ...],
    key: str,
    published: bool,
    context: str = "",
) -> Staged:
    """Write ``query``'s rows as the candidate of ``path``; once ``published``, refuse to change
    it."""
    make_folder(path.parent)
    candidate = path.with_name(f".{path.name}.candidate")
    _copy_to(con, query, candidate)
    crash_point("mid_file_write")
    digest = sha256_of(candidate)
    if published:
        _refuse_link(path)
        if sha256_of(path) == digest:
            candidate.unlink()
            return Staged(path, None, digest)
        refuse_change(con, path, candidate, header, key, context)
    return Staged(path, candidate, digest)


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
        f"The published file is left as it was{context}"
    )
