"""The worklist's HTML: its Jinja templates, their filters (money, counts; the reasons' labels),
and the ``Render`` dependency that renders a page with what every page shows (the user, the
dates, the navigation)."""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Annotated

from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse

from auto_refunds.worklist.dependencies import DataDirDep, MayResolveDep
from auto_refunds.worklist.reasons import next_step, reason_label

HERE = Path(__file__).parent


@cache
def templates():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["money"] = money
    env.filters["dollars"] = money
    env.filters["thousands"] = thousands
    env.filters["when"] = when
    env.globals["reason_label"] = reason_label
    env.globals["next_step"] = next_step
    return env


def money(value) -> str:
    """Every amount of every page: ``$1,234.56``, ``-$1,234.56``; nothing for no amount. Shown
    with the sign the data carries (a credit_amount is positive: what is owed back)."""
    if value is None or value == "":
        return ""
    amount = Decimal(value)
    return f"{'-' if amount < 0 else ''}${abs(amount):,.2f}"


def when(value):
    """A moment (kept in UTC): a ``<time>`` the pages' script shows in the person's timezone (the
    one chosen in Airflow's UI, else the browser's); without the script, in UTC, saying so."""
    from markupsafe import Markup, escape

    if value is None or value == "":
        return ""
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return Markup('<time datetime="{0}">{0} UTC</time>').format(escape(text))


def thousands(value) -> str:
    """A count: ``12,345``."""
    if value is None or value == "":
        return ""
    return f"{int(value):,}"


class Renderer:
    """Renders a template of the request: ``render("overview.html", day=...)``."""

    def __init__(self, request: Request, user, may_resolve: bool, data_dir: Path):
        self.request = request
        self.user = user
        self.may_resolve = may_resolve
        self.data_dir = data_dir

    def __call__(self, template: str, **context) -> HTMLResponse:
        from auto_refunds.worklist import snapshot

        body = (
            templates()
            .get_template(template)
            .render(
                base=self.request.scope.get("root_path", "").rstrip("/"),
                user=self.user.get_name(),
                may_resolve=self.may_resolve,
                snapshot_dates=snapshot.snapshot_dates(self.data_dir),
                request_query=str(self.request.url.query),
                nav=template.removesuffix(".html"),
                **context,
            )
        )
        return HTMLResponse(body, headers={"Cache-Control": "no-store"})


def renderer(
    request: Request, user: GetUserDep, may_resolve: MayResolveDep, data_dir: DataDirDep
) -> Renderer:
    return Renderer(request, user, may_resolve, data_dir)


Render = Annotated[Renderer, Depends(renderer)]
