"""The worklist's routes: its pages, their CSV files, the resolving of exceptions, its static
files. Mounted by ``app`` under ``/auto-refunds``.

Every route depends on an Airflow user who may read the DAG (the router's dependency, see
``dependencies``); resolving also on the right to edit the DAG and a request from the worklist's
own pages. The routes import DuckDB (``queries``) only when they run, so building the app when the
API server starts stays light.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
from pathlib import Path
from typing import Annotated
from urllib.parse import quote, urlencode

from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.background import BackgroundTask

from auto_refunds.worklist.dependencies import (
    DataDirDep,
    SettingsDep,
    refuses_card_numbers,
    requires_reader,
    requires_resolver,
    requires_same_site,
)
from auto_refunds.worklist.rendering import HERE, Render

STATIC = {
    "worklist.css": "text/css; charset=utf-8",
    "worklist.js": "text/javascript; charset=utf-8",
}

router = APIRouter(dependencies=[Depends(requires_reader), Depends(refuses_card_numbers)])

# The banner a page shows after an action: a known code of the address maps to a fixed text, so
# a link made elsewhere cannot put words of its own in the worklist's mouth.
NOTICES = {
    "resolved": "{count:,} exception{s} marked resolved.",
    "acted": "Done: the item's action is recorded.",
}
_COUNT_MAX = 100_000


def _notice(params: dict) -> str | None:
    text = NOTICES.get(params.get("done") or "")
    if text is None:
        return None
    count = params.get("count") or ""
    if not count.isdigit() or not 0 < int(count) <= _COUNT_MAX:
        return None
    return text.format(count=int(count), s="" if int(count) == 1 else "s")


# The dates a page may ask for. Wider than any run date, narrow enough that the pages' date
# arithmetic (30 days of charts before a date) stays within what Python and DuckDB hold.
FIRST_DATE, LAST_DATE = dt.date(1900, 1, 1), dt.date(2999, 12, 31)


def _date(text: str | None, default: dt.date | None) -> dt.date | None:
    # The answer does not repeat what was typed: it could be anything, a card number included.
    if not text:
        return default
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise HTTPException(400, "not a date: give one as YYYY-MM-DD") from None
    if not FIRST_DATE <= day <= LAST_DATE:
        raise HTTPException(400, f"a date from {FIRST_DATE} to {LAST_DATE}, please")
    return day


@router.get("/static/{name}")
def static(name: str) -> Response:
    if name not in STATIC:
        raise HTTPException(404)
    return Response(
        (HERE / "static" / name).read_bytes(),
        media_type=STATIC[name],
        headers={"Cache-Control": "private, max-age=300"},
    )


@router.get("/", response_class=HTMLResponse)
def overview(render: Render, data_dir: DataDirDep, date: str | None = None):
    from auto_refunds.worklist import charts
    from auto_refunds.worklist import overview as facts_of
    from auto_refunds.worklist.queries import Reader, item_counts

    with Reader(data_dir) as reader:
        dates = reader.dates()
        day = _date(date, dates[-1] if dates else None)
        # A date nothing was published for says so, rather than a page of zeros.
        facts = facts_of.of_date(reader, day) if day in dates else None
        items_now = item_counts(reader, dt.date.today())
    chart_html = []
    if facts:
        chart_html = [
            charts.grouped_bars(
                "Refunds per day: sent, approved, declined",
                facts["chart_days"],
                facts["refund_series"],
            ),
            charts.stacked_bars(
                "Exceptions per day, by reason",
                facts["chart_days"],
                facts["exception_series"],
            ),
        ]
    return render("overview.html", day=day, facts=facts, charts=chart_html, items=items_now)


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


def _queue_page(kind: str, template: str, request: Request, render: Render, data_dir: Path):
    from auto_refunds.worklist.queries import PAGE_SIZES, SORTS, SOURCES, Reader
    from auto_refunds.worklist.resolutions import RESOLUTIONS

    params = dict(request.query_params)
    notice = _notice(params)
    # The notice is of this answer alone: not carried into links, the CSV or the next form.
    params = {k: v for k, v in params.items() if k not in ("done", "count")}
    with Reader(data_dir) as reader:
        dates = reader.dates()
        filters = _filters(kind, params, dates)
        page = reader.page(kind, filters)
    published = [d for d in dates if filters.start <= d <= filters.end]

    def link(**changes) -> str:
        merged = {k: v for k, v in params.items() if v} | {
            k: v for k, v in changes.items() if v is not None
        }
        return "?" + urlencode(merged)

    return render(
        template,
        page=page,
        f=filters,
        link=link,
        sorts=SORTS[kind],
        sources=SOURCES,
        page_sizes=PAGE_SIZES,
        resolutions=RESOLUTIONS,
        notice=notice,
        published=published,
        latest=dates[-1] if dates else None,
        back=urlencode(params),
        csv_query=urlencode({k: v for k, v in params.items() if v and k not in ("page",)}),
    )


def _queue_csv(kind: str, request: Request, data_dir: Path) -> FileResponse:
    from auto_refunds.worklist.queries import Reader

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


def _item_filters(params: dict, user: str = ""):
    from auto_refunds.worklist.queries import ITEM_SORTS, ITEM_STATUSES, PAGE_SIZES, ItemFilters

    try:
        page = max(1, int(params.get("page") or 1))
        size = int(params.get("size") or PAGE_SIZES[0])
    except ValueError:
        raise HTTPException(400, "page and size are whole numbers") from None
    status = params.get("status") or "open"
    sort = params.get("sort") or "due"
    return ItemFilters(
        status=status if status in ITEM_STATUSES else "open",
        client=(params.get("client") or "").strip(),
        reason=(params.get("reason") or "").strip(),
        overdue=params.get("overdue") == "1",
        sort=sort if sort in ITEM_SORTS else "due",
        descending=params.get("dir") == "desc",
        page=page,
        page_size=size if size in PAGE_SIZES else PAGE_SIZES[0],
        assignee=user if params.get("mine") == "1" else "",
    )


@router.get("/items", response_class=HTMLResponse)
def work_items(request: Request, render: Render, data_dir: DataDirDep, user: GetUserDep):
    from auto_refunds.worklist.queries import (
        ITEM_SORTS,
        ITEM_STATUSES,
        PAGE_SIZES,
        Reader,
        items_page,
    )
    from auto_refunds.worklist.resolutions import RESOLUTIONS

    params = dict(request.query_params)
    notice = _notice(params)
    params = {k: v for k, v in params.items() if k not in ("done", "count")}
    filters = _item_filters(params, user.get_name())
    today = dt.date.today()
    with Reader(data_dir) as reader:
        page = items_page(reader, filters, today)

    def link(**changes) -> str:
        merged = {k: v for k, v in params.items() if v} | {
            k: v for k, v in changes.items() if v is not None
        }
        return "?" + urlencode(merged)

    return render(
        "items.html",
        page=page,
        f=filters,
        link=link,
        sorts=ITEM_SORTS,
        statuses=ITEM_STATUSES,
        page_sizes=PAGE_SIZES,
        resolutions=RESOLUTIONS,
        notice=notice,
        back=urlencode(params),
        today=today,
    )


@router.get("/items/{credit_id}/{first_seen}", response_class=HTMLResponse)
def work_item(
    request: Request, render: Render, data_dir: DataDirDep, credit_id: str, first_seen: str
):
    from auto_refunds.worklist import actions
    from auto_refunds.worklist.queries import Reader
    from auto_refunds.worklist.queries import item as find_item
    from auto_refunds.worklist.resolutions import RESOLUTIONS

    day = _date(first_seen, None)
    if day is None:
        raise HTTPException(404, "no such item")
    with Reader(data_dir) as reader:
        found = find_item(reader, credit_id, day)
    if found is None:
        raise HTTPException(404, "no such item")
    log = actions.of_item(data_dir, actions.ItemKey(credit_id, day))
    for entry in log:
        entry["values"] = json.loads(entry["payload"])
    return render(
        "item.html",
        item=found,
        log=log,
        resolutions=RESOLUTIONS,
        notice=_notice(dict(request.query_params)),
        back=str(request.query_params.get("back") or ""),
    )


# The right first, then where the form came from, as for resolving exceptions.
@router.post(
    "/items/act",
    dependencies=[Depends(requires_resolver), Depends(requires_same_site)],
)
def act_on_item(
    request: Request,
    user: GetUserDep,
    data_dir: DataDirDep,
    item: Annotated[str, Form()] = "",
    action: Annotated[str, Form()] = "",
    to: Annotated[str, Form()] = "",
    on: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
    resolution: Annotated[str, Form()] = "",
    check_number: Annotated[str, Form()] = "",
    back: Annotated[str, Form()] = "",
    page: Annotated[str, Form()] = "list",
):
    from auto_refunds.worklist import actions, resolutions
    from auto_refunds.worklist.queries import Reader
    from auto_refunds.worklist.queries import item as find_item

    # credit_id|first_seen|version|resolution_seen, as the page showed them.
    parts = item.split("|")
    if len(parts) < 4 or not (parts[-1].isdigit() and parts[-2].isdigit()) or not parts[-3]:
        raise HTTPException(400, "not an item")
    credit_id, day = "|".join(parts[:-3]), _date(parts[-3], None)
    version, seen_resolution = int(parts[-2]), int(parts[-1])
    with Reader(data_dir) as reader:
        found = find_item(reader, credit_id, day)
    if found is None:
        raise HTTPException(400, "no such item")
    latest = resolutions.ExceptionKey(
        found["last_seen"],
        found["source"],
        found["credit_id"],
        found["reason_code"],
        found["refund_id"] or "",
    )
    values = {"to": to, "on": on, "note": note, "resolution": resolution}
    values["check_number"] = check_number
    try:
        actions.act(
            data_dir,
            actions.ItemKey(credit_id, day),
            action,
            values,
            user.get_name(),
            version,
            exception=latest,
            resolved=found["status"] == "RESOLVED",
            seen_resolution=seen_resolution,
        )
    except actions.StaleItem as error:
        raise HTTPException(409, f"Not recorded: this item was {error}") from None
    except actions.ActionError as error:
        raise HTTPException(400, str(error)) from None
    base = request.scope.get("root_path", "").rstrip("/")
    query = back.lstrip("?") if back and "\n" not in back else ""
    query = "&".join(p for p in query.split("&") if p and not p.startswith(("done=", "count=")))
    if page == "item":
        target = f"{base}/items/{quote(credit_id, safe='')}/{day}?done=acted&count=1"
    else:
        target = f"{base}/items?{query}{'&' if query else ''}done=acted&count=1"
    return RedirectResponse(target, status_code=303)


@router.get("/exceptions", response_class=HTMLResponse)
def exceptions(request: Request, render: Render, data_dir: DataDirDep):
    return _queue_page("exceptions", "exceptions.html", request, render, data_dir)


@router.get("/exceptions.csv")
def exceptions_csv(request: Request, data_dir: DataDirDep):
    return _queue_csv("exceptions", request, data_dir)


@router.get("/refunds-due", response_class=HTMLResponse)
def refunds_due(request: Request, render: Render, data_dir: DataDirDep):
    return _queue_page("refunds_due", "refunds_due.html", request, render, data_dir)


@router.get("/refunds-due.csv")
def refunds_due_csv(request: Request, data_dir: DataDirDep):
    return _queue_csv("refunds_due", request, data_dir)


# The right first, then where the form came from: in this order, whatever the parameters.
@router.post(
    "/exceptions/resolve",
    dependencies=[Depends(requires_resolver), Depends(requires_same_site)],
)
def resolve(
    request: Request,
    user: GetUserDep,
    data_dir: DataDirDep,
    key: Annotated[list[str] | None, Form()] = None,
    resolution: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
    back: Annotated[str, Form()] = "",
    to: Annotated[str, Form()] = "exceptions",
):
    from auto_refunds.worklist import resolutions
    from auto_refunds.worklist.queries import Reader

    try:
        keys = [resolutions.ExceptionKey.decode(k) for k in key or []]
    except ValueError as error:
        raise HTTPException(400, str(error)) from None
    with Reader(data_dir) as reader:
        unknown = reader.exception_keys_exist(keys)
    if unknown:
        raise HTTPException(400, f"no such exception: {', '.join(unknown[:5])}")
    try:
        count = resolutions.record(data_dir, keys, resolution, note, user.get_name())
    except resolutions.ResolutionError as error:
        raise HTTPException(400, str(error)) from None
    query = back.lstrip("?") if back and "\n" not in back else ""
    query = "&".join(p for p in query.split("&") if p and not p.startswith(("done=", "count=")))
    base = request.scope.get("root_path", "").rstrip("/")
    page = to if to in ("exceptions", "items") else "exceptions"
    target = f"{base}/{page}?{query}{'&' if query else ''}done=resolved&count={count}"
    return RedirectResponse(target, status_code=303)


@router.get("/credits", response_class=HTMLResponse)
def find_credit(request: Request, credit_id: Annotated[str, Query()] = ""):
    base = request.scope.get("root_path", "").rstrip("/")
    credit_id = credit_id.strip()
    if not credit_id:
        raise HTTPException(400, "give a credit_id")
    return RedirectResponse(f"{base}/credits/{quote(credit_id, safe='')}", status_code=303)


@router.get("/credits/{credit_id}", response_class=HTMLResponse)
def credit(render: Render, data_dir: DataDirDep, credit_id: str):
    from auto_refunds.worklist import resolutions, story
    from auto_refunds.worklist.queries import Reader

    with Reader(data_dir) as reader:
        found = story.of_credit(reader, credit_id)
    history = resolutions.of_credit(data_dir, credit_id)
    return render(
        "credit.html",
        credit_id=credit_id,
        story=found,
        history=history,
        labels=resolutions.RESOLUTIONS,
    )


@router.get("/quality", response_class=HTMLResponse)
def quality(
    render: Render, settings: SettingsDep, kind: str | None = None, date: str | None = None
):
    from auto_refunds.worklist import quality_results

    results_dir = settings.quality_results_dir
    runs = quality_results.runs(results_dir)
    chosen = None
    if kind and date:
        chosen = (kind, _date(date, None))
    elif runs:
        chosen = runs[0]
    suites = quality_results.suites(results_dir, *chosen) if chosen else []
    return render("quality.html", runs=runs, chosen=chosen, suites=suites)
