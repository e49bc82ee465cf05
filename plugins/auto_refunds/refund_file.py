"""The refund request file for ImaginePay and its manifest (CONTRACT 4).

Published with the one mechanism of ``outbox``: candidate, compare, refuse a change, promote. The
manifest is renamed last and is the commit marker: a refund file without its manifest is not
published and is simply rewritten by the next run of its date.

Before the file is promoted, its refunds are checked against the ledger: a refund of a credit
that another date's file already holds fails the run with nothing in the outbox.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from decimal import Decimal

import duckdb

from auto_refunds import ledger
from auto_refunds.faults import crash_point
from auto_refunds.layout import REFUNDS_HEADER, Layout
from auto_refunds.outbox import PublishedFileConflict, atomic_write_bytes, stage

SOURCE_TABLE = "marts.tickler_true_refunds_due"


class WrittenFileMismatch(RuntimeError):
    """The written file does not hold what was audited (an I/O fault): a retry writes it again."""


@dataclass(frozen=True)
class Manifest:
    file_name: str
    as_of_date: str
    record_count: int
    total_amount: str
    sha256: str

    def to_bytes(self) -> bytes:
        return (json.dumps(asdict(self), indent=2) + "\n").encode()


def publish_refund_file(
    con: duckdb.DuckDBPyConnection, layout: Layout, as_of: dt.date
) -> tuple[Manifest, bool]:
    """Write the refund file of ``as_of`` from the audited tickler; returns (manifest, written).

    ``written`` is False when the identical file was already published.
    """
    csv_path = layout.refunds(as_of)
    manifest_path = layout.refunds_manifest(as_of)
    published = json.loads(manifest_path.read_text()) if manifest_path.exists() else None
    staged = stage(
        con,
        f"select {', '.join(REFUNDS_HEADER)} from {SOURCE_TABLE} order by refund_id",
        csv_path,
        REFUNDS_HEADER,
        "refund_id",
        published=published is not None,
        context=(
            f" (published: {published['record_count']} refunds for {published['total_amount']})"
            if published
            else ""
        ),
    )
    written_file = staged.candidate or csv_path
    count, total = con.execute(
        f"select count(*), coalesce(sum(refund_amount), 0)::decimal(18, 2) from {SOURCE_TABLE}"
    ).fetchone()
    # What was written is what was audited: read it back before anything is published.
    written_count, written_total = con.execute(
        "select count(*), coalesce(sum(refund_amount::decimal(18, 2)), 0)::decimal(18, 2) "
        "from read_csv(?, header = true, all_varchar = true)",
        [str(written_file)],
    ).fetchone()
    if (written_count, written_total) != (count, total):
        staged.discard()
        raise WrittenFileMismatch(
            f"{csv_path}: the written file holds {written_count} refunds for {written_total}, "
            f"the tickler {count} for {total}; nothing was published"
        )
    manifest = Manifest(
        file_name=csv_path.name,
        as_of_date=as_of.isoformat(),
        record_count=int(count),
        total_amount=str(Decimal(total).quantize(Decimal("0.01"))),
        sha256=staged.sha256,
    )
    if published is not None:
        if published != asdict(manifest):
            # The same CSV bytes under another manifest: the manifest was edited by hand.
            raise PublishedFileConflict(
                f"{manifest_path} was already published and differs from the manifest of its "
                f"file: {published} against {asdict(manifest)}. The published files are left "
                "as they were"
            )
        return manifest, False
    try:
        ledger.check_refund_file(con, written_file, as_of)
    except ledger.LedgerConflict:
        staged.discard()
        raise
    staged.promote()
    crash_point("between_file_and_manifest")
    atomic_write_bytes(manifest_path, manifest.to_bytes())
    return manifest, True
