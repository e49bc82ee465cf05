"""What the worklist's routes depend on, as FastAPI dependencies: the settings, the Airflow user
and what that user may do, and the cross-site check of the forms that change something.

Every route depends on an authenticated Airflow user, through Airflow's auth manager (whichever
is configured: SimpleAuthManager, FAB, ...): reading needs any logged-in user; resolving needs the
right to edit the ``auto_refunds`` DAG (``is_authorized_dag`` with PUT), which is the USER role
and above in the SimpleAuthManager and, in FAB, User, Op, Admin or any role granted
``can_edit on DAG:auto_refunds`` (docs/worklist.md).

Imported only when the API server builds the app (``plugin``): it imports FastAPI and Airflow's
API security module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails
from airflow.api_fastapi.core_api.security import GetUserDep, requires_authenticated
from fastapi import Depends, HTTPException, Request

from auto_refunds.settings import Settings

DAG_ID = "auto_refunds"

# Any logged-in user. One callable for the app and its router, so a request runs it once.
authenticated = requires_authenticated()


def get_settings() -> Settings:
    """Read from the environment at each request, as every step of the product reads them."""
    return Settings.from_env()


SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_data_dir(settings: SettingsDep) -> Path:
    return settings.data_dir


DataDirDep = Annotated[Path, Depends(get_data_dir)]


def may_resolve(user: GetUserDep) -> bool:
    return get_auth_manager().is_authorized_dag(
        method="PUT", details=DagDetails(id=DAG_ID), user=user
    )


MayResolveDep = Annotated[bool, Depends(may_resolve)]


def requires_resolver(allowed: MayResolveDep) -> None:
    if not allowed:
        raise HTTPException(
            403,
            f"Resolving exceptions needs the right to edit the {DAG_ID} DAG (role USER or above)",
        )


def requires_same_site(request: Request) -> None:
    """The session cookie goes with any request the browser makes: a form posted from another
    site must not change anything. A request with an Authorization header is not a browser's."""
    if not request.headers.get("authorization"):
        origin = request.headers.get("origin") or request.headers.get("referer") or ""
        if urlsplit(origin).netloc != request.headers.get("host"):
            raise HTTPException(403, "Cross-site request refused")
