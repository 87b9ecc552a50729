"""Django's SQLite backend plus ``init_command`` and ``transaction_mode``, for Django 4.2 and 5.0.

Django 5.1 added both options; before it, ``OPTIONS`` go straight to ``sqlite3.connect`` and these
two would be refused. The web process and the sidecar write one file, so the library needs them on
every supported Django (:mod:`rabbitsync.django.database` says why): this backend does what 5.1's
does, and :func:`~rabbitsync.django.database.database_config` picks it only where Django lacks them.
"""

from __future__ import annotations

from typing import Any

from django.db.backends.sqlite3 import base


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self) -> dict[str, Any]:
        params: dict[str, Any] = super().get_connection_params()
        # Ours to apply, not sqlite3.connect's keyword arguments.
        params.pop("init_command", None)
        params.pop("transaction_mode", None)
        return params

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        conn = super().get_new_connection(conn_params)
        for statement in str(self.settings_dict["OPTIONS"].get("init_command", "")).split(";"):
            if statement.strip():
                conn.execute(statement)
        return conn

    def _start_transaction_under_autocommit(self) -> None:
        mode = self.settings_dict["OPTIONS"].get("transaction_mode")
        self.cursor().execute(f"BEGIN {mode}" if mode else "BEGIN")
