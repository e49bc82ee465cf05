"""Work items (CONTRACT 8): given exception rows, snapshots, refunds and resolutions, the exact
items (``worklist.items.build``, the function ``main.tickler_items`` is rebuilt with); then a
scenario over several dates run through the pipeline, in two orders."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from decimal import Decimal

import pytest

from auto_refunds.worklist.items import Exception_, Resolution, build

D1, D2, D3, D4 = (dt.date(2026, 1, 5) + dt.timedelta(days=n) for n in range(4))
NMT, EXCEEDS = "NO_MATCHING_TRANSACTION", "CREDIT_EXCEEDS_TRANSACTION"


def exc(day, credit="C1", reason=NMT, amount="50.00", source="ELIGIBILITY", refund="", **kw):
    return Exception_(
        as_of_date=day,
        credit_id=credit,
        client_id=kw.get("client", "CL1"),
        account_id="A1",
        credit_amount=Decimal(amount),
        reason_code=reason,
        reason_detail=kw.get("detail", f"{reason} on {day}"),
        source=source,
        refund_id=refund,
    )


def item(first, last, reason=NMT, amount="50.00", status="OPEN", **values) -> dict:
    return {
        "credit_id": "C1",
        "client_id": "CL1",
        "account_id": "A1",
        "credit_amount": Decimal(amount),
        "reason_code": reason,
        "reason_detail": f"{reason} on {last}",
        "source": "ELIGIBILITY",
        "refund_id": None,
        "first_seen": first,
        "last_seen": last,
        "due_on": None,
        "status": status,
        "closed_reason": None,
        "assigned_to": None,
        "follow_up_on": None,
        "resolution": None,
        "resolved_by": None,
        "resolved_at": None,
        **values,
    }


def held(*days, credits=("C1",)) -> dict:
    return {day: set(credits) for day in days}


KEPT = Resolution("KEPT_AS_CREDIT", "clerk", "2026-01-06T10:00:00+00:00", 1)
RESOLVED_BY_CLERK = {"resolution": "KEPT_AS_CREDIT", "resolved_by": "clerk"}
RESOLVED_BY_CLERK["resolved_at"] = KEPT.resolved_at


@pytest.mark.parametrize(
    ("exceptions", "snapshots", "refunded", "resolved", "expected"),
    [
        pytest.param([exc(D1)], held(D1), [], {}, [item(D1, D1)], id="an-exception-opens-an-item"),
        pytest.param(
            [exc(D1), exc(D2), exc(D3, reason=EXCEEDS, amount="45.00")],
            held(D1, D2, D3),
            [],
            {},
            [item(D1, D3, reason=EXCEEDS, amount="45.00")],
            id="later-dates-update-the-open-item",
        ),
        pytest.param(
            [exc(D1), exc(D2)],
            {**held(D1, D2), D3: set()},
            [],
            {},
            [
                item(
                    D2 - dt.timedelta(1),
                    D2,
                    status="CLOSED",
                    closed_reason=f"credit no longer in the snapshot of {D3}",
                )
            ],
            id="closed-when-a-later-snapshot-drops-the-credit",
        ),
        pytest.param(
            [exc(D1)],
            held(D1, D2, D3),
            [],
            {},
            [item(D1, D1)],
            id="not-closed-while-the-snapshot-holds-it-without-an-exception",
        ),
        pytest.param(
            [exc(D1, reason="REFUND_DECLINED", source="RECONCILIATION", refund="R1")],
            held(D1, D2),
            [(D2, "C1", "R1")],
            {},
            [
                item(
                    D1,
                    D1,
                    reason="REFUND_DECLINED",
                    source="RECONCILIATION",
                    refund_id="R1",
                    status="CLOSED",
                    closed_reason=f"refund R1 ended REFUNDED on {D2}",
                )
            ],
            id="closed-when-its-refund-ends-refunded",
        ),
        pytest.param(
            [
                exc(D1, reason="REFUND_DECLINED", source="RECONCILIATION", refund="R1"),
                exc(D2, reason="APPROVED_AFTER_DECLINE", source="RECONCILIATION", refund="R1"),
            ],
            held(D1, D2),
            [(D2, "C1", "R1")],
            {(D1, "RECONCILIATION", "C1", "REFUND_DECLINED", "R1"): KEPT},
            [
                item(
                    D1,
                    D1,
                    reason="REFUND_DECLINED",
                    source="RECONCILIATION",
                    refund_id="R1",
                    status="RESOLVED",
                    **RESOLVED_BY_CLERK,
                ),
                item(
                    D2, D2, reason="APPROVED_AFTER_DECLINE", source="RECONCILIATION", refund_id="R1"
                ),
            ],
            id="an-approval-after-a-decline-reopens-a-resolved-credit",
        ),
        pytest.param(
            [exc(D1), exc(D2), exc(D3)],
            held(D1, D2, D3),
            [],
            {(D1, "ELIGIBILITY", "C1", NMT, ""): KEPT},
            [item(D1, D3, status="RESOLVED", **RESOLVED_BY_CLERK)],
            id="resolved-stays-resolved-while-the-problem-is-the-same",
        ),
        pytest.param(
            [exc(D1), exc(D2), exc(D3, amount="60.00")],
            held(D1, D2, D3),
            [],
            {(D1, "ELIGIBILITY", "C1", NMT, ""): KEPT},
            [
                item(D1, D2, status="RESOLVED", **RESOLVED_BY_CLERK),
                item(D3, D3, amount="60.00"),
            ],
            id="another-amount-reopens-as-a-new-item",
        ),
        pytest.param(
            [exc(D1), exc(D2, reason=EXCEEDS)],
            held(D1, D2),
            [],
            {(D1, "ELIGIBILITY", "C1", NMT, ""): KEPT},
            [
                item(D1, D1, status="RESOLVED", **RESOLVED_BY_CLERK),
                item(D2, D2, reason=EXCEEDS),
            ],
            id="another-reason-reopens-as-a-new-item",
        ),
        pytest.param(
            [exc(D1), exc(D3)],
            {**held(D1, D3), D2: set()},
            [],
            {},
            [
                item(
                    D1,
                    D1,
                    status="CLOSED",
                    closed_reason=f"credit no longer in the snapshot of {D2}",
                ),
                item(D3, D3),
            ],
            id="back-after-it-was-closed-is-a-new-item",
        ),
        pytest.param(
            [exc(D1), exc(D2)],
            held(D1, D2),
            [],
            {
                (D1, "ELIGIBILITY", "C1", NMT, ""): KEPT,
                (D2, "ELIGIBILITY", "C1", NMT, ""): Resolution("OTHER", "lead", "2026-01-07", 2),
            },
            [
                item(
                    D1,
                    D2,
                    status="RESOLVED",
                    resolution="OTHER",
                    resolved_by="lead",
                    resolved_at="2026-01-07",
                )
            ],
            id="the-latest-resolution-of-its-rows-is-the-items",
        ),
    ],
)
def test_items(exceptions, snapshots, refunded, resolved, expected):
    assert build(exceptions, snapshots, refunded, resolved) == expected


def test_a_credit_never_has_two_open_items_and_each_problem_is_one_item():
    rows = [exc(D1), exc(D1, source="RECONCILIATION", reason="REFUND_DECLINED", refund="R1")]
    built = build(rows, held(D1))
    assert [(i["reason_code"], i["status"]) for i in built] == [("REFUND_DECLINED", "OPEN")]


def test_due_on_is_the_credits_and_items_of_several_credits_come_sorted():
    due = {"C2": D4}
    built = build([exc(D2, credit="C2"), exc(D1)], held(D1, D2, credits=("C1", "C2")), due_on=due)
    assert [(i["credit_id"], i["due_on"]) for i in built] == [("C1", None), ("C2", D4)]


def test_the_items_are_the_same_whatever_order_the_rows_come_in():
    rows = [
        exc(D1),
        exc(D2),
        exc(D3, amount="60.00"),
        exc(D1, credit="C2"),
        exc(D2, credit="C2", reason=EXCEEDS),
        exc(D4, credit="C3"),
    ]
    snapshots = {**held(D1, D2, D3, credits=("C1", "C2")), D4: {"C3"}}
    resolved = {(D1, "ELIGIBILITY", "C1", NMT, ""): KEPT}
    expected = build(rows, snapshots, [], resolved)
    for order in itertools.islice(itertools.permutations(rows), 0, None, 97):
        assert build(list(order), snapshots, [], resolved) == expected
    assert [(i["credit_id"], i["first_seen"], i["status"]) for i in expected] == [
        ("C1", D1, "RESOLVED"),
        ("C1", D3, "CLOSED"),  # D4's snapshot holds C3 alone
        ("C2", D1, "CLOSED"),
        ("C3", D4, "OPEN"),
    ]


def test_item_rows_have_the_contracts_columns():
    from auto_refunds.worklist.items import NAMES

    assert list(build([exc(D1)], held(D1))[0]) == list(NAMES)
    assert dataclasses.fields(Exception_)[0].name == "as_of_date"


def test_items_over_several_dates_through_the_pipeline_whatever_order_the_dates_ran_in(
    scenario, tmp_path
):
    """Open, the same problem again, closed by the data, resolved stays resolved, reopened by a
    new amount: dates run in order, then in another data folder backfilled out of order."""
    from scenario import Scenario, credit

    from auto_refunds.worklist import resolutions, snapshot

    given = {
        D1: [credit("C1"), credit("C2", "30.00"), credit("C3", "20.00"), credit("C4", "40.00")],
        D2: [credit("C1"), credit("C3", "20.00"), credit("C4", "45.00")],
        D3: [credit("C1"), credit("C3", "20.00"), credit("C4", "45.00")],
    }
    resolved = [("C3", "KEPT_AS_CREDIT"), ("C4", "TRANSFERRED")]

    def resolve(settings) -> None:
        for credit_id, resolution in resolved:
            key = resolutions.ExceptionKey(D1, "ELIGIBILITY", credit_id, NMT)
            when = dt.datetime(2026, 1, 6, 9, tzinfo=dt.UTC)
            resolutions.record(settings.data_dir, [key], resolution, "", "clerk", now=when)

    def run(case: Scenario, days: list[dt.date]) -> list[tuple]:
        for day in days:
            case.write_credits(day, *given[day])
            case.run(day)
            snapshot.refresh(day, case.settings)
            if day == D1:
                resolve(case.settings)
        snapshot.refresh(days[-1], case.settings)
        return case.query(
            "select credit_id, credit_amount, first_seen, last_seen, status, closed_reason,"
            " resolution from main.tickler_items order by credit_id, first_seen"
        )

    in_order = run(scenario, [D1, D2, D3])
    assert scenario.query(
        "select credit_id, first_seen, event, as_of_date from main.tickler_item_history"
        " order by all"
    ) == [
        ("C1", D1, "OPENED", D1),
        ("C2", D1, "CLOSED", D2),
        ("C2", D1, "OPENED", D1),
        ("C3", D1, "OPENED", D1),
        ("C3", D1, "RESOLVED", D1),
        ("C4", D1, "OPENED", D1),
        ("C4", D1, "RESOLVED", D1),
        ("C4", D2, "OPENED", D2),
    ]
    money = Decimal
    assert in_order == [
        ("C1", money("50.00"), D1, D3, "OPEN", None, None),
        ("C2", money("30.00"), D1, D1, "CLOSED", f"credit no longer in the snapshot of {D2}", None),
        ("C3", money("20.00"), D1, D3, "RESOLVED", None, "KEPT_AS_CREDIT"),
        ("C4", money("40.00"), D1, D1, "RESOLVED", None, "TRANSFERRED"),
        ("C4", money("45.00"), D2, D3, "OPEN", None, None),
    ]
    other = tmp_path / "backfilled"
    other.mkdir()
    backfilled = Scenario(dataclasses.replace(scenario.settings, data_dir=other))
    assert run(backfilled, [D3, D1, D2]) == in_order


def test_due_on_is_the_credit_date_plus_the_clients_refund_deadline_days_where_given():
    """client_rules' optional refund_deadline_days, read from the staging model once it carries
    the column; without it, no item has a due date."""
    import duckdb

    from auto_refunds.worklist.items import _due_dates

    with duckdb.connect() as con:
        con.execute("create schema staging")
        con.execute(
            "create table main.credit_outcomes as select * from (values"
            " ('C1', 'CL1', date '2026-01-05', date '2026-01-01'),"
            " ('C1', 'CL1', date '2026-01-06', date '2026-01-02'),"
            " ('C2', 'CL2', date '2026-01-05', date '2026-01-01'),"
            " ('C3', 'CL3', date '2026-01-05', date '2026-01-01'))"
            " as t(credit_id, client_id, as_of_date, credit_date)"
        )
        con.execute(
            "create table main.tickler_refund_exceptions as"
            " select credit_id from (values ('C1'), ('C2'), ('C3')) as t(credit_id)"
        )
        con.execute(
            "create table staging.stg_imagineone__client_rules as select * from (values"
            " ('CL1', 30, null), ('CL2', null, null), ('CL3', 10, 'bad line'))"
            " as t(client_id, dq_error_free, dq_error)"
        )
        assert _due_dates(con) == {}
        con.execute(
            "alter table staging.stg_imagineone__client_rules"
            " rename column dq_error_free to refund_deadline_days"
        )
        # The latest snapshot's credit_date; no days, or a quarantined line: no due date.
        assert _due_dates(con) == {"C1": dt.date(2026, 2, 1)}


def test_each_change_of_an_item_is_kept_in_its_history():
    from auto_refunds.worklist.items import walk

    rows = [
        exc(D1),
        exc(D2, detail=f"{NMT} on {D1}"),
        exc(D3, reason=EXCEEDS, amount="45.00"),
    ]
    resolved = {(D3, "ELIGIBILITY", "C1", EXCEEDS, ""): KEPT}
    (item_,) = walk(rows, {**held(D1, D2, D3), D4: set()}, [], resolved)
    assert [
        (h["seq"], h["as_of_date"], h["event"], h["reason_code"], h["detail"])
        for h in item_.history
    ] == [
        (1, D1, "OPENED", NMT, None),
        (2, D3, "CHANGED", EXCEEDS, None),
        (3, D3, "RESOLVED", None, "KEPT_AS_CREDIT by clerk"),
    ]
    assert {h["first_seen"] for h in item_.history} == {D1}
    (closed,) = walk([exc(D1)], {**held(D1), D2: set()})
    assert [(h["event"], h["detail"]) for h in closed.history][-1] == (
        "CLOSED",
        f"credit no longer in the snapshot of {D2}",
    )


def histories():
    """Random histories of a few credits over a few dates: exception rows of both sources,
    snapshots that hold or drop each credit, refunds that end REFUNDED, resolutions."""
    from hypothesis import strategies as st

    days = st.sampled_from([D1, D2, D3, D4, D1 + dt.timedelta(5)])
    credits = st.sampled_from(["C1", "C2", "C3"])
    key = st.tuples(
        days,
        st.sampled_from(["ELIGIBILITY", "RECONCILIATION"]),
        credits,
        st.sampled_from([NMT, EXCEEDS, "REFUND_DECLINED"]),
        st.sampled_from(["", "R1", "R2"]),
    )
    row = st.tuples(key, st.sampled_from(["50.00", "45.00"]), st.sampled_from([None, "why"]))
    return st.tuples(
        st.lists(row, max_size=14, unique_by=lambda r: r[0]),
        st.dictionaries(days, st.frozensets(credits)),
        st.lists(st.tuples(days, credits, st.sampled_from(["R1", "R2"])), max_size=3),
        st.lists(st.integers(0, 3), max_size=14),
    )


def test_the_sql_rebuild_gives_the_reference_walks_items_and_history():
    """The rebuild is SQL (windows over each credit's rows); the reference walks the same rule
    row by row in Python. Both agree on every random history, items and history alike."""
    from hypothesis import given, settings
    from items_reference import walk as reference

    from auto_refunds.worklist.items import walk

    @settings(max_examples=120, deadline=None)
    @given(histories())
    def agree(history):
        rows, snapshots, refunded, orders = history
        exceptions = [
            exc(k[0], credit=k[2], reason=k[3], amount=a, source=k[1], refund=k[4], detail=d)
            for k, a, d in rows
        ]
        resolved = {
            e.key: Resolution(f"R{order}", f"clerk{order}", f"at{order}", order)
            for e, order in zip(exceptions, orders, strict=False)
        }
        want = reference(exceptions, snapshots, refunded, resolved)
        got = walk(exceptions, snapshots, refunded, resolved)
        assert [i.row() for i in got] == [i.row() for i in want]
        assert [i.history for i in got] == [i.history for i in want]

    agree()
