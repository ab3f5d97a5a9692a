"""The shared store: PostgreSQL through a psycopg connection pool, for many workers on many nodes.

Writes run in READ COMMITTED transactions. Claiming takes rows with ``FOR UPDATE SKIP
LOCKED``, so concurrent workers split the due jobs between them instead of queueing on the
same rows; statements that touch several of one worker's rows lock them in id order first, so
a heartbeat and a batched finish from two threads of one worker never deadlock. A batch
(enqueue, finish, release, rescue) is one statement over parallel arrays, not one round trip
per job. Every session runs with ``TimeZone=UTC``, so instants come back as aware UTC
datetimes; a ``search_path`` given in the URL's ``options`` decides the schema, which is why
no query names one. How connections survive outages (timeouts, keepalives, checkout, the
one warning per outage) is ``hora.store.pg_connect``'s business.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from hora.errors import HoraError, StoreError, StoreUnavailable, TransitionConflict
from hora.store.pg_connect import (
    Checkout,
    OutageLog,
    StallGuard,
    connect_params,
    open_pool,
    pool_timeout_from_env,
    store_error,
    wait_until_connected,
)
from hora.store.queries import load_migrations, load_queries

Q = load_queries("postgres")


MIGRATION_LOCK = int.from_bytes(b"hora-mig", "big")


Conn = psycopg.Connection[Any]


def _configure(conn: Conn) -> None:
    # The pool hands out autocommit connections; transactions are opened explicitly.
    conn.execute("SET TimeZone TO 'UTC'")



class PostgresConnection:
    """Connections and transactions, migrations; every aggregate's methods build on it."""

    dialect = "postgres"
    max_concurrency = 4

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 8,
                 migrate: bool = True, pool_timeout: float | None = None) -> None:
        """``pool_timeout``: seconds a call waits for a pooled connection before failing
        with ``StoreUnavailable`` (default ``HORA_PG_POOL_TIMEOUT``, else 5)."""
        self._url = connect_params(url)
        if pool_timeout is None:
            pool_timeout = pool_timeout_from_env(os.environ.get("HORA_PG_POOL_TIMEOUT"))
        #: One warning when PostgreSQL becomes unreachable, one when it answers again.
        self.outage = OutageLog("PostgreSQL")
        try:
            self._pool: ConnectionPool[Conn] = open_pool(
                self._url, min_size=min_size, max_size=max_size, timeout=pool_timeout,
                configure=_configure, outage=self.outage)
        except psycopg.Error as e:
            raise StoreError(f"cannot open PostgreSQL pool: {e}") from e
        try:
            wait_until_connected(self._pool)
        except psycopg.Error as e:
            self._pool.close()
            cause = _why_not_connected(self._url) or e
            raise StoreError(f"cannot connect to PostgreSQL: {cause}") from cause
        self._guard = StallGuard(self._url)
        self._checkout = Checkout(self._pool, timeout=pool_timeout, outage=self.outage,
                                  guard=self._guard)
        if migrate:
            try:
                self.migrate()
            except BaseException:
                self.close()
                raise

    @contextmanager
    def _write(self) -> Iterator[Conn]:
        """One READ COMMITTED transaction; any failure rolls all of it back."""
        try:
            with self._checkout.connection() as conn, conn.transaction():
                yield conn
        except HoraError:
            raise
        except psycopg.errors.IntegrityError as e:
            if "illegal job state" in str(e):
                raise TransitionConflict("?", "a legal move", None) from e
            raise StoreError(f"PostgreSQL: {e}") from e
        except psycopg.Error as e:
            raise store_error(e) from e

    @contextmanager
    def _read(self, *, snapshot: bool = False) -> Iterator[Conn]:
        """A connection for reading: autocommit for one statement, or with ``snapshot`` a
        read-only REPEATABLE READ transaction, so several statements see the same data."""
        try:
            with self._checkout.connection() as conn:
                if not snapshot:
                    yield conn
                    return
                with conn.transaction():
                    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    yield conn
        except HoraError:
            raise
        except psycopg.Error as e:
            raise store_error(e) from e

    def close(self) -> None:
        self._guard.close()
        self._pool.close()

    def migrate(self) -> list[int]:
        """Apply pending migrations in one transaction under an advisory lock, so processes
        starting together apply each migration once."""
        applied: list[int] = []
        with self._write() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS hora_migrations (version integer PRIMARY KEY, "
                "name text NOT NULL, applied_at timestamptz NOT NULL)")
            done = {r[0] for r in conn.execute("SELECT version FROM hora_migrations")}
            for mig in load_migrations(self.dialect):
                if mig.version in done:
                    continue
                conn.execute(mig.sql.encode())  # no parameters: the whole script at once
                conn.execute("INSERT INTO hora_migrations VALUES (%s, %s, %s)",
                             (mig.version, mig.name, datetime.now(UTC)))
                applied.append(mig.version)
        return applied

    def applied_migrations(self) -> list[int]:
        with self._read(snapshot=True) as conn:
            row = conn.execute("SELECT to_regclass('hora_migrations') IS NOT NULL").fetchone()
            if row is None or not row[0]:
                return []
            return [r[0] for r in conn.execute(
                "SELECT version FROM hora_migrations ORDER BY version")]

    def subscribe(self) -> PostgresSubscription:
        return PostgresSubscription(self._url, self.outage)

    @contextmanager
    def _statement(self) -> Iterator[Conn]:
        """A connection for one writing statement, which PostgreSQL runs as a transaction of
        its own: one round trip instead of three (BEGIN, the statement, COMMIT)."""
        try:
            with self._checkout.connection() as conn:
                yield conn
        except HoraError:
            raise
        except psycopg.Error as e:
            raise store_error(e) from e

    def _count(self, query: str, params: dict[str, Any]) -> int:
        with self._read() as conn:
            row = conn.execute(query, params).fetchone()
        return 0 if row is None else int(row[0])


# -- helpers ----------------------------------------------------------------------------


CHANNEL = "hora_jobs"


def _announce(conn: Conn, queues: set[str]) -> None:
    """Tell listening workers (delivered at commit; PostgreSQL folds duplicates)."""
    for queue in sorted(queues):
        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, queue))


class PostgresSubscription:
    """LISTEN on a dedicated connection, so a job enqueued by any process wakes idle workers
    at once instead of at their next poll. Reconnects lazily after a failure; the worker's
    poll is the fallback meanwhile, so a lost notification costs latency, never a job. Its
    failures and recovery count in the store's outage log like any other call's."""

    def __init__(self, conninfo: str, outage: OutageLog, *, channel: str = CHANNEL) -> None:
        self._url = conninfo
        self._outage = outage
        self._channel = channel
        self._conn: Conn | None = None

    def _connect(self) -> Conn:
        if self._conn is None or self._conn.closed:
            conn: Conn = psycopg.connect(self._url, autocommit=True)
            conn.execute(f"LISTEN {self._channel}")
            self._conn = conn
            self._outage.ok()
        return self._conn

    def wait(self, timeout: float) -> set[str]:
        try:
            conn = self._connect()
            got = {n.payload for n in conn.notifies(timeout=timeout, stop_after=1)}
        except psycopg.Error as e:
            self.close()
            err = store_error(e)
            if isinstance(err, StoreUnavailable):
                self._outage.fail(e)
            raise type(err)(f"notification channel: {err}") from e
        if got:  # a quiet wait proves nothing: the server may be out of reach
            self._outage.ok()
        return got

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None


def _why_not_connected(url: str) -> psycopg.Error | None:
    """The pool only says it timed out; one direct attempt says why (refused, bad password)."""
    try:
        psycopg.connect(url).close()
    except psycopg.Error as e:
        return e
    return None


def _utc(value: datetime) -> datetime:
    """Instants as aware UTC datetimes, whatever zone the session returned them in."""
    return value.astimezone(UTC)

