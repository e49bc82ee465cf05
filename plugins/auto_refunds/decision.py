"""A run's decision and its publication as one consistent unit, whatever runs beside it.

The SQL models of both DAGs build into working schemas (``staging``, ``intermediate``,
``marts``) that every date shares, and each task holds the warehouse only while it runs: a
backfill and the scheduled run, or a person clearing tasks, interleave their tasks. So the
working tables are stamped (``main.working_decisions``, one row per kind of run) with the
*basis* they were decided from:

- the date D;
- the SHA-256 of the registered input files D reads;
- the ledger's generation: how many publications changed the ledger or the postings so far
  (``ledger.generation``).

A model task for D first checks that the models before it were built, in order, on the current
basis, and builds again what was not (another date's tables, a publication in between). The
audit and the publish do the same for every model, and the publish also runs the quality gate
again when the gate did not pass on this very basis. As the publish holds the warehouse from that
check to the end of its transaction, what it publishes is exactly the decision of D made knowing
every refund other dates published before it (CONTRACT 7, runs side by side). A decision that
went stale is never published: it is made again, logged as such, and audited again.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

import duckdb

from auto_refunds import ledger, models, quality
from auto_refunds.settings import Settings
from auto_refunds.sql import statement
from auto_refunds.warehouse import connect

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunKind:
    name: str
    models: tuple[models.Model, ...]
    gate: str
    # include/sql/publish/<inputs>.sql: the registered files a decision of D reads.
    inputs: str


DAILY = RunKind("daily", models.DAILY_MODELS, quality.DAILY_SUITES, "daily_inputs")
RECONCILIATION = RunKind(
    "reconciliation",
    models.RECONCILIATION_MODELS,
    quality.RECONCILIATION_SUITES,
    "reconciliation_inputs",
)


@dataclass(frozen=True)
class Basis:
    as_of_date: dt.date
    inputs_sha256: str
    generation: int


@dataclass(frozen=True)
class Stamp:
    basis: Basis
    models_built: tuple[str, ...]
    audited: bool


def basis(con: duckdb.DuckDBPyConnection, kind: RunKind, as_of: dt.date) -> Basis:
    # The statement reads D as the session's as_of_date, which ``connect`` sets.
    inputs = con.execute(statement(f"publish/{kind.inputs}")).fetchone()[0]
    return Basis(as_of, inputs, ledger.generation(con))


def _stamp(con: duckdb.DuckDBPyConnection, kind: RunKind) -> Stamp | None:
    row = con.execute(
        "select as_of_date, inputs_sha256, generation, models_built, audited "
        "from main.working_decisions where run_kind = ?",
        [kind.name],
    ).fetchone()
    if row is None:
        return None
    return Stamp(Basis(row[0], row[1], row[2]), tuple(row[3]), row[4])


def _restamp(
    con: duckdb.DuckDBPyConnection,
    kind: RunKind,
    now: Basis,
    models_built: tuple[str, ...],
    audited: bool,
) -> None:
    con.execute(
        "insert or replace into main.working_decisions values (?, ?, ?, ?, ?, ?)",
        [kind.name, now.as_of_date, now.inputs_sha256, now.generation, list(models_built), audited],
    )


def _why_stale(stamp: Stamp | None, now: Basis, names: tuple[str, ...]) -> str:
    if stamp is None:
        return "nothing was built yet"
    if stamp.basis.as_of_date != now.as_of_date:
        return f"the working tables hold the run of {stamp.basis.as_of_date}"
    if stamp.basis.generation != now.generation:
        return (
            f"{now.generation - stamp.basis.generation} publication(s) changed the ledger or "
            "the postings since these tables were decided"
        )
    if stamp.basis.inputs_sha256 != now.inputs_sha256:
        return "input files were registered again with other content since"
    if stamp.models_built != names:
        return "the models before it were not all built"
    return "the quality gate has not passed on these tables"


def _build(
    con: duckdb.DuckDBPyConnection,
    kind: RunKind,
    as_of: dt.date,
    settings: Settings,
    through: int,
    rebuild_last: bool,
) -> int | None:
    """Build the models of ``kind`` up to index ``through`` on the current basis: those not built
    on it yet, and the last one again when ``rebuild_last``. Returns the last one's row count,
    None when nothing was built."""
    now = basis(con, kind, as_of)
    stamp = _stamp(con, kind)
    names = tuple(model.name for model in kind.models)
    valid = stamp.models_built if stamp is not None and stamp.basis == now else ()
    kept = 0
    while kept < len(valid) and kept <= through and valid[kept] == names[kept]:
        kept += 1
    start = min(kept, through) if rebuild_last else kept
    if start > through:
        return None
    if start < through:
        log.warning(
            "Building %s first, for %s: %s",
            ", ".join(names[start:through]),
            as_of,
            _why_stale(stamp, now, names),
        )
    # Claimed only once built: a kill in between leaves the stamp short, never ahead.
    _restamp(con, kind, now, names[:start], audited=False)
    rows = None
    for index in range(start, through + 1):
        rows = models.build_on(con, kind.models[index], settings)
        _restamp(con, kind, now, names[: index + 1], audited=False)
    return rows


def build_model(
    kind: RunKind, as_of: dt.date, model_name: str, settings: Settings | None = None
) -> int | None:
    """One model task: build ``model_name`` for D, on what the models before it decided for D;
    returns its row count (None for a view)."""
    settings = settings or Settings.from_env()
    index = [model.name for model in kind.models].index(model_name)
    with connect(settings, as_of) as con:
        return _build(con, kind, as_of, settings, index, rebuild_last=True)


def _gate(
    con: duckdb.DuckDBPyConnection, kind: RunKind, as_of: dt.date, settings: Settings
) -> Path:
    results = quality.run_gate(con, kind.gate, as_of, settings, run_kind=kind.name)
    stamp = _stamp(con, kind)
    _restamp(con, kind, stamp.basis, stamp.models_built, audited=True)
    return results


def audit(kind: RunKind, as_of: dt.date, settings: Settings | None = None) -> str:
    """The audit task: the quality gate, on D's decision made on the current basis."""
    settings = settings or Settings.from_env()
    with connect(settings, as_of) as con:
        _build(con, kind, as_of, settings, len(kind.models) - 1, rebuild_last=False)
        return str(_gate(con, kind, as_of, settings))


def decide(
    con: duckdb.DuckDBPyConnection, kind: RunKind, as_of: dt.date, settings: Settings
) -> Basis:
    """Make sure the working tables hold D's decision on the current basis, audited; build and
    audit again what is not. Called by the publish, which keeps the warehouse until it is done."""
    now = basis(con, kind, as_of)
    stamp = _stamp(con, kind)
    names = tuple(model.name for model in kind.models)
    if stamp is not None and stamp.basis == now and stamp.models_built == names and stamp.audited:
        return now
    log.warning("Deciding %s again before publishing it: %s", as_of, _why_stale(stamp, now, names))
    _build(con, kind, as_of, settings, len(names) - 1, rebuild_last=False)
    _gate(con, kind, as_of, settings)
    return now
