"""The refund request file for ImaginePay and its manifest (CONTRACT 4).

Atomic: each file is written to a hidden temporary name in the same folder, flushed to disk and
renamed. The manifest is renamed last and is the commit marker: a refund file without its
manifest is not published and is simply rewritten by the next run of its date.

Immutable once published: a rerun that produces the same bytes leaves the files untouched; a rerun
that would change them fails, names the difference, and leaves the published files as they were.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path

import duckdb

from auto_refunds.faults import crash_point
from auto_refunds.landing import sha256_of
from auto_refunds.layout import REFUNDS_HEADER, Layout

SOURCE_TABLE = "marts.tickler_true_refunds_due"


class PublishedFileConflict(RuntimeError):
    pass


@dataclass(frozen=True)
class Manifest:
    file_name: str
    as_of_date: str
    record_count: int
    total_amount: str
    sha256: str

    def to_bytes(self) -> bytes:
        return (json.dumps(asdict(self), indent=2) + "\n").encode()


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def atomic_write_bytes(path: Path, content: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def copy_query_to_csv(con: duckdb.DuckDBPyConnection, query: str, path: Path) -> None:
    """Write a query's rows to ``path`` in the contract's CSV dialect, atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    con.execute(
        f"copy ({query}) to '{str(tmp).replace(chr(39), chr(39) * 2)}' "
        "(format csv, header true, delimiter ',', quote '\"', escape '\"', new_line '\\n')"
    )
    _fsync_file(tmp)
    crash_point("mid_file_write")
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _read_refund_csv(con: duckdb.DuckDBPyConnection, path: Path, name: str) -> None:
    columns = ", ".join(f"'{column}': 'VARCHAR'" for column in REFUNDS_HEADER)
    con.execute(
        f"""
        create or replace temp table {name} as
        select * from read_csv(?, header = true, columns = {{{columns}}}, auto_detect = false,
                               delim = ',', quote = '"', escape = '"')
        """,
        [str(path)],
    )


def describe_difference(con: duckdb.DuckDBPyConnection, published: Path, new: Path) -> str:
    _read_refund_csv(con, published, "published_file")
    _read_refund_csv(con, new, "rerun_file")
    added, removed, changed = (
        [row[0] for row in con.execute(sql).fetchall()]
        for sql in (
            "select refund_id from rerun_file anti join published_file using (refund_id) "
            "order by 1",
            "select refund_id from published_file anti join rerun_file using (refund_id) "
            "order by 1",
            "select refund_id from rerun_file inner join published_file using (refund_id) "
            "where rerun_file is distinct from published_file order by 1",
        )
    )
    con.execute("drop table published_file; drop table rerun_file")
    parts = [
        f"{len(ids)} refund(s) {verb}"
        + (f" ({', '.join(ids[:5])}{', ...' if len(ids) > 5 else ''})" if ids else "")
        for verb, ids in (("added", added), ("removed", removed), ("changed", changed))
    ]
    return "; ".join(parts)


def publish_refund_file(
    con: duckdb.DuckDBPyConnection, layout: Layout, as_of: dt.date
) -> tuple[Manifest, bool]:
    """Write the refund file of ``as_of`` from the audited tickler; returns (manifest, written).

    ``written`` is False when the identical file was already published.
    """
    csv_path = layout.refunds(as_of)
    manifest_path = layout.refunds_manifest(as_of)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    candidate = csv_path.with_name(f".{csv_path.name}.candidate")
    copy_query_to_csv(
        con,
        f"select {', '.join(REFUNDS_HEADER)} from {SOURCE_TABLE} order by refund_id",
        candidate,
    )
    count, total = con.execute(
        f"select count(*), coalesce(sum(refund_amount), 0)::decimal(18, 2) from {SOURCE_TABLE}"
    ).fetchone()
    # What was written is what was audited: read it back before anything is published.
    written_count, written_total = con.execute(
        "select count(*), coalesce(sum(refund_amount::decimal(18, 2)), 0)::decimal(18, 2) "
        "from read_csv(?, header = true, all_varchar = true)",
        [str(candidate)],
    ).fetchone()
    if (written_count, written_total) != (count, total):
        candidate.unlink()
        raise RuntimeError(
            f"{csv_path}: the written file holds {written_count} refunds for {written_total}, "
            f"the tickler {count} for {total}; nothing was published"
        )
    manifest = Manifest(
        file_name=csv_path.name,
        as_of_date=as_of.isoformat(),
        record_count=int(count),
        total_amount=str(Decimal(total).quantize(Decimal("0.01"))),
        sha256=sha256_of(candidate),
    )

    if manifest_path.exists():
        published = json.loads(manifest_path.read_text())
        if published == asdict(manifest) and sha256_of(csv_path) == manifest.sha256:
            candidate.unlink()
            return manifest, False
        difference = describe_difference(con, csv_path, candidate)
        candidate.unlink()
        raise PublishedFileConflict(
            f"{csv_path} was already published and this run would change it: {difference}. "
            f"The published file is left as it was (published: {published['record_count']} "
            f"refunds for {published['total_amount']}; this run: {manifest.record_count} "
            f"for {manifest.total_amount})."
        )

    os.replace(candidate, csv_path)
    _fsync_dir(csv_path.parent)
    crash_point("between_file_and_manifest")
    atomic_write_bytes(manifest_path, manifest.to_bytes())
    return manifest, True
