"""What the worklist's routes depend on, as FastAPI dependencies: the settings, the Airflow user
and what that user may do, and the cross-site check of the forms that change something.

Every route depends on an authenticated Airflow user, through Airflow's auth manager (whichever
is configured: SimpleAuthManager, FAB, ...): reading needs the right to read the ``auto_refunds``
DAG (``requires_access_dag`` with GET: every role of the SimpleAuthManager; in FAB, a role with
``can_read on DAG:auto_refunds`` or on all DAGs); resolving needs the
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
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from fastapi import Depends, HTTPException, Request

from auto_refunds.card_numbers import contains
from auto_refunds.settings import Settings

DAG_ID = "auto_refunds"

# A logged-in user (401 otherwise) whom the auth manager lets read the DAG (403 otherwise): the
# pages show its runs' data. Airflow's own dependency, so the auth manager decides as it does for
# the DAG's pages in the UI. One callable for the app and its router, so a request runs it once.
requires_reader = requires_access_dag(method="GET", param_dag_id=DAG_ID)


def refuses_card_numbers(request: Request) -> None:
    """A card number typed into a search box travels in the address, which proxies and the API
    server's own access log write down: refused, without repeating it (the log masks it too)."""
    texts = [request.scope["path"], *request.query_params.values()]
    if any(contains(text) for text in texts):
        raise HTTPException(
            400, "This looks like a card number: the worklist never takes one. Search by credit id."
        )


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


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin_of(url: str) -> tuple[str, str, int | None] | None:
    try:
        parts = urlsplit(url)
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    return parts.scheme.lower(), parts.hostname.lower(), port


def requires_same_site(request: Request) -> None:
    """The session cookie goes with any request the browser makes: a form posted from another
    origin (scheme, host and port, as browsers define it) must not change anything.

    Only a Bearer token makes Airflow take the user from the header instead of the cookie, and a
    browser never adds one by itself; any other Authorization header (Basic, say) still leaves
    the cookie as the identity, so it is checked like a bare form."""
    scheme, _, _ = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        return
    claimed = request.headers.get("origin") or request.headers.get("referer") or ""
    own = _origin_of(str(request.base_url))
    if own is None or _origin_of(claimed) != own:
        raise HTTPException(403, "Cross-site request refused")
