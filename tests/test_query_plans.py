"""No query costs the product of two tables: EXPLAIN of every model, gate and publish query.

A join whose condition DuckDB cannot hash (an OR, an inequality alone, no condition at all) runs as
a loop over one side for every block of the other: new refunds x every refund ever recorded, say.
At one night's size it passes unseen; a year later it stalls the publish (docs/design.md,
Performance). Plans are read from a small warehouse the real code built (two daily runs and a
reconciliation), so every table a query reads exists with its real columns.

The operators refused, and why:

- NESTED_LOOP_JOIN, BLOCKWISE_NL_JOIN: every row of one side against every row of the other.
- PIECEWISE_MERGE_JOIN, IE_JOIN: range joins, sorted, but their output (and so their cost) can
  be the product of both sides; none is needed by the rules, which match on ids.
- CROSS_PRODUCT: the product itself.

Except when one side is one row by construction: an aggregate without GROUP BY (or a plan
made of constants only) on that side, under projections and filters only. DuckDB plans a
scalar subquery, or `cross join (select max(...) from ...)`, that way; its cost is the other
side's. The estimated cardinality is not used: on a small warehouse every side looks small.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from scenario import Scenario, credit, csv_text, refund, sale

from auto_refunds import models, quality, reconciliation
from auto_refunds.layout import PAYMENTS_HEADER, REFUNDS_HEADER
from auto_refunds.outbox import read_as_text
from auto_refunds.settings import Settings
from auto_refunds.warehouse import connect

D0 = dt.date(2026, 1, 5)
D1 = dt.date(2026, 1, 6)

PRODUCT_JOINS = {
    "NESTED_LOOP_JOIN",
    "BLOCKWISE_NL_JOIN",
    "PIECEWISE_MERGE_JOIN",
    "IE_JOIN",
    "CROSS_PRODUCT",
}
# What sits above a one-row source without changing its row count.
_PASS_THROUGH = {"PROJECTION", "FILTER"}
_ONE_ROW = {"UNGROUPED_AGGREGATE", "SIMPLE_AGGREGATE", "DUMMY_SCAN"}


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Settings:
    """Two daily runs (the second supersedes a transaction and publishes) and a reconciliation."""
    root = tmp_path_factory.mktemp("plans") / "data"
    root.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AUTO_REFUNDS_DATA_DIR", str(root))
        settings = Settings.from_env()
        scenario = Scenario(settings)
        scenario.write_credits(
            D0, credit("C1", "50.00"), credit("C2", "20.00"), credit("C3", "30.00", account="")
        )
        scenario.write_transactions(
            D0, sale("T1", "500.00"), sale("T2", "10.00"), refund("R1", "T2", "5.00")
        )
        scenario.run(D0, audit=True)
        refunds = dict(scenario.query("select credit_id, refund_id from refund_ledger"))
        payments = scenario.layout.payments(D0)
        payments.parent.mkdir(parents=True, exist_ok=True)
        payments.write_text(
            csv_text(
                PAYMENTS_HEADER,
                [
                    (
                        "P1",
                        "CL1",
                        "A1",
                        "IP-1",
                        refunds["C1"],
                        "-50.00",
                        "APPROVED",
                        "00",
                        "ok",
                        "2026-01-05",
                    ),
                    ("P2", "CL1", "A1", "IP-2", "", "12.00", "APPROVED", "00", "ok", "2026-01-05"),
                ],
            )
        )
        reconciliation.run_all(D0, settings)
        scenario.write_credits(D1, credit("C2", "20.00"), credit("C4", "40.00"))
        scenario.write_transactions(
            D1, sale("T2", "10.00", status="VOIDED"), sale("T3", "400.00", txn_date="2026-01-06")
        )
        scenario.run(D1, audit=True)
        yield settings


def _statements(settings: Settings) -> list[tuple[str, str]]:
    """(name, SQL) of every query a run plans on the warehouse's own tables."""
    sql_dir = settings.sql_dir
    found = []
    for model in (*models.DAILY_MODELS, *models.RECONCILIATION_MODELS):
        found.append((model.relation, model.path(sql_dir).read_text()))
        if model.per_file_kind:
            found += [
                (f"{model.relation} {step}", model.path(sql_dir, f".{step}.sql").read_text())
                for step in ("repeated_keys", "supersede")
            ]
    for gate in (quality.DAILY_SUITES, quality.RECONCILIATION_SUITES):
        found += [(f"gate {s.name}", s.dataset) for s in quality.discover(sql_dir, gate)]
    found += [
        (f"publish/{path.stem}", path.read_text())
        for path in sorted((sql_dir / "publish").glob("*.sql"))
    ]
    return found


def _prepare_session(con, settings: Settings) -> None:
    """The temporary tables and variables some statements read, as their callers set them."""
    # The per-file model types one extract, landing_file (extract_typing._type_file).
    con.execute(
        """
        create temp view landing_file as
        select 'transactions_20260106.csv' as source_file, date '2026-01-06' as file_date,
            1::bigint as line_number, 'T9,CL1,A1,SALE' as raw_line,
            line_id_hash('T9,CL1,A1,SALE') as id_hash
        """
    )
    con.execute(
        "create temp table repeated_keys as "
        "select txn_id, 2::bigint as rows_with_txn_id from staging.stg_imaginepay__transactions"
    )
    con.execute(
        "create temp table touched_keys as select txn_id from staging.stg_imaginepay__transactions"
    )
    # The ledger's checks read the refund file about to be recorded (ledger.check_refund_file).
    read_as_text(con, settings.layout.refunds(D1), "refunds_to_send", REFUNDS_HEADER)
    con.execute("set variable refund_file_date = ?::date", [D1])
    con.execute("set variable refund_file_name = ?", [settings.layout.refunds(D1).name])
    # The guard reads the credits its transaction wrote (ledger.check_guards).
    con.execute("create temp table ledger_written_credits as select credit_id from refunds_to_send")


def _one_row(node: dict) -> bool:
    while node["name"] in _PASS_THROUGH and len(node["children"]) == 1:
        node = node["children"][0]
    if node["name"] in _ONE_ROW:
        return True
    # A plan of constants only (VALUES of one row, a literal in a CTE).
    return node["name"] == "PROJECTION" and not node["children"]


def product_joins(plan: list[dict]) -> list[str]:
    """The refused joins of a physical plan (EXPLAIN (FORMAT json)), described."""
    found = []
    stack = list(plan)
    while stack:
        node = stack.pop()
        stack.extend(node.get("children", []))
        if node["name"] not in PRODUCT_JOINS:
            continue
        if any(_one_row(child) for child in node["children"]):
            continue
        condition = node.get("extra_info", {}).get("Condition", "no condition")
        found.append(f"{node['name']} on {condition}")
    return found


def explain(con, sql: str) -> list[dict]:
    rows = con.execute(f"explain (format json) {sql}").fetchall()
    plans = [json.loads(value) for key, value in rows if key == "physical_plan"]
    assert plans, f"no physical plan in {rows}"
    return [node for plan in plans for node in plan]


def test_no_query_joins_two_tables_by_a_loop(warehouse):
    statements = _statements(warehouse)
    # Every layer, the gate and the publish statements are there: a new folder or a renamed
    # suite would otherwise leave queries unchecked without a sign.
    assert len(statements) >= 30
    offenders = {}
    with connect(warehouse, D1) as con:
        _prepare_session(con, warehouse)
        for name, sql in statements:
            found = product_joins(explain(con, sql))
            if found:
                offenders[name] = found
    assert not offenders, "\n".join(f"{name}: {found}" for name, found in offenders.items())


def test_the_check_sees_an_or_join(warehouse):
    """The conflict check as it was: one join on an OR ran blockwise, new x every refund."""
    old = """
        select refunds_to_send.refund_id, refund_ledger.requested_date
        from refunds_to_send
        inner join main.refund_ledger as refund_ledger
            on refunds_to_send.refund_id = refund_ledger.refund_id
            or (refunds_to_send.credit_id = refund_ledger.credit_id
                and refund_ledger.status <> 'DECLINED')
    """
    scalar_side = """
        select refund_id from main.refund_ledger
        where requested_date = (select max(requested_date) from main.refund_ledger)
    """
    with connect(warehouse, D1) as con:
        _prepare_session(con, warehouse)
        assert [join.split(" on ")[0] for join in product_joins(explain(con, old))] == [
            "BLOCKWISE_NL_JOIN"
        ]
        assert product_joins(explain(con, "select * from refunds_to_send, main.refund_ledger"))
        assert not product_joins(explain(con, scalar_side))


def test_statements_cover_every_sql_file(warehouse):
    """Every .sql file under the model layers and publish/ is one of the statements checked."""
    sql_dir: Path = warehouse.sql_dir
    checked = {sql for _, sql in _statements(warehouse)}
    files = [
        path
        for folder in ("staging", "intermediate", "marts", "publish")
        for path in sorted((sql_dir / folder).glob("*.sql"))
    ]
    missing = [str(path.relative_to(sql_dir)) for path in files if path.read_text() not in checked]
    assert not missing
