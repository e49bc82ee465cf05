"""The worklist's refusals as pages of the app.

A person's browser asks for HTML: a refusal (a bad date, a resolution without what it needs, an
item changed by someone else, a missing right, an unknown address) answers a page of the worklist
with the reason and a way back, and a refused form comes back filled with what was typed and the
rows that were ticked, to correct and send again. A page asked for without a session (none, or
expired) leads to Airflow's login, which brings the person back to the page. A client of the API
(a Bearer token, or an Accept header without text/html) keeps the JSON answer FastAPI gives.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from fastapi import Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.exceptions import HTTPException

MOUNT = "/auto-refunds"

TITLES = {
    400: "This cannot be done as asked",
    401: "Please log in again",
    403: "Not allowed",
    404: "Not found",
    409: "Someone else changed this item",
    422: "This cannot be done as asked",
}


def wants_html(request: Request) -> bool:
    scheme, _, _ = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        return False
    return "text/html" in request.headers.get("accept", "")


def login_url(request: Request) -> str:
    """Airflow's own login route, whichever auth manager is configured: it sends the person to the
    auth manager's login page and, once logged in, back to ``next``."""
    root = request.scope.get("root_path", "").rstrip("/")
    airflow_root = root[: -len(MOUNT)] if root.endswith(MOUNT) else ""
    return f"{airflow_root}/api/v2/auth/login?" + urlencode({"next": str(request.url)})


def _back(request: Request, base: str, form: dict) -> str:
    """Where the refused request came from: the list or item the form was posted from, else the
    page that linked here (same site only), else the overview."""
    if request.method == "POST":
        query = form.get("back", "")
        query = query.lstrip("?") if "\n" not in query else ""
        if request.url.path.endswith("/items/act"):
            parts = form.get("item", "").split("|")
            if form.get("page") == "item" and len(parts) >= 4:
                from urllib.parse import quote

                credit_id = "|".join(parts[:-3])
                return f"{base}/items/{quote(credit_id, safe='')}/{parts[-3]}"
            return f"{base}/items" + (f"?{query}" if query else "")
        page = form.get("to") if form.get("to") in ("exceptions", "items") else "exceptions"
        return f"{base}/{page}" + (f"?{query}" if query else "")
    referer = request.headers.get("referer", "")
    own = urlsplit(str(request.base_url))
    parts = urlsplit(referer)
    same_site = (parts.scheme, parts.netloc) == (own.scheme, own.netloc)
    if referer and same_site and parts.path.startswith(base + "/") and referer != str(request.url):
        return parts.path + (f"?{parts.query}" if parts.query else "")
    return f"{base}/"


async def _form_of(request: Request) -> tuple[dict, list[str]]:
    if request.method != "POST":
        return {}, []
    try:
        data = await request.form()
    except Exception:  # a body that is no form: nothing to keep
        return {}, []
    fields = {k: v for k, v in data.items() if isinstance(v, str) and k != "key"}
    keys = [k for k in data.getlist("key") if isinstance(k, str)]
    return fields, keys


async def _page(request: Request, status: int, message: str) -> HTMLResponse:
    from auto_refunds.worklist.reasons import reason_label
    from auto_refunds.worklist.rendering import templates
    from auto_refunds.worklist.resolutions import RESOLUTIONS

    base = request.scope.get("root_path", "").rstrip("/")
    fields, keys = await _form_of(request)
    kind = None
    if request.method == "POST" and status in (400, 409, 422):
        if request.url.path.endswith("/exceptions/resolve"):
            kind = "resolve"
        elif request.url.path.endswith("/items/act"):
            kind = "act"
    ticked = [(k, *(k.split("|") + ["", "", ""])[2:4]) for k in keys]
    body = (
        templates()
        .get_template("error.html")
        .render(
            base=base,
            user="",
            may_resolve=False,
            nav="",
            status=status,
            title=TITLES.get(status, "Something went wrong"),
            message=message,
            back=_back(request, base, fields),
            kind=kind,
            action=request.url.path,
            form=fields,
            ticked=ticked,
            resolutions=RESOLUTIONS,
            reason_label=reason_label,
            login=login_url(request) if status == 401 else None,
        )
    )
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


async def http_error(request: Request, error: HTTPException):
    if not wants_html(request):
        return await http_exception_handler(request, error)
    # No session, an expired one (401), or a token Airflow cannot read (403 with its own words).
    no_session = error.status_code == 401 or error.detail == "Invalid JWT token"
    if no_session and request.method in ("GET", "HEAD"):
        return RedirectResponse(login_url(request), status_code=303)
    detail = error.detail if isinstance(error.detail, str) else "The request was refused."
    return await _page(request, 401 if no_session else error.status_code, detail)


async def validation_error(request: Request, error: RequestValidationError):
    if not wants_html(request):
        return await request_validation_exception_handler(request, error)
    return await _page(request, 422, "Some of what was sent is not in the expected form.")
