"""The embedded store: one SQLite file, WAL, every write in ``BEGIN IMMEDIATE``.

``BEGIN IMMEDIATE`` takes the write lock up front, so two writers queue on ``busy_timeout``
instead of deadlocking on a read-to-write upgrade; WAL lets readers go on meanwhile. With
``synchronous=FULL`` (the default) a committed enqueue survives a power cut; ``NORMAL`` is an
opt-in that can lose the last transactions on a crash of the machine (not of the process).
``HORA_SQLITE_SYNCHRONOUS`` sets the default for every store a process opens (CI uses NORMAL:
its tests never cut the power, and the fsyncs of FULL were most of its run time).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from hora.errors import ConfigError, HoraError, StoreError
from hora.store.common import to_us
from hora.store.queries import load_migrations, load_queries

Q = load_queries("sqlite")



class SQLiteConnection:
    """Connections and transactions, migrations; every aggregate's methods build on it."""

    dialect = "sqlite"
    max_concurrency = 1

    def __init__(self, path: str, *, synchronous: str | None = None,
                 busy_timeout_ms: int = 30_000, migrate: bool = True) -> None:
        if synchronous is None:
            synchronous = os.environ.get("HORA_SQLITE_SYNCHRONOUS") or "FULL"
            if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
                raise ConfigError(f"HORA_SQLITE_SYNCHRONOUS={synchronous!r}: use FULL (the "
                                  "default), NORMAL or EXTRA")
        if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError("synchronous must be FULL, NORMAL or EXTRA")
        if path == ":memory:":
            raise ValueError("use a file path (a temporary file is fast): every thread opens "
                             "its own connection and :memory: would give each its own database")
        self.path = os.path.abspath(path)
        self._synchronous = synchronous.upper()
        self._busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._write_lock = threading.RLock()
        self._closed = False
        if migrate:
            self.migrate()

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise StoreError("store is closed")
            try:
                conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                       timeout=self._busy_timeout_ms / 1000)
                conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
                self._enable_wal(conn)
                conn.execute(f"PRAGMA synchronous = {self._synchronous}")
                conn.execute("PRAGMA foreign_keys = ON")
                conn.execute("PRAGMA cache_size = -32000")
            except sqlite3.Error as e:
                raise StoreError(f"cannot open SQLite database {self.path}: {e}") from e
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    def _enable_wal(self, conn: sqlite3.Connection) -> None:
        """Switch to WAL, waiting out a concurrent first start: changing the journal mode
        needs the file to itself and SQLite answers "locked" at once instead of invoking the
        busy handler, so the wait is ours (bounded by busy_timeout)."""
        deadline = time.monotonic() + self._busy_timeout_ms / 1000
        pause = 0.005
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() >= deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.1)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        # Writers of this process queue on a lock first: SQLite's own busy handler waits in
        # coarse sleeps (up to 100 ms), which put a 100 ms tail on API writes under load;
        # the lock hands over at once. Other processes still meet on busy_timeout.
        with self._write_lock:
            conn = self._conn()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as e:
                raise StoreError(f"SQLite: cannot begin a write: {e}") from e
            try:
                yield conn
            except BaseException as e:
                conn.execute("ROLLBACK")
                if isinstance(e, sqlite3.Error):
                    raise StoreError(f"SQLite: {e}") from e
                raise
            else:
                try:
                    conn.execute("COMMIT")
                except sqlite3.Error as e:
                    conn.execute("ROLLBACK")
                    raise StoreError(f"SQLite: commit failed: {e}") from e

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        try:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")
        except HoraError:
            raise
        except sqlite3.Error as e:
            raise StoreError(f"SQLite: {e}") from e

    def close(self) -> None:
        self._closed = True
        with self._all_lock:
            conns, self._all = self._all, []
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()

    def migrate(self) -> list[int]:
        """Apply pending migrations in one transaction under SQLite's write lock."""
        applied: list[int] = []
        with self._write() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS hora_migrations (version INTEGER PRIMARY KEY, "
                "name TEXT NOT NULL, applied_at INTEGER NOT NULL)")
            done = {r[0] for r in conn.execute("SELECT version FROM hora_migrations")}
            for mig in load_migrations(self.dialect):
                if mig.version in done:
                    continue
                for stmt in _statements(mig.sql):
                    conn.execute(stmt)
                conn.execute("INSERT INTO hora_migrations VALUES (?, ?, ?)",
                             (mig.version, mig.name, to_us(datetime.now().astimezone())))
                applied.append(mig.version)
        return applied

    def applied_migrations(self) -> list[int]:
        with self._read() as conn:
            try:
                return [r[0] for r in conn.execute(
                    "SELECT version FROM hora_migrations ORDER BY version")]
            except sqlite3.OperationalError:
                return []

    def subscribe(self) -> None:
        """SQLite has no channel between processes; workers elsewhere poll."""
        return None


# -- helpers ----------------------------------------------------------------------------


def _rows(cur: sqlite3.Cursor) -> list[dict[str, Any]]:
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _statements(script: str) -> Iterator[str]:
    """Split a migration into statements (``executescript`` would commit mid-transaction)."""
    buf: list[str] = []
    for line in script.splitlines(keepends=True):
        if not buf and (not line.strip() or line.lstrip().startswith("--")):
            continue
        buf.append(line)
        text = "".join(buf)
        if sqlite3.complete_statement(text):
            yield text.strip()
            buf = []
    if "".join(buf).strip():
        raise ValueError("migration ends in an incomplete statement")

