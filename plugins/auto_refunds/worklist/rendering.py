"""The worklist's HTML: its Jinja templates, their money filters, and the ``Render`` dependency
that renders a page with what every page shows (the user, the dates, the navigation)."""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Annotated

from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse

from auto_refunds.worklist.dependencies import DataDirDep, MayResolveDep

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
    env.filters["dollars"] = dollars
    return env


def money(value) -> str:
    if value is None or value == "":
        return ""
    return f"{Decimal(value):,.2f}"


def dollars(value) -> str:
    amount = Decimal(value or 0)
    return f"{'-' if amount < 0 else ''}${abs(amount):,.2f}"


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
