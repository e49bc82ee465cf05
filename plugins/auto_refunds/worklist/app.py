"""The worklist's FastAPI app, mounted by Airflow's API server under ``/auto-refunds``.

The routes are ``routes.router``; what they depend on (the settings, the Airflow user and its
rights, the cross-site check) are FastAPI dependencies in ``dependencies``. Every route depends on
an Airflow user who may read the DAG: the app's dependency and the router's, one callable that
runs once per request. A refusal a browser asked for is a page of the app, and a page asked
for without a session leads to Airflow's login (``errors``). Every answer carries the headers
of ``SECURITY_HEADERS``.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from auto_refunds.worklist import errors
from auto_refunds.worklist.dependencies import requires_reader
from auto_refunds.worklist.routes import router

# The pages load their one script and one stylesheet from the app itself and draw charts as inline
# SVG: nothing else is needed, so nothing else is allowed (no inline script or style, no other
# site). Framed only by the Airflow UI, which serves them from its own origin.
SECURITY_HEADERS = {
    "Content-Security-Policy": "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "form-action 'self'",
            "frame-ancestors 'self'",
            "base-uri 'none'",
            "object-src 'none'",
        ]
    ),
    "X-Frame-Options": "SAMEORIGIN",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


async def _security_headers(request: Request, call_next):
    response = await call_next(request)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def create_app() -> FastAPI:
    from auto_refunds.log_masking import install_access_log_masking

    # Built in the API server only: its access log then masks a card number typed in an address.
    install_access_log_masking()
    app = FastAPI(
        title="Auto-Refunds worklist",
        dependencies=[Depends(requires_reader)],
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.include_router(router)
    app.add_exception_handler(HTTPException, errors.http_error)
    app.add_exception_handler(RequestValidationError, errors.validation_error)
    app.middleware("http")(_security_headers)
    return app
