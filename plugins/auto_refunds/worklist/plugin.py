"""The Airflow plugin: the worklist app under ``/auto-refunds`` and its "Auto-Refunds" entry in
the UI's navigation.

Airflow loads plugins in every component (scheduler, DAG processor, task runner); only the API
server reads ``fastapi_apps``. So the app, FastAPI and Airflow's API security module are built on
that first read, and nothing heavy is imported when the plugin itself is.
"""

from __future__ import annotations

from functools import cache

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/auto-refunds"


@cache
def _apps() -> tuple[dict, ...]:
    from auto_refunds.worklist.app import create_app

    return ({"app": create_app(), "url_prefix": URL_PREFIX, "name": "Auto-Refunds worklist"},)


class _BuiltOnFirstRead:
    def __get__(self, instance, owner) -> list[dict]:
        return list(_apps())


class AutoRefundsWorklistPlugin(AirflowPlugin):
    name = "auto_refunds_worklist"
    fastapi_apps = _BuiltOnFirstRead()
    external_views = [
        {
            "name": "Auto-Refunds",
            "href": URL_PREFIX + "/",
            "destination": "nav",
            "url_route": "auto-refunds",
        }
    ]
