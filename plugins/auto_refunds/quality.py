"""The data-quality gate: Great Expectations suites run before anything is published.

Each suite is a YAML file beside the model it guards (``<model>.expectations.yml``): the gate it
belongs to, a SQL query giving the data to check, the column that names offending rows in the
log, and a declarative list of GX expectations. The query runs in DuckDB and its result reaches
GX as a pandas DataFrame: GX's SQL datasource does not work over duckdb-engine with DuckDB 2 (it
computes empty metrics). The daily suites guard tables of millions of rows, so their query
reduces the table to one row of facts (counts of offending rows, a few offending keys) and GX
judges the facts: the gate's time and memory stay flat however large the run (docs/design.md,
"Quality gate"). A suite may also hand GX rows to check one by one, as the postings suite does.

Every run writes its validation results as JSON under ``$AUTO_REFUNDS_DATA_DIR/quality``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import yaml

from auto_refunds import card_numbers
from auto_refunds.errors import NeedsAPerson
from auto_refunds.layout import make_folder, ymd
from auto_refunds.outbox import atomic_write_bytes
from auto_refunds.settings import Settings

log = logging.getLogger(__name__)

DAILY_SUITES = "daily"
RECONCILIATION_SUITES = "reconciliation"


class DataQualityError(NeedsAPerson):
    action = (
        "nothing was published; read the failed expectations and the results named above, fix "
        "the inputs or the model, then clear the run from its first task"
    )


@dataclass(frozen=True)
class Suite:
    name: str
    gate: str
    dataset: str
    key: str
    expectations: list[dict] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> Suite:
        spec = yaml.safe_load(path.read_text())
        return cls(
            name=path.name.removesuffix(".expectations.yml"),
            gate=spec["gate"],
            dataset=spec["dataset"],
            key=spec["key"],
            expectations=spec["expectations"],
        )


def discover(sql_dir: Path, gate: str) -> list[Suite]:
    suites = [Suite.load(path) for path in sorted(sql_dir.glob("*/*.expectations.yml"))]
    return [suite for suite in suites if suite.gate == gate]


def _fill(value, as_of: dt.date):
    """Expectation arguments may name the run date as ``{as_of_date}``."""
    if isinstance(value, str):
        return value.replace("{as_of_date}", as_of.isoformat())
    if isinstance(value, list):
        return [_fill(item, as_of) for item in value]
    if isinstance(value, dict):
        return {key: _fill(item, as_of) for key, item in value.items()}
    return value


@dataclass
class Failure:
    suite: str
    expectation: str
    column: str | None
    unexpected_count: int | None
    examples: list
    # Every column the expectation reads (a pair expectation reads two).
    columns: tuple[str, ...] = ()
    # Set for a one-row suite of facts: the values of the facts that failed.
    facts: dict | None = None

    def describe(self) -> str:
        if self.facts is not None:
            return "with " + ", ".join(f"{name} = {value}" for name, value in self.facts.items())
        return f"for {self.unexpected_count} row(s)"


def _validate(context, suite: Suite, frame, as_of: dt.date) -> tuple[dict, list[Failure]]:
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    gx_suite = gx.ExpectationSuite(name=suite.name)
    for spec in suite.expectations:
        gx_suite.add_expectation_configuration(
            ExpectationConfiguration(type=spec["type"], kwargs=_fill(spec["kwargs"], as_of))
        )
    source = context.data_sources.add_or_update_pandas(name=f"audit_{suite.name}")
    asset = source.add_dataframe_asset(name=suite.name)
    batch = asset.add_batch_definition_whole_dataframe("whole").get_batch(
        batch_parameters={"dataframe": frame}
    )
    result = batch.validate(
        gx_suite,
        result_format={
            "result_format": "SUMMARY",
            "partial_unexpected_count": 5,
            "unexpected_index_column_names": [suite.key],
        },
    )
    failures = []
    for item in result.results:
        if item.success:
            continue
        details = item.result or {}
        examples = (
            details.get("partial_unexpected_index_list")
            or details.get("partial_unexpected_list")
            or []
        )
        if item.exception_info and item.exception_info.get("raised_exception"):
            examples = [item.exception_info.get("exception_message")]
        failures.append(
            Failure(
                suite=suite.name,
                expectation=item.expectation_config.type,
                column=item.expectation_config.kwargs.get("column"),
                columns=tuple(
                    item.expectation_config.kwargs[name]
                    for name in ("column", "column_A", "column_B")
                    if name in item.expectation_config.kwargs
                ),
                unexpected_count=details.get("unexpected_count"),
                examples=examples[:5],
            )
        )
    return result.to_json_dict(), failures


def _write_results(path: Path, outcome: dict) -> None:
    """Written whole or not at all, as kept for a person (CONTRACT 7): strings masked, and
    floats held to ten decimals, since GX's ratios would otherwise print runs of digits that
    read as a card number."""
    text = json.dumps(
        card_numbers.mask_value(outcome, float_decimals=10),
        indent=2,
        sort_keys=True,
        default=lambda other: card_numbers.mask(str(other)),
    )
    atomic_write_bytes(path, (text + "\n").encode())


def _gx_context():
    # GX narrates its own start-up and draws progress bars; the task log wants our summary.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def run_gate(
    con: duckdb.DuckDBPyConnection,
    gate: str,
    as_of: dt.date,
    settings: Settings,
    run_kind: str,
) -> Path:
    """Validate every suite of ``gate``; write the results; raise if any expectation failed."""
    results_dir = settings.quality_results_dir / f"{run_kind}_{ymd(as_of)}"
    make_folder(results_dir)
    # Importing GX takes seconds whatever the data; DuckDB computes the suites' datasets
    # meanwhile, releasing the GIL.
    with ThreadPoolExecutor(max_workers=1) as pool:
        starting = pool.submit(_gx_context)
        datasets = []
        for suite in discover(settings.sql_dir, gate):
            started = time.perf_counter()
            datasets.append((suite, con.execute(suite.dataset).df(), time.perf_counter() - started))
        context = starting.result()
    failures: list[Failure] = []
    for suite, frame, query_seconds in datasets:
        started = time.perf_counter()
        outcome, suite_failures = _validate(context, suite, frame, as_of)
        _write_results(results_dir / f"{suite.name}.json", outcome)
        log.info(
            "Suite %s: %d rows, %d expectation(s), %d failed, %.2f s in DuckDB, %.2f s in GX",
            suite.name,
            len(frame),
            len(suite.expectations),
            len(suite_failures),
            query_seconds,
            time.perf_counter() - started,
        )
        if suite_failures and len(frame) == 1:
            # A one-row suite judges facts DuckDB computed: the failing fact and the suite's
            # example keys are the evidence.
            facts = frame.iloc[0].to_dict()
            for failure in suite_failures:
                failure.facts = {name: facts.get(name) for name in failure.columns}
                failure.examples = [facts.get(suite.key)]
        failures.extend(suite_failures)
    del datasets
    if failures:
        lines = [
            f"  {f.suite}: {f.expectation}({f.column}) failed {f.describe()}, e.g. {f.examples}"
            for f in failures
        ]
        raise DataQualityError(
            f"Data-quality gate '{gate}' failed for {as_of}; nothing was published.\n"
            + "\n".join(lines)
            + f"\nResults: {results_dir}"
        )
    return results_dir
