"""The worklist's FastAPI app, mounted by Airflow's API server under ``/auto-refunds``.

Every route depends on an authenticated Airflow user, through Airflow's auth manager (whichever
is configured: SimpleAuthManager, FAB, ...): reading needs any logged-in user; resolving needs the
right to edit the ``auto_refunds`` DAG (``is_authorized_dag`` with PUT), which is the USER role
and above in the SimpleAuthManager and, in FAB, User, Op, Admin or any role granted
``can_edit on DAG:auto_refunds`` (docs/worklist.md).
"""


import datetime as dt
import shutil
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode, urlsplit

from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.background import BackgroundTask

HERE = Path(__file__).parent
STATIC = {
    "worklist.css": "text/css; charset=utf-8",
    "worklist.js": "text/javascript; charset=utf-8",
}
DAG_ID = "auto_refunds"


def _templates():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["money"] = _money
    env.filters["dollars"] = _dollars
    return env


def _money(value) -> str:
    if value is None or value == "":
        return ""
    return f"{Decimal(value):,.2f}"


def _dollars(value) -> str:
    amount = Decimal(value or 0)
    return f"{'-' if amount < 0 else ''}${abs(amount):,.2f}"


def _data_dir() -> Path:
    from auto_refunds.settings import Settings

    return Settings.from_env().data_dir


def _date(text: str | None, default: dt.date | None) -> dt.date | None:
    if not text:
        return default
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise HTTPException(400, f"not a date (YYYY-MM-DD): {text!r}") from None


def create_app() -> FastAPI:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails
    from airflow.api_fastapi.core_api.security import GetUserDep, requires_authenticated

    def may_resolve(user) -> bool:
        return get_auth_manager().is_authorized_dag(
            method="PUT", details=DagDetails(id=DAG_ID), user=user
        )

    def requires_resolver(request: Request, user: GetUserDep):
        if not may_resolve(user):
            raise HTTPException(403, "Resolving exceptions needs the right to edit the "
                                     f"{DAG_ID} DAG (role USER or above)")
        # The session cookie goes with any request the browser makes: a form posted from
        # another site must not resolve anything.
        if not request.headers.get("authorization"):
            origin = request.headers.get("origin") or request.headers.get("referer") or ""
            if urlsplit(origin).netloc != request.headers.get("host"):
                raise HTTPException(403, "Cross-site request refused")
        return user

    app = FastAPI(
        title="Auto-Refunds worklist",
        dependencies=[Depends(requires_authenticated())],
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    env = _templates()

    def render(request: Request, template: str, user, **context) -> HTMLResponse:
        from auto_refunds.worklist import snapshot

        body = env.get_template(template).render(
            base=request.scope.get("root_path", "").rstrip("/"),
            user=user.get_name(),
            may_resolve=may_resolve(user),
            snapshot_dates=snapshot.snapshot_dates(_data_dir()),
            request_query=str(request.url.query),
            nav=template.removesuffix(".html"),
            **context,
        )
        return HTMLResponse(body, headers={"Cache-Control": "no-store"})

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in STATIC:
            raise HTTPException(404)
        return Response(
            (HERE / "static" / name).read_bytes(),
            media_type=STATIC[name],
            headers={"Cache-Control": "private, max-age=300"},
        )

    @app.get("/", response_class=HTMLResponse)
    def overview(request: Request, user: GetUserDep, date: str | None = None):
        from auto_refunds.worklist import charts
        from auto_refunds.worklist.queries import Reader

        with Reader(_data_dir()) as reader:
            dates = reader.dates()
            day = _date(date, dates[-1] if dates else None)
            facts = reader.overview(day) if day else None
        chart_html = []
        if facts:
            chart_html = [
                charts.grouped_bars(
                    "Refunds per day: sent, approved, declined",
                    facts["chart_days"],
                    facts["refund_series"],
                ),
                charts.stacked_bars(
                    "Exceptions per day, by reason", facts["chart_days"],
                    facts["exception_series"],
                ),
            ]
        return render(request, "overview.html", user, day=day, facts=facts, charts=chart_html)

    def _filters(kind: str, params: dict, dates: list[dt.date]):
        from auto_refunds.worklist.queries import PAGE_SIZES, SORTS, STATUSES, Filters

        latest = dates[-1] if dates else dt.date.today()
        end = _date(params.get("end"), latest)
        start = _date(params.get("start"), end)
        if start > end:
            start, end = end, start
        status = params.get("status") or "open"
        sort = params.get("sort") or "date"
        try:
            page = max(1, int(params.get("page") or 1))
            size = int(params.get("size") or PAGE_SIZES[0])
        except ValueError:
            raise HTTPException(400, "page and size are whole numbers") from None
        return Filters(
            start=start,
            end=end,
            client=(params.get("client") or "").strip(),
            reason=(params.get("reason") or "").strip(),
            source=(params.get("source") or "").strip(),
            status=status if status in STATUSES else "open",
            credit=(params.get("credit") or "").strip(),
            sort=sort if sort in SORTS[kind] else "date",
            descending=params.get("dir") == "desc",
            page=page,
            page_size=size if size in PAGE_SIZES else PAGE_SIZES[0],
        )

    def queue_page(kind: str, template: str, request: Request, user):
        from auto_refunds.worklist.queries import PAGE_SIZES, SORTS, SOURCES, Reader
        from auto_refunds.worklist.resolutions import RESOLUTIONS

        params = dict(request.query_params)
        with Reader(_data_dir()) as reader:
            filters = _filters(kind, params, reader.dates())
            page = reader.page(kind, filters)

        def link(**changes) -> str:
            merged = {k: v for k, v in params.items() if v} | {
                k: v for k, v in changes.items() if v is not None
            }
            return "?" + urlencode(merged)

        return render(
            request,
            template,
            user,
            page=page,
            f=filters,
            link=link,
            sorts=SORTS[kind],
            sources=SOURCES,
            page_sizes=PAGE_SIZES,
            resolutions=RESOLUTIONS,
            done=params.get("done"),
            csv_query=urlencode({k: v for k, v in params.items() if v and k not in ("page",)}),
        )

    def queue_csv(kind: str, request: Request) -> FileResponse:
        from auto_refunds.worklist.queries import Reader

        data_dir = _data_dir()
        folder = Path(tempfile.mkdtemp(prefix="worklist-csv-"))
        try:
            with Reader(data_dir) as reader:
                filters = _filters(kind, dict(request.query_params), reader.dates())
                path = reader.csv(kind, filters, folder)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        name = f"{kind}_{filters.start:%Y%m%d}_{filters.end:%Y%m%d}.csv"
        return FileResponse(
            path,
            media_type="text/csv; charset=utf-8",
            filename=name,
            headers={"Cache-Control": "no-store"},
            background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True),
        )

    @app.get("/exceptions", response_class=HTMLResponse)
    def exceptions(request: Request, user: GetUserDep):
        return queue_page("exceptions", "exceptions.html", request, user)

    @app.get("/exceptions.csv")
    def exceptions_csv(request: Request):
        return queue_csv("exceptions", request)

    @app.get("/refunds-due", response_class=HTMLResponse)
    def refunds_due(request: Request, user: GetUserDep):
        return queue_page("refunds_due", "refunds_due.html", request, user)

    @app.get("/refunds-due.csv")
    def refunds_due_csv(request: Request):
        return queue_csv("refunds_due", request)

    @app.post("/exceptions/resolve")
    def resolve(
        request: Request,
        user: Annotated[object, Depends(requires_resolver)],
        key: Annotated[list[str] | None, Form()] = None,
        resolution: Annotated[str, Form()] = "",
        note: Annotated[str, Form()] = "",
        back: Annotated[str, Form()] = "",
    ):
        from auto_refunds.worklist import resolutions
        from auto_refunds.worklist.queries import Reader

        try:
            keys = [resolutions.ExceptionKey.decode(k) for k in key or []]
        except ValueError as error:
            raise HTTPException(400, str(error)) from None
        data_dir = _data_dir()
        with Reader(data_dir) as reader:
            unknown = reader.exception_keys_exist(keys)
        if unknown:
            raise HTTPException(400, f"no such exception: {', '.join(unknown[:5])}")
        try:
            count = resolutions.record(data_dir, keys, resolution, note, user.get_name())
        except resolutions.ResolutionError as error:
            raise HTTPException(400, str(error)) from None
        query = back.lstrip("?") if back and "\n" not in back else ""
        query = "&".join(p for p in query.split("&") if p and not p.startswith("done="))
        base = request.scope.get("root_path", "").rstrip("/")
        target = f"{base}/exceptions?{query}{'&' if query else ''}done={count}"
        return RedirectResponse(target, status_code=303)

    @app.get("/credits", response_class=HTMLResponse)
    def find_credit(request: Request, user: GetUserDep, credit_id: Annotated[str, Query()] = ""):
        base = request.scope.get("root_path", "").rstrip("/")
        credit_id = credit_id.strip()
        if not credit_id:
            raise HTTPException(400, "give a credit_id")
        from urllib.parse import quote

        return RedirectResponse(f"{base}/credits/{quote(credit_id, safe='')}", status_code=303)

    @app.get("/credits/{credit_id}", response_class=HTMLResponse)
    def credit(request: Request, user: GetUserDep, credit_id: str):
        from auto_refunds.worklist import resolutions
        from auto_refunds.worklist.queries import Reader

        data_dir = _data_dir()
        with Reader(data_dir) as reader:
            story = reader.story(credit_id)
        history = resolutions.of_credit(data_dir, credit_id)
        return render(
            request,
            "credit.html",
            user,
            credit_id=credit_id,
            story=story,
            history=history,
            labels=resolutions.RESOLUTIONS,
        )

    @app.get("/quality", response_class=HTMLResponse)
    def quality(
        request: Request, user: GetUserDep, kind: str | None = None, date: str | None = None
    ):
        from auto_refunds.settings import Settings
        from auto_refunds.worklist import quality_results

        results_dir = Settings.from_env().quality_results_dir
        runs = quality_results.runs(results_dir)
        chosen = None
        if kind and date:
            chosen = (kind, _date(date, None))
        elif runs:
            chosen = runs[0]
        suites = quality_results.suites(results_dir, *chosen) if chosen else []
        return render(request, "quality.html", user, runs=runs, chosen=chosen, suites=suites)

    return app
