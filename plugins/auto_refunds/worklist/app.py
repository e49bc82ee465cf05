"""The worklist's FastAPI app, mounted by Airflow's API server under ``/auto-refunds``.

The routes are ``routes.router``; what they depend on (the settings, the Airflow user and its
rights, the cross-site check) are FastAPI dependencies in ``dependencies``. Every route depends on
an authenticated Airflow user: the app's dependency and the router's, one callable that runs once
per request.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI

from auto_refunds.worklist.dependencies import authenticated
from auto_refunds.worklist.routes import router


def create_app() -> FastAPI:
    app = FastAPI(
        title="Auto-Refunds worklist",
        dependencies=[Depends(authenticated)],
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.include_router(router)
    return app
