"""Results: SQLite has no channel between processes, so a waiter is woken by a worker of its
own process (``hora.waiting``) and otherwise polls with a bounded backoff."""

from __future__ import annotations

from hora.store.sqlite.connection import SQLiteConnection


class SQLiteResults(SQLiteConnection):
    def subscribe_results(self) -> None:
        return None
