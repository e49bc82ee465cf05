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
from dataclasses import asdict, dataclass
from decimal import Decimal

import duckdb

from auto_refunds.faults import crash_point
from auto_refunds.landing import sha256_of
from auto_refunds.layout import REFUNDS_HEADER, Layout
from auto_refunds.outbox import (
    atomic_write_bytes,
    promote,
    refuse_change,
    write_candidate,
)

SOURCE_TABLE = "marts.tickler_true_refunds_due"


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
    candidate = write_candidate(
        con, f"select {', '.join(REFUNDS_HEADER)} from {SOURCE_TABLE} order by refund_id", csv_path
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
        refuse_change(
            con,
            csv_path,
            candidate,
            REFUNDS_HEADER,
            "refund_id",
            f" (published: {published['record_count']} refunds for {published['total_amount']}; "
            f"this run: {manifest.record_count} for {manifest.total_amount})",
        )

    promote(candidate, csv_path)
    crash_point("between_file_and_manifest")
    atomic_write_bytes(manifest_path, manifest.to_bytes())
    return manifest, True
