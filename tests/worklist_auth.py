"""An auth manager for the worklist's tests: the SimpleAuthManager, except that the user
``outsider`` is logged in but has no right on the ``auto_refunds`` DAG, as a FAB user whose roles
grant other DAGs only. The SimpleAuthManager alone lets every role read every DAG."""

from __future__ import annotations

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

OUTSIDER = "outsider"


class OutsiderAuthManager(SimpleAuthManager):
    def is_authorized_dag(self, *, method, user, access_entity=None, details=None) -> bool:
        if user.get_name() == OUTSIDER and (details is None or details.id == "auto_refunds"):
            return False
        return super().is_authorized_dag(
            method=method, user=user, access_entity=access_entity, details=details
        )
