"""The worklist's defences, against a real API server (the SimpleAuthManager with one user who
has no right on the DAG, ``worklist_auth``): where a form may come from, what the pages let a
browser do with them, what the address may carry, and who may read."""

from __future__ import annotations

import time

import httpx
import pytest
from worklist_server import REPO, USERS, ApiServer

from auto_refunds.card_numbers import contains

OUTSIDER = ("outsider", "viewer", "outsider-pw")
A_KEY = "2026-03-02|ELIGIBILITY|CR0000000001|NO_MATCHING_TRANSACTION|"
CARD = "4111 1111 1111 1111"


@pytest.fixture(scope="module")
def server(airflow_db, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("worklist-security") / "data"
    data_dir.mkdir()
    log = tmp_path_factory.mktemp("api") / "api-server.log"
    api = ApiServer(
        airflow_db,
        data_dir,
        log,
        users=(*USERS, OUTSIDER),
        env_extra={
            "AIRFLOW__CORE__AUTH_MANAGER": "worklist_auth.OutsiderAuthManager",
            "PYTHONPATH": f"{REPO / 'plugins'}:{REPO / 'tests'}",
        },
    )
    api.log_path = log
    try:
        api.wait_ready()
        yield api
    finally:
        api.stop()


def _resolve(client: httpx.Client, **headers) -> httpx.Response:
    return client.post(
        "/auto-refunds/exceptions/resolve",
        data={"key": A_KEY, "resolution": "OTHER", "note": "x"},
        headers=headers,
    )


def test_a_basic_authorization_header_does_not_skip_the_cross_origin_check(server):
    """Only a Bearer token is an identity the browser does not send by itself: with any other
    Authorization header, the cookie is still who the request acts as."""
    cookie = {"_token": server.token("clerk")}
    with httpx.Client(base_url=server.url, timeout=30, cookies=cookie) as client:
        answer = _resolve(
            client, Authorization="Basic Y2xlcms6Y2xlcmstcHc=", Origin="http://evil.example"
        )
        assert answer.status_code == 403, answer.text
        assert "Cross-site" in answer.text


@pytest.mark.parametrize(
    "origin",
    [
        "https://127.0.0.1:{port}",  # another scheme, same host and port
        "http://127.0.0.1:1",  # another port
        "http://localhost:{port}",  # another host
        "null",  # a sandboxed or file: page
    ],
)
def test_a_form_from_another_scheme_host_or_port_is_refused(server, origin):
    cookie = {"_token": server.token("clerk")}
    with httpx.Client(base_url=server.url, timeout=30, cookies=cookie) as client:
        answer = _resolve(client, Origin=origin.format(port=server.port))
        assert answer.status_code == 403, answer.text


def test_a_form_from_the_same_origin_and_a_bearer_token_pass_the_check(server):
    cookie = {"_token": server.token("clerk")}
    with httpx.Client(base_url=server.url, timeout=30, cookies=cookie) as client:
        same = _resolve(client, Origin=server.url)
        by_referer = _resolve(client, Referer=server.url + "/auto-refunds/exceptions")
    bearer = {"Authorization": f"Bearer {server.token('clerk')}"}
    with httpx.Client(base_url=server.url, timeout=30, headers=bearer) as client:
        api = _resolve(client, Origin="http://evil.example")
    # Past the check: the key names no exception of this empty data root.
    for answer in (same, by_referer, api):
        assert answer.status_code == 400 and "no such exception" in answer.text


def test_pages_forbid_framing_by_other_sites_and_content_sniffing(server):
    bearer = {"Authorization": f"Bearer {server.token('viewer')}"}
    with httpx.Client(base_url=server.url, timeout=30, headers=bearer) as client:
        for path in (
            "/auto-refunds/",
            "/auto-refunds/exceptions",
            "/auto-refunds/quality",
            "/auto-refunds/items",
            "/auto-refunds/static/worklist.js",
            "/auto-refunds/credits/CR1",
            "/auto-refunds/static/nothing",
        ):
            answer = client.get(path)
            csp = answer.headers.get("content-security-policy", "")
            assert "frame-ancestors 'self'" in csp, path
            assert "default-src 'self'" in csp and "script-src 'self'" in csp, path
            assert "unsafe-inline" not in csp, path
            assert answer.headers.get("x-frame-options") == "SAMEORIGIN", path
            assert answer.headers.get("x-content-type-options") == "nosniff", path
            # The policy allows no inline script or style: the pages carry none.
            if answer.headers.get("content-type", "").startswith("text/html"):
                for inline in ("<script>", " onchange=", " onclick=", " style="):
                    assert inline not in answer.text, (path, inline)


def test_the_notice_banner_shows_only_known_notices(server):
    bearer = {"Authorization": f"Bearer {server.token('viewer')}"}
    with httpx.Client(base_url=server.url, timeout=30, headers=bearer) as client:
        forged = client.get(
            "/auto-refunds/exceptions", params={"done": "Call 555-0100 to confirm your card"}
        )
        known = client.get("/auto-refunds/exceptions", params={"done": "resolved", "count": "2"})
    assert forged.status_code == 200
    assert "555-0100" not in forged.text and 'id="notice"' not in forged.text
    assert '<p class="notice" id="notice">2 exceptions marked resolved.</p>' in known.text


@pytest.mark.parametrize(
    "path",
    [
        "/auto-refunds/?date=0001-01-01",
        "/auto-refunds/?date=9999-12-31",
        "/auto-refunds/exceptions?start=0001-01-01",
        "/auto-refunds/exceptions.csv?start=0001-01-01&end=9999-12-31",
        "/auto-refunds/quality?kind=daily&date=0001-01-01",
    ],
)
def test_a_date_out_of_range_is_a_clear_400(server, path):
    bearer = {"Authorization": f"Bearer {server.token('viewer')}"}
    with httpx.Client(base_url=server.url, timeout=30, headers=bearer) as client:
        answer = client.get(path)
    assert answer.status_code == 400, (answer.status_code, answer.text[:300])
    assert "date" in answer.json()["detail"]


def test_a_card_number_in_the_address_is_refused_and_kept_out_of_the_log(server):
    bearer = {"Authorization": f"Bearer {server.token('viewer')}"}
    with httpx.Client(base_url=server.url, timeout=30, headers=bearer) as client:
        answers = [
            client.get("/auto-refunds/credits", params={"credit_id": CARD}),
            client.get("/auto-refunds/credits/" + CARD.replace(" ", "")),
            client.get("/auto-refunds/credits/" + CARD.replace(" ", "-")),
            client.get("/auto-refunds/exceptions", params={"credit": CARD}),
            client.get("/auto-refunds/?date=" + CARD.replace(" ", "%20")),
        ]
        ordinary = client.get("/auto-refunds/credits", params={"credit_id": "CR0000000004"})
    for answer in answers:
        assert answer.status_code == 400, (answer.request.url, answer.status_code)
        assert "card number" in answer.text
        assert not contains(answer.text), answer.text
    assert ordinary.status_code == 303
    # The access log line of each request is written once its answer is sent.
    time.sleep(1)
    log = server.log_path.read_text(errors="replace")
    assert "/auto-refunds/credits" in log, "the API server logged no access line"
    assert not contains(log.replace("+", " ").replace("%20", " ")), [
        line for line in log.splitlines() if contains(line.replace("+", " ").replace("%20", " "))
    ]


def test_reading_needs_read_access_to_the_dag(server):
    outsider = {"Authorization": f"Bearer {server.token('outsider')}"}
    viewer = {"Authorization": f"Bearer {server.token('viewer')}"}
    with httpx.Client(base_url=server.url, timeout=30, headers=outsider) as client:
        for path in (
            "/auto-refunds/",
            "/auto-refunds/items",
            "/auto-refunds/exceptions",
            "/auto-refunds/exceptions.csv",
            "/auto-refunds/refunds-due",
            "/auto-refunds/credits/CR1",
            "/auto-refunds/quality",
            "/auto-refunds/static/worklist.css",
        ):
            assert client.get(path).status_code == 403, path
        assert _resolve(client, Origin=server.url).status_code == 403
    with httpx.Client(base_url=server.url, timeout=30, headers=viewer) as client:
        assert client.get("/auto-refunds/").status_code == 200
        assert _resolve(client, Origin=server.url).status_code == 403
