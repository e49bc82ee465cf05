"""People working items (CONTRACT 8): each action appended with who and when, never changed or
deleted; the item's assignee, follow-up and resolution follow from them; an action on an item
someone else changed since the page was loaded is refused, saying who and when. First the store
and the queries on a data root holding items alone, then the pages on a real API server."""

from __future__ import annotations

import datetime as dt
import sqlite3
from contextlib import closing
from decimal import Decimal

import pytest

from auto_refunds.worklist import actions, resolutions
from auto_refunds.worklist.actions import ItemKey

D1, D2 = dt.date(2026, 3, 2), dt.date(2026, 3, 3)
NMT = "NO_MATCHING_TRANSACTION"
ITEM = ItemKey("CR1", D1)
LATEST = resolutions.ExceptionKey(D2, "ELIGIBILITY", "CR1", NMT)
T = [dt.datetime(2026, 3, 4, 9, minute, tzinfo=dt.UTC) for minute in range(10)]


def _item(credit_id: str, first_seen: dt.date, last_seen: dt.date = D2, **values) -> dict:
    from auto_refunds.worklist.items import NAMES

    row = dict.fromkeys(NAMES)
    row.update(
        credit_id=credit_id,
        client_id="CL1",
        account_id="A1",
        credit_amount=Decimal("-12.50"),
        reason_code=NMT,
        reason_detail="no transaction",
        source="ELIGIBILITY",
        first_seen=first_seen,
        last_seen=last_seen,
        status="OPEN",
    )
    row.update(values)
    return row


def write_items(data_dir, rows: list[dict]) -> None:
    """items.parquet as a refresh writes it: the pages read the items from it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from auto_refunds.worklist.items import items_file, schema

    items_file(data_dir).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema()), items_file(data_dir))


def act(data_dir, action, user="clerk", version=None, when=0, item=ITEM, **values) -> int:
    if version is None:
        version = actions.fold(actions.of_item(data_dir, item)).version
    return actions.act(data_dir, item, action, values, user, version, exception=LATEST, now=T[when])


def test_each_action_is_appended_with_who_and_when_and_the_item_follows_them(data_dir):
    act(data_dir, "take", when=0)
    act(data_dir, "assign", to="lead", when=1)
    act(data_dir, "follow_up", on="2026-03-10", when=2)
    act(data_dir, "note", note="called the patient, card 4111 1111 1111 1111", when=3)
    resolved = act(data_dir, "resolve", resolution="REFUNDED_BY_CHECK", check_number="10452")
    state = actions.fold(actions.of_item(data_dir, ITEM))
    assert (state.assigned_to, state.follow_up_on) == ("lead", dt.date(2026, 3, 10))
    assert (state.resolution, state.resolved_by) == ("REFUNDED_BY_CHECK", "clerk")
    corrected = act(data_dir, "correct", user="lead", resolution="TRANSFERRED", when=5)
    reopened = act(data_dir, "reopen", user="lead", note="wrong account", when=6)

    log = actions.of_item(data_dir, ITEM)
    assert [(a["action"], a["acted_by"], a["acted_at"]) for a in log] == [
        ("take", "clerk", T[0].isoformat()),
        ("assign", "clerk", T[1].isoformat()),
        ("follow_up", "clerk", T[2].isoformat()),
        ("note", "clerk", T[3].isoformat()),
        ("resolve", "clerk", T[0].isoformat()),
        ("correct", "lead", T[5].isoformat()),
        ("reopen", "lead", T[6].isoformat()),
    ]
    # A correction is a new entry pointing at the one it corrects.
    assert [a["corrects"] for a in log if a["id"] == corrected] == [resolved]
    assert "4111 1111 1111 1111" not in log[3]["payload"] and "1111" in log[3]["payload"]
    assert actions.fold(log).resolution is None and reopened == log[-1]["id"]
    # The resolve and the correction resolved the item's latest exception too: the rebuild
    # reads those, and the latest is in force.
    kept = resolutions.of_credit(data_dir, "CR1")
    assert [(r["resolution"], r["note"], r["as_of_date"]) for r in kept] == [
        ("REFUNDED_BY_CHECK", "check 10452", "2026-03-03"),
        ("TRANSFERRED", "", "2026-03-03"),
    ]


def test_the_log_refuses_updates_and_deletes(data_dir):
    act(data_dir, "note", note="first")
    with closing(actions._connect(data_dir)) as con:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            con.execute("update item_actions set acted_by = 'someone'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            con.execute("delete from item_actions")
    assert [a["payload"] for a in actions.of_item(data_dir, ITEM)] == ['{"note": "first"}']


@pytest.mark.parametrize(
    ("action", "values", "message"),
    [
        ("resolve", {"resolution": "REFUNDED_BY_CHECK"}, "check number"),
        ("resolve", {"resolution": "OTHER"}, "needs a note"),
        ("resolve", {"resolution": "PAID_IN_GOLD"}, "unknown resolution"),
        ("assign", {"to": " "}, "name of the person"),
        ("follow_up", {"on": "next week"}, "YYYY-MM-DD"),
        ("note", {"note": ""}, "some text"),
        ("correct", {"resolution": "TRANSFERRED"}, "only a resolved item can be corrected"),
        ("reopen", {}, "only a resolved item"),
        ("delete", {}, "unknown action"),
    ],
)
def test_an_action_that_cannot_be_recorded_is_refused_and_nothing_is_kept(
    data_dir, action, values, message
):
    with pytest.raises(actions.ActionError, match=message):
        act(data_dir, action, **values)
    assert actions.of_item(data_dir, ITEM) == []
    assert resolutions.of_credit(data_dir, "CR1") == []


def test_an_action_on_an_item_someone_else_changed_since_is_refused_with_who_and_when(data_dir):
    seen = actions.fold(actions.of_item(data_dir, ITEM)).version  # the clerk loads the page
    act(data_dir, "assign", user="lead", to="lead", version=seen, when=1)
    with pytest.raises(actions.StaleItem) as refused:
        act(data_dir, "resolve", user="clerk", version=seen, resolution="KEPT_AS_CREDIT")
    assert (refused.value.by, refused.value.at) == ("lead", T[1].isoformat())
    assert "lead" in str(refused.value) and T[1].isoformat() in str(refused.value)
    assert [a["action"] for a in actions.of_item(data_dir, ITEM)] == ["assign"]
    assert resolutions.of_credit(data_dir, "CR1") == []
    # Loaded again, the clerk's action goes; one's own earlier action does not make a page stale.
    fresh = actions.fold(actions.of_item(data_dir, ITEM)).version
    act(data_dir, "take", version=fresh, when=2)
    act(data_dir, "note", version=fresh, note="mine", when=3)
    # Another item's actions do not make this one stale.
    act(data_dir, "note", user="lead", item=ItemKey("CR2", D1), note="other", version=0)
    act(data_dir, "follow_up", version=actions.fold(actions.of_item(data_dir, ITEM)).version)


def test_a_resolution_made_on_the_exceptions_page_since_makes_the_page_stale(data_dir):
    """The item's latest exception resolved by someone else after the page loaded (id 0: none
    then) refuses the action; the page loaded after it (its id) lets it through."""
    resolutions.record(data_dir, [LATEST], "KEPT_AS_CREDIT", "", "lead", now=T[1])
    with pytest.raises(actions.StaleItem) as refused:
        actions.act(data_dir, ITEM, "note", {"note": "x"}, "clerk", 0, LATEST, seen_resolution=0)
    assert (refused.value.by, refused.value.at) == ("lead", T[1].isoformat())
    (seen,) = [r["id"] for r in resolutions.of_credit(data_dir, "CR1")]
    actions.act(data_dir, ITEM, "note", {"note": "x"}, "clerk", 0, LATEST, seen_resolution=seen)


def test_the_items_page_shows_what_the_actions_say_and_my_items_with_follow_ups_due_on_top(
    data_dir,
):
    from auto_refunds.worklist.queries import ItemFilters, Reader, item, items_page

    today = dt.date(2026, 3, 20)
    write_items(
        data_dir,
        [
            _item("CR1", D1),
            _item("CR2", D1 - dt.timedelta(days=5)),
            _item("CR3", D1 - dt.timedelta(days=9)),
            _item(
                "CR4",
                D1,
                status="RESOLVED",
                resolution="OTHER",
                resolved_by="clerk",
                resolved_at=T[0].isoformat(),
            ),
        ],
    )
    for credit, first_seen in (("CR1", D1), ("CR2", D1 - dt.timedelta(days=5))):
        act(data_dir, "take", item=ItemKey(credit, first_seen), version=0)
    act(data_dir, "assign", item=ItemKey("CR3", D1 - dt.timedelta(days=9)), to="lead", version=0)
    act(data_dir, "follow_up", item=ITEM, on="2026-03-19")
    cr4 = ItemKey("CR4", D1)
    with pytest.raises(actions.ActionError, match="only a resolved item"):
        act(data_dir, "reopen", item=cr4, user="lead", version=0)
    # Resolved on the exceptions page, outside the log: the page says so.
    actions.act(data_dir, cr4, "reopen", {}, "lead", 0, resolved=True, now=T[1])

    with Reader(data_dir) as reader:
        everything = items_page(reader, ItemFilters(status="all"), today)
        mine = items_page(reader, ItemFilters(assignee="clerk"), today)
        cr4 = item(reader, "CR4", D1)
    assigned = {r["credit_id"]: (r["assigned_to"], r["version"]) for r in everything.rows}
    assert {k: v[0] for k, v in assigned.items()} == {
        "CR1": "clerk",
        "CR2": "clerk",
        "CR3": "lead",
        "CR4": None,
    }
    assert all(version > 0 for version in (v[1] for v in assigned.values()))
    # The follow-up of CR1 is due: back on top of the clerk's list, before the older CR2.
    assert [r["credit_id"] for r in mine.rows] == ["CR1", "CR2"]
    assert mine.rows[0]["follow_up_on"] == dt.date(2026, 3, 19)
    assert (cr4["status"], cr4["resolution"]) == ("OPEN", None)


def test_the_rebuilt_table_carries_the_actions_as_of_the_refresh(data_dir):
    """main.tickler_items' assigned_to and follow_up_on come from the log at the refresh."""
    import duckdb

    from auto_refunds.worklist import items

    act(data_dir, "take", version=0)
    act(data_dir, "follow_up", on="2026-03-09")
    with duckdb.connect() as con:
        con.execute(
            "create table main.tickler_refund_exceptions as select * from (values"
            " (date '2026-03-02', 'CR1', 'CL1', 'A1', -12.50::decimal(18,2),"
            f" '{NMT}', 'd', 'ELIGIBILITY', null::varchar)) as t(as_of_date, credit_id,"
            " client_id, account_id, credit_amount, reason_code, reason_detail, source,"
            " refund_id)"
        )
        con.execute(
            "create table main.credit_outcomes as"
            " select date '2026-03-02' as as_of_date, 'CR1' as credit_id"
        )
        con.execute(
            "create table main.refund_ledger_events"
            " (as_of_date date, refund_id varchar, status varchar)"
        )
        con.execute("create table main.refund_ledger (refund_id varchar, credit_id varchar)")
        assert items.rebuild(con, data_dir) == 1
        assert con.execute(
            "select credit_id, first_seen, credit_amount, status, assigned_to, follow_up_on"
            " from main.tickler_items"
        ).fetchall() == [("CR1", D1, Decimal("-12.50"), "OPEN", "clerk", dt.date(2026, 3, 9))]


# -- the pages, on a real API server ------------------------------------------------------

LEAD = ("lead", "user", "lead-pw")


@pytest.fixture(scope="module")
def server(airflow_db, tmp_path_factory):
    from worklist_server import USERS, ApiServer

    data_dir = tmp_path_factory.mktemp("work-item-actions") / "data"
    data_dir.mkdir()
    write_items(data_dir, [_item("CR1", D1), _item("CR2", D1)])
    log = tmp_path_factory.mktemp("api") / "api-server.log"
    api = ApiServer(airflow_db, data_dir, log, users=(*USERS, LEAD))
    api.data_dir = data_dir
    try:
        api.wait_ready()
        yield api
    finally:
        api.stop()


def _client(server, user: str):
    import httpx

    return httpx.Client(
        base_url=server.url,
        timeout=30,
        cookies={"_token": server.token(user)},
        headers={"Origin": server.url},
    )


def _version(client, credit_id: str) -> str:
    """The item's version and resolution as its page carries them in each form."""
    import re

    page = client.get(f"/auto-refunds/items/{credit_id}/{D1}")
    assert page.status_code == 200
    pattern = rf'name="item" value="{credit_id}\|{D1}\|(\d+\|\d+)"'
    return re.search(pattern, page.text).group(1)


def _post(client, credit_id: str, version: str, action: str, **values):
    return client.post(
        "/auto-refunds/items/act",
        data={"item": f"{credit_id}|{D1}|{version}", "action": action, **values},
    )


def test_a_clerk_works_an_item_from_the_pages(server):
    with _client(server, "clerk") as clerk:
        listed = clerk.get("/auto-refunds/items")
        assert listed.status_code == 200 and "assign to me" in listed.text
        taken = _post(clerk, "CR1", "0|0", "take")
        assert taken.status_code == 303 and "done=acted" in taken.headers["location"]
        mine = clerk.get("/auto-refunds/items", params={"mine": "1"})
        assert "CR1" in mine.text and "CR2" not in mine.text
        steps = [
            ("follow_up", {"on": "2026-03-09"}),
            ("note", {"note": "left a voicemail"}),
            ("assign", {"to": "lead"}),
        ]
        for action, values in steps:
            answer = _post(clerk, "CR1", _version(clerk, "CR1"), action, page="item", **values)
            assert answer.status_code == 303, answer.text
        no_check = _post(
            clerk, "CR1", _version(clerk, "CR1"), "resolve", resolution="REFUNDED_BY_CHECK"
        )
        assert no_check.status_code == 400 and "check number" in no_check.text
        resolved = _post(
            clerk,
            "CR1",
            _version(clerk, "CR1"),
            "resolve",
            resolution="REFUNDED_BY_CHECK",
            check_number="10452",
        )
        assert resolved.status_code == 303
        corrected = _post(clerk, "CR1", _version(clerk, "CR1"), "correct", resolution="TRANSFERRED")
        assert corrected.status_code == 303
        page = clerk.get(f"/auto-refunds/items/{'CR1'}/{D1}").text
    assert "Transferred to another account by clerk" in page
    assert 'Assigned to</th><td id="assigned-to">lead' in page
    log = actions.of_item(server.data_dir, ITEM)
    assert [a["action"] for a in log] == [
        "take",
        "follow_up",
        "note",
        "assign",
        "resolve",
        "correct",
    ]
    assert log[-1]["corrects"] == log[-2]["id"] and f"(corrects #{log[-2]['id']})" in page


def test_a_stale_page_is_refused_saying_who_changed_the_item_and_when(server):
    with _client(server, "clerk") as clerk, _client(server, "lead") as lead:
        seen = _version(clerk, "CR2")
        assert _post(lead, "CR2", _version(lead, "CR2"), "take").status_code == 303
        refused = _post(clerk, "CR2", seen, "note", note="too late")
        assert refused.status_code == 409
        assert "lead" in refused.text and "since you loaded the page" in refused.text
        (entry,) = actions.of_item(server.data_dir, ItemKey("CR2", D1))
        assert entry["acted_at"] in refused.text


def test_a_viewer_may_not_act_on_items(server):
    with _client(server, "viewer") as viewer:
        page = viewer.get(f"/auto-refunds/items/CR2/{D1}")
        assert page.status_code == 200 and "Assign to me" not in page.text
        assert _post(viewer, "CR2", "0|0", "take").status_code == 403


# -- refusals as pages of the app ---------------------------------------------------------

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def test_a_refused_action_is_a_page_with_the_form_as_typed_and_a_way_back(server):
    with _client(server, "clerk") as clerk:
        seen = _version(clerk, "CR2")
        answer = clerk.post(
            "/auto-refunds/items/act",
            data={
                "item": f"CR2|{D1}|{seen}",
                "action": "resolve",
                "resolution": "REFUNDED_BY_CHECK",
                "note": "mailed Tuesday",
                "page": "item",
            },
            headers=HTML,
        )
    assert answer.status_code == 400 and answer.headers["content-type"].startswith("text/html")
    page = answer.text
    assert 'id="problem"' in page and "check number" in page
    assert 'value="mailed Tuesday"' in page
    assert '<option value="REFUNDED_BY_CHECK" selected>' in page
    assert f'href="/auto-refunds/items/CR2/{D1}" id="back"' in page
    assert 'name="check_number"' in page and 'id="send-again"' in page


def test_a_stale_forbidden_or_unknown_item_is_a_page_of_the_app(server):
    with _client(server, "clerk") as clerk, _client(server, "lead") as lead:
        seen = _version(clerk, "CR2")
        assert _post(lead, "CR2", _version(lead, "CR2"), "note", note="called").status_code == 303
        stale = clerk.post(
            "/auto-refunds/items/act",
            data={"item": f"CR2|{D1}|{seen}", "action": "note", "note": "my words", "page": "item"},
            headers=HTML,
        )
        assert stale.status_code == 409 and "lead" in stale.text
        assert 'value="my words"' in stale.text and 'id="back"' in stale.text
        missing = clerk.get("/auto-refunds/items/NOPE/2026-03-02", headers=HTML)
        assert missing.status_code == 404 and 'id="back"' in missing.text
        assert "<html" in missing.text and "no such item" in missing.text
    with _client(server, "viewer") as viewer:
        forbidden = viewer.post(
            "/auto-refunds/items/act",
            data={"item": f"CR2|{D1}|0|0", "action": "take"},
            headers=HTML,
        )
        assert forbidden.status_code == 403 and 'id="back"' in forbidden.text
        assert "right to edit" in forbidden.text
        # A client of the API keeps its JSON.
        api = viewer.post(
            "/auto-refunds/items/act",
            data={"item": f"CR2|{D1}|0|0", "action": "take"},
            headers={"Accept": "application/json"},
        )
        assert api.status_code == 403 and "detail" in api.json()


def test_a_page_without_a_session_leads_to_the_login(server):
    import httpx

    with httpx.Client(base_url=server.url, timeout=30) as anonymous:
        for cookies in ({}, {"_token": "expired-or-forged"}):
            answer = anonymous.get("/auto-refunds/items?status=all", headers=HTML, cookies=cookies)
            assert answer.status_code == 303, answer.text[:200]
            location = answer.headers["location"]
            assert location.startswith("/api/v2/auth/login?next=")
            assert "auto-refunds%2Fitems%3Fstatus%3Dall" in location
        assert anonymous.get("/auto-refunds/items").status_code == 401
        login = anonymous.get(location)
        assert login.status_code in (302, 303, 307) and "/auth/" in login.headers["location"]
