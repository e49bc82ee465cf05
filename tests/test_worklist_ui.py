"""The worklist in the Airflow UI, end to end: a real API server with the SimpleAuthManager (the
embedded default), Debian's Chromium driven by Playwright, and a DAG run writing meanwhile.

Screenshots go to test-output/worklist/ (git-ignored).

Over 300 lines: one browser session plays the whole day, step by step.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import threading
import time
from pathlib import Path

import httpx
import pytest
from worklist_server import REPO, ApiServer, data_env, small_worklist

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = REPO / "test-output" / "worklist"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PAGES = [
    "/auto-refunds/",
    "/auto-refunds/?date=2026-03-02",
    "/auto-refunds/items",
    "/auto-refunds/items?status=all&sort=amount&dir=desc&overdue=1",
    "/auto-refunds/exceptions",
    "/auto-refunds/exceptions?start=2026-03-02&end=2026-03-03&status=all&sort=amount&dir=desc",
    "/auto-refunds/exceptions.csv?start=2026-03-02&end=2026-03-03",
    "/auto-refunds/refunds-due?start=2026-03-02&end=2026-03-03",
    "/auto-refunds/refunds-due.csv",
    "/auto-refunds/credits?credit_id=CR0000000004",
    "/auto-refunds/credits/CR0000000004",
    "/auto-refunds/quality",
    "/auto-refunds/quality?kind=daily&date=2026-03-02",
    "/auto-refunds/static/worklist.css",
    "/auto-refunds/static/worklist.js",
]


@pytest.fixture(scope="module")
def worklist(tmp_path_factory):
    return small_worklist(tmp_path_factory)


@pytest.fixture(scope="module")
def server(worklist, airflow_db, tmp_path_factory):
    data_dir, _ = worklist
    api = ApiServer(airflow_db, data_dir, tmp_path_factory.mktemp("api") / "api-server.log")
    try:
        api.wait_ready()
        yield api
    finally:
        api.stop()


def _bearer(server, user: str) -> dict:
    return {"Authorization": f"Bearer {server.token(user)}"}


def test_anonymous_requests_get_401_on_every_route(server):
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for path in PAGES + ["/auto-refunds/static/nothing", "/auto-refunds/credits/X"]:
            assert client.get(path).status_code == 401, path
        answer = client.post(
            "/auto-refunds/exceptions/resolve",
            data={
                "key": "2026-03-02|ELIGIBILITY|CR0000000001|NO_MATCHING_TRANSACTION|",
                "resolution": "OTHER",
                "note": "x",
            },
        )
        assert answer.status_code == 401
        bad = client.get("/auto-refunds/", cookies={"_token": "not-a-token"})
        assert bad.status_code in (401, 403)


def test_a_viewer_reads_every_page_but_cannot_resolve(server, worklist):
    headers = _bearer(server, "viewer")
    with httpx.Client(base_url=server.url, timeout=60, headers=headers) as client:
        for path in PAGES:
            answer = client.get(path, follow_redirects=True)
            assert answer.status_code == 200, (path, answer.text[:300])
        page = client.get("/auto-refunds/exceptions").text
        assert 'name="key"' not in page and "(read only)" in page
        answer = client.post(
            "/auto-refunds/exceptions/resolve",
            data={
                "key": "2026-03-02|ELIGIBILITY|CR0000000001|NO_MATCHING_TRANSACTION|",
                "resolution": "OTHER",
                "note": "x",
            },
        )
        assert answer.status_code == 403


def test_a_resolution_posted_from_another_site_is_refused(server):
    token = server.token("clerk")
    with httpx.Client(base_url=server.url, timeout=30, cookies={"_token": token}) as client:
        answer = client.post(
            "/auto-refunds/exceptions/resolve",
            data={
                "key": "2026-03-02|ELIGIBILITY|CR0000000001|NO_MATCHING_TRANSACTION|",
                "resolution": "OTHER",
                "note": "x",
            },
            headers={"Origin": "http://evil.example"},
        )
        assert answer.status_code == 403
    with httpx.Client(base_url=server.url, timeout=30, headers=_bearer(server, "clerk")) as client:
        nothing = client.post("/auto-refunds/exceptions/resolve", data={"resolution": "OTHER"})
        assert nothing.status_code == 400 and "no exception selected" in nothing.text
        unknown = client.post(
            "/auto-refunds/exceptions/resolve",
            data={
                "key": "2026-03-02|ELIGIBILITY|NOPE|CARD_EXPIRED|",
                "resolution": "OTHER",
                "note": "x",
            },
        )
        assert unknown.status_code == 400 and "no such exception" in unknown.text


def _count(html: str, marker: str) -> int:
    start = html.index(marker) + len(marker)
    return int(html[start:].split("<", 1)[0].split()[0].replace(",", ""))


def test_the_work_items_page_lists_open_items_and_resolves_one(server):
    headers = _bearer(server, "clerk")
    with httpx.Client(base_url=server.url, timeout=60, headers=headers) as client:
        page = client.get("/auto-refunds/items").text
        open_items = _count(page, '<span id="row-count">')
        assert open_items > 0 and '<span class="badge">open</span>' in page
        assert '<span class="badge">closed</span>' not in page
        assert _count(client.get("/auto-refunds/").text, 'id="items-open">') == open_items
        marker = 'name="key" value="'
        start = page.index(marker) + len(marker)
        key = page[start : page.index('"', start)].replace("&#124;", "|")
        answer = client.post(
            "/auto-refunds/exceptions/resolve",
            data={"key": key, "resolution": "KEPT_AS_CREDIT", "note": "", "to": "items"},
        )
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/auto-refunds/items?")
        after = client.get(answer.headers["location"]).text
        assert '<p class="notice" id="notice">1 exception marked resolved.</p>' in after
        assert _count(after, '<span id="row-count">') == open_items - 1


def _frame(page):
    page.wait_for_selector("iframe", timeout=60_000)
    return page.frame_locator("iframe").first


def test_a_billing_clerk_works_the_queue_in_a_real_browser(server, worklist):
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs it with apt-get")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import expect, sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    data_dir, dates = worklist
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(
                viewport={"width": 1440, "height": 1000}, accept_downloads=True
            )
            page = context.new_page()
            page.on("dialog", lambda dialog: dialog.accept())
            page.set_default_timeout(60_000)

            # Log in through Airflow's own login page.
            page.goto(server.url + "/")
            page.get_by_label("Username").fill("clerk")
            page.get_by_label("Password").fill("clerk-pw")
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(lambda url: "/auth/login" not in url)

            # The Auto-Refunds entry of the navigation shows the overview inside the UI.
            page.goto(server.url + "/plugin/auto-refunds")
            view = _frame(page)
            expect(view.locator("h1")).to_have_text(f"Overview of {dates[1]}")
            expect(view.locator("#credits")).not_to_have_text("0")
            expect(view.locator("figure.chart")).to_have_count(2)
            page.screenshot(path=str(SHOTS / "1-overview.png"), full_page=True)

            # Filter the open exceptions of the first date by a reason.
            view.get_by_role("link", name="Refund exceptions").click()
            view.locator('input[name="start"]').fill(str(dates[0]))
            view.locator('input[name="end"]').fill(str(dates[0]))
            view.locator('select[name="reason"]').select_option("NO_MATCHING_TRANSACTION")
            view.get_by_role("button", name="Filter").click()
            expect(view.locator("#queue tbody tr").first).to_contain_text("NO_MATCHING_TRANSACTION")
            reasons = view.locator("#queue tbody tr td:nth-child(7) .code").all_inner_texts()
            assert reasons and set(reasons) == {"NO_MATCHING_TRANSACTION"}
            count_before = int(view.locator("#row-count").inner_text().split()[0])
            page.screenshot(path=str(SHOTS / "2-exceptions-filtered.png"), full_page=True)

            # Resolve the first one.
            first = view.locator("#queue tbody tr").first
            credit_id = first.locator("td:nth-child(3)").inner_text()
            first.locator('input[name="key"]').check()
            view.locator('select[name="resolution"]').select_option("REFUNDED_BY_CHECK")
            view.locator('input[name="note"]').fill("check 10452 mailed")
            view.locator("#resolve").click()
            expect(view.locator("#notice")).to_have_text("1 exception marked resolved.")
            expect(view.locator("#row-count")).to_have_text(f"{count_before - 1} rows")
            assert credit_id not in view.locator("#queue").inner_text()
            page.screenshot(path=str(SHOTS / "3-resolved.png"), full_page=True)

            # The CSV holds exactly the rows the filters select.
            with page.expect_download() as download_info:
                view.locator("#csv").click()
            rows = list(csv.DictReader(io.StringIO(Path(download_info.value.path()).read_text())))
            assert len(rows) == count_before - 1
            assert {row["reason_code"] for row in rows} == {"NO_MATCHING_TRANSACTION"}
            assert {row["as_of_date"] for row in rows} == {str(dates[0])}
            assert credit_id not in {row["credit_id"] for row in rows}

            # Resolved ones are one filter away, with who resolved them.
            view.locator('select[name="status"]').select_option("resolved")
            view.get_by_role("button", name="Filter").click()
            expect(view.locator("#queue tbody")).to_contain_text(credit_id)
            expect(view.locator("#queue tbody")).to_contain_text("Refunded by check")
            expect(view.locator("#queue tbody")).to_contain_text("clerk")

            # The credit's story: outcomes, and the resolution with its note.
            view.get_by_role("link", name=credit_id).first.click()
            expect(view.locator("#credit-id")).to_have_text(credit_id)
            expect(view.locator("#outcomes tbody")).to_contain_text("NO_MATCHING_TRANSACTION")
            expect(view.locator("#resolutions tbody")).to_contain_text("check 10452 mailed")
            expect(view.locator("#resolutions tbody")).to_contain_text("clerk")
            page.screenshot(path=str(SHOTS / "4-credit-story.png"), full_page=True)

            # A refunded credit's story shows its ledger events with file and line, and posting.
            refunded = _a_refunded_credit(data_dir)
            view.locator('input[name="credit_id"]').fill(refunded)
            view.get_by_role("button", name="Open credit").click()
            expect(view.locator("#events tbody tr").first).to_contain_text("SENT")
            expect(view.locator("#events tbody tr").last).to_contain_text("REFUNDED")
            expect(view.locator("#events tbody")).to_contain_text("payments_")
            expect(view.locator("#postings tbody tr")).to_have_count(1)
            page.screenshot(path=str(SHOTS / "5-refunded-credit.png"), full_page=True)

            # The quality gate of a run.
            view.get_by_role("link", name="Quality gate").click()
            expect(view.locator("section.suite").first).to_be_visible()
            assert view.locator("section.suite.fail").count() == 0
            page.screenshot(path=str(SHOTS / "6-quality.png"), full_page=True)

            # Nothing the pages load comes from outside the server.
            assert _only_local_requests(page, server.url)
        finally:
            browser.close()


def _only_local_requests(page, base_url: str) -> bool:
    seen = []
    page.on("request", lambda request: seen.append(request.url))
    page.reload()
    _frame(page).locator("h1").wait_for()
    return all(url.startswith((base_url, "data:", "blob:", "about:")) for url in seen)


def _a_refunded_credit(data_dir: Path) -> str:
    from auto_refunds.worklist.queries import Reader

    with Reader(data_dir) as reader:
        reader.relation("ledger_events", dt.date(2000, 1, 1), dt.date(2100, 1, 1))
        return reader.con.execute(
            "select min(credit_id) from ledger_events where status = 'REFUNDED'"
        ).fetchone()[0]


def test_every_page_answers_while_a_dag_run_writes(server, worklist):
    """A run holds the warehouse from its first step to its last; the pages read snapshots and
    the resolutions store, so they answer meanwhile, and a resolution is taken."""
    from auto_refunds import daily
    from auto_refunds.settings import Settings

    data_dir, dates = worklist
    with data_env(data_dir):
        settings = Settings.from_env()
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["published"] = daily.run_all(dates[2], settings)
        except BaseException as error:  # noqa: BLE001 - reported by the test below
            outcome["error"] = error

    headers = _bearer(server, "clerk")
    answers = []
    runner = threading.Thread(target=run)
    with httpx.Client(base_url=server.url, timeout=30, headers=headers) as client:
        runner.start()
        resolved = False
        while runner.is_alive():
            for path in PAGES:
                started = time.monotonic()
                answer = client.get(path, follow_redirects=True)
                answers.append(
                    (path, answer.status_code, time.monotonic() - started, runner.is_alive())
                )
            if not resolved:
                answer = client.post(
                    "/auto-refunds/exceptions/resolve",
                    data={
                        "key": _an_open_exception(client, dates[1]),
                        "resolution": "KEPT_AS_CREDIT",
                        "note": "patient asked",
                    },
                )
                answers.append(("resolve", answer.status_code, 0, runner.is_alive()))
                resolved = answer.status_code == 303
        runner.join()
        assert "error" not in outcome, outcome.get("error")
        during = [a for a in answers if a[3]]
        assert len(during) >= len(PAGES), "the run ended before the pages were asked"
        assert all(status in (200, 303) for _, status, _, _ in answers), [
            a for a in answers if a[1] not in (200, 303)
        ]
        assert resolved
        # The run's refresh wrote its snapshot: the overview of the new date is there.
        overview = client.get("/auto-refunds/", params={"date": str(dates[2])}).text
        assert f"Overview of {dates[2]}" in overview


def _an_open_exception(client, day: dt.date) -> str:
    page = client.get("/auto-refunds/exceptions", params={"start": str(day), "end": str(day)})
    marker = 'name="key" value="'
    start = page.text.index(marker) + len(marker)
    return page.text[start : page.text.index('"', start)].replace("&#124;", "|")


def _inside(box, width: int, height: int) -> bool:
    return (
        box is not None
        and box["x"] >= 0
        and box["y"] >= 0
        and box["x"] + box["width"] <= width
        and box["y"] + box["height"] <= height
    )


def test_the_lists_fit_a_laptop_and_a_phone_and_follow_airflows_theme(server):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            context.add_cookies(
                [{"name": "_token", "value": server.token("clerk"), "url": server.url}]
            )
            page = context.new_page()
            page.set_default_timeout(60_000)
            # At 1280x800 the first row's status, note, assignee and reason are on screen.
            for path, cells in (
                ("/auto-refunds/items?status=all", ("status", "assigned", "note", "reason")),
                ("/auto-refunds/exceptions?status=all", ("status", "note", "reason")),
            ):
                page.goto(server.url + path)
                row = page.locator("table.queue tbody tr").first
                for cell in cells:
                    box = row.locator(f"td.{cell}").bounding_box()
                    assert _inside(box, 1280, 800), (path, cell, box)
                assert row.locator("td.detail details").count() in (0, 1)
            # At 400 px wide nothing runs off the side and the main actions are reachable.
            page.set_viewport_size({"width": 400, "height": 800})
            page.goto(server.url + "/auto-refunds/items")
            assert page.evaluate("document.documentElement.scrollWidth") <= 400
            for target in (
                page.get_by_role("button", name="Filter"),
                page.locator("table.queue tbody tr").first.locator("a.work"),
                page.locator("#resolve"),
            ):
                target.scroll_into_view_if_needed()
                box = target.bounding_box()
                assert box and box["x"] >= 0 and box["x"] + box["width"] <= 400, box
            # Airflow's dark theme, kept in its localStorage, is the pages' too.
            assert page.evaluate("document.documentElement.dataset.theme") in ("light", "dark")
            page.evaluate("localStorage.setItem('theme', 'dark')")
            page.reload()
            assert page.evaluate("document.documentElement.dataset.theme") == "dark"
            background = page.evaluate("getComputedStyle(document.body).backgroundColor")
            assert background == "rgb(17, 24, 39)", background
            page.evaluate("localStorage.setItem('theme', 'light')")
            page.reload()
            assert page.evaluate("document.documentElement.dataset.theme") == "light"
        finally:
            browser.close()


def test_a_refused_resolution_comes_back_as_a_page_with_the_ticked_rows(server):
    html = {"Accept": "text/html", "Origin": server.url}
    token = server.token("clerk")
    with httpx.Client(base_url=server.url, timeout=60, cookies={"_token": token}) as client:
        page = client.get("/auto-refunds/exceptions").text
        marker = 'name="key" value="'
        start = page.index(marker) + len(marker)
        key = page[start : page.index('"', start)].replace("&#124;", "|")
        answer = client.post(
            "/auto-refunds/exceptions/resolve",
            data={"key": key, "resolution": "OTHER", "note": "", "back": "status=open&size=50"},
            headers=html,
        )
        assert answer.status_code == 400 and "<html" in answer.text
        assert "needs a note" in answer.text or "note" in answer.text
        assert f'name="key" value="{key}" checked' in answer.text.replace("&#124;", "|")
        assert '<option value="OTHER" selected>' in answer.text
        assert 'href="/auto-refunds/exceptions?status=open&amp;size=50" id="back"' in answer.text
        bad_date = client.get("/auto-refunds/exceptions?start=2026-13-01", headers=html)
        assert bad_date.status_code == 400 and "YYYY-MM-DD" in bad_date.text
        assert 'id="back"' in bad_date.text and "<html" in bad_date.text
        api = client.get("/auto-refunds/exceptions?start=2026-13-01")
        assert api.status_code == 400 and "date" in api.json()["detail"]


def test_a_date_with_nothing_published_says_so(server):
    early = "2020-01-01"
    with httpx.Client(base_url=server.url, timeout=60, headers=_bearer(server, "viewer")) as client:
        overview = client.get("/auto-refunds/", params={"date": early}).text
        assert f"Nothing was published for {early}" in overview
        assert "Overview of" not in overview
        for path in ("/auto-refunds/exceptions", "/auto-refunds/refunds-due"):
            page = client.get(path, params={"start": early, "end": early}).text
            assert f'id="empty">Nothing was published for {early}.' in page, path
