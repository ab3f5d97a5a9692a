"""Reaching PostgreSQL through outages: connection defaults, checkout, stall detection.

A database that goes away must cost callers a quick, clear failure, and its return must be
noticed at once:

* every connection carries a connect timeout and TCP keepalives (:data:`CONNECT_DEFAULTS`;
  anything the URL or a ``PG*`` variable sets wins), so a dead peer is found in seconds;
* a checkout waits for a pooled connection at most ``pool_timeout`` seconds, and only
  :data:`OUTAGE_CHECKOUT` while an outage is known, so a blocked API thread pool drains
  quickly; a connection the server closed while it idled is dropped at checkout (one
  ``select``, no round trip) instead of failing the caller's statement;
* the pool retries a lost connection for at most :data:`RECONNECT_WINDOW` seconds (its
  backoff is exponential; a short window caps it near one second), after which the next
  checkout starts a fresh attempt: recovery follows the database's return within about a
  second;
* a :class:`StallGuard` aborts statements stuck on a path that answers nothing (a partition
  behind something that still accepts TCP), once a fresh connection proves the server out of
  reach, so long but healthy statements (migrations, big reads) are never cut;
* an :class:`OutageLog` turns the failures of every caller in the process, and of the
  pool's own connection attempts, into one warning when the outage starts and one when it
  ends.

Each failure that means "cannot reach the database now" becomes ``StoreUnavailable``, here
and nowhere else (:func:`unavailable`, :func:`store_error`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.pq import ConnStatus
from psycopg_pool import ConnectionPool, PoolTimeout

from hora.errors import ConfigError, HoraError, StoreError, StoreUnavailable

log = logging.getLogger("hora.store")

Conn = psycopg.Connection[Any]

#: libpq parameters hora adds unless the URL (or the named environment variable) sets them:
#: give up connecting after 5 s; probe an idle connection after 10 s and drop it after 3
#: unanswered probes 5 s apart; fail a connection whose sent data stays unacknowledged for
#: 10 s (a partition in the middle of a statement).
CONNECT_DEFAULTS: dict[str, tuple[str, str | None]] = {
    "connect_timeout": ("5", "PGCONNECT_TIMEOUT"),
    "keepalives": ("1", None),
    "keepalives_idle": ("10", None),
    "keepalives_interval": ("5", None),
    "keepalives_count": ("3", None),
    "tcp_user_timeout": ("10000", None),  # milliseconds
}

#: The default wait for a pooled connection (``HORA_PG_POOL_TIMEOUT`` overrides it).
POOL_TIMEOUT = 5.0
#: The wait for a pooled connection while an outage is known: enough for the pool to hand
#: over a connection it has just re-established, short enough to answer 503 at once.
OUTAGE_CHECKOUT = 1.0
#: How long the pool keeps retrying one lost connection before leaving the next attempt to
#: the next checkout. Its backoff doubles from 1 s, so this caps the gap between attempts.
RECONNECT_WINDOW = 2.0
#: A statement running this long is checked: if a fresh connection cannot reach the server
#: either, the statement's connection is aborted instead of waiting for the network.
STALL_AFTER = 3.0
#: The stall check's connection attempt gives up after this many seconds.
PROBE_TIMEOUT = 3


def connect_params(url: str) -> str:
    """The URL as a libpq connection string with hora's defaults for what it leaves out."""
    try:
        given = conninfo_to_dict(url)
    except psycopg.ProgrammingError as e:
        raise ConfigError(f"invalid PostgreSQL URL: {e}") from None
    extra = {name: value for name, (value, env) in CONNECT_DEFAULTS.items()
             if name not in given and not (env and os.environ.get(env))}
    if psycopg.pq.version() < 120000:  # libpq before 12 rejects the parameter
        extra.pop("tcp_user_timeout", None)
    return make_conninfo(url, **extra)


def pool_timeout_from_env(value: str | None) -> float:
    """``HORA_PG_POOL_TIMEOUT``: seconds to wait for a pooled connection (default 5)."""
    if value is None or not value.strip():
        return POOL_TIMEOUT
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 300:
        raise ConfigError(f"HORA_PG_POOL_TIMEOUT {value!r}: give seconds in (0, 300]")
    return seconds


def open_pool(conninfo: str, *, min_size: int, max_size: int, timeout: float,
              configure: Callable[[Conn], None], outage: OutageLog) -> ConnectionPool[Conn]:
    # hora reports outages itself (OutageLog); the pool would warn on every failed attempt.
    pool_log = logging.getLogger("psycopg.pool")
    if pool_log.level == logging.NOTSET:
        pool_log.setLevel(logging.ERROR)
    return ConnectionPool(
        conninfo, connection_class=_reporting_connection(outage), min_size=min_size,
        max_size=max_size, open=True, configure=configure, kwargs={"autocommit": True},
        name="hora", timeout=timeout, reconnect_timeout=RECONNECT_WINDOW)


def _reporting_connection(outage: OutageLog) -> type[Conn]:
    """Connections whose opening feeds ``outage``: the pool (re)connects in its own threads,
    and a caller only sees a timeout; this way the first refused attempt starts the outage
    (and checkouts shorten at once) and the first successful one ends it, traffic or not."""

    class ReportingConnection(psycopg.Connection[Any]):
        @classmethod
        def connect(cls, conninfo: str = "", **kwargs: Any) -> Any:
            try:
                conn = super().connect(conninfo, **kwargs)
            except psycopg.Error as e:
                if unavailable(e):
                    outage.fail(e)
                raise
            outage.ok()
            return conn

    return ReportingConnection


def wait_until_connected(pool: ConnectionPool[Conn], timeout: float = 30.0) -> None:
    """At start: wait up to ``timeout`` for a first connection (a database starting beside
    hora). The pool gives each attempt only :data:`RECONNECT_WINDOW`, so ask again until
    then: every request for a connection starts a fresh attempt."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        try:
            pool.putconn(pool.getconn(timeout=max(0.01, min(RECONNECT_WINDOW + 1, left))))
            return
        except PoolTimeout:
            if left <= RECONNECT_WINDOW + 1:
                raise


def unavailable(e: psycopg.Error, conn: Conn | None = None) -> bool:
    """Whether ``e`` means the server cannot be reached (rather than refusing a statement)."""
    if isinstance(e, PoolTimeout) or (conn is not None and conn.broken):
        return True
    if not isinstance(e, psycopg.OperationalError):
        return False
    state = e.sqlstate
    # No SQLSTATE: libpq's own failure (refused, timed out, closed). 08: connection
    # exceptions. 57P01-03: the server is shutting down, crashed, or not yet accepting.
    return state is None or state.startswith("08") or state in ("57P01", "57P02", "57P03")


def store_error(e: psycopg.Error, conn: Conn | None = None) -> StoreError:
    """The hora error for a driver error: ``StoreUnavailable`` when the server is out of
    reach, else ``StoreError``."""
    if unavailable(e, conn):
        return StoreUnavailable(f"PostgreSQL unavailable: {e}")
    return StoreError(f"PostgreSQL: {e}")


class OutageLog:
    """One warning when the database becomes unreachable, one when it answers again.

    Every caller reports its outcome; only the transitions are logged, whatever the number
    of threads and loops failing meanwhile. ``up`` costs one attribute read when all is well.
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self._since: float | None = None
        self._failures = 0
        self._lock = threading.Lock()

    @property
    def down(self) -> bool:
        return self._since is not None

    def fail(self, error: BaseException) -> None:
        with self._lock:
            self._failures += 1
            if self._since is not None:
                return
            self._since = time.monotonic()
        log.warning("%s unreachable, retrying (API requests answer 503 meanwhile): %s",
                    self.what, error)

    def ok(self) -> None:
        if self._since is None:
            return
        with self._lock:
            if self._since is None:
                return
            lasted, failures = time.monotonic() - self._since, self._failures
            self._since, self._failures = None, 0
        log.warning("%s reachable again after an outage of %.1f s (%d failed calls)",
                    self.what, lasted, failures)


def idle_connection_lost(conn: Conn) -> bool:
    """Whether a pooled connection was closed while it idled (the server went away, a
    proxy cut it): an idle socket that is readable holds an EOF or an error, rarely a notice.
    One ``select``, no round trip."""
    if conn.closed or conn.broken:
        return True
    try:
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
    except (OSError, ValueError):
        return True
    if not readable:
        return False
    try:
        conn.pgconn.consume_input()
    except psycopg.OperationalError:
        return True
    return conn.pgconn.status != ConnStatus.OK


class StallGuard:
    """Aborts statements stuck on an unreachable server.

    TCP keepalives and ``tcp_user_timeout`` find a dead peer only when the kernel gets no
    answer; a partition behind a proxy or balancer that still accepts (and acknowledges)
    bytes leaves a statement waiting forever. Every ``interval`` the guard looks for
    statements running longer than ``after``; for those it opens one fresh connection
    (bounded by :data:`PROBE_TIMEOUT`): if that fails too, their sockets are shut down so the
    driver raises at once; if it succeeds, they are merely slow and are left alone. (Other
    calls failing is no proof: a pool saturated by slow statements fails checkouts too.)
    """

    def __init__(self, conninfo: str, *, after: float = STALL_AFTER,
                 interval: float = 1.0) -> None:
        self._conninfo = conninfo
        self.after = after
        self.interval = interval
        self._active: dict[int, tuple[Conn, float]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._reachable_until = 0.0
        #: How many connections the guard aborted (for tests and logs).
        self.aborted = 0

    @contextlib.contextmanager
    def watch(self, conn: Conn) -> Iterator[None]:
        key = id(conn)
        with self._lock:
            self._active[key] = (conn, time.monotonic())
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name="hora-pg-stall",
                                                daemon=True)
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._active.pop(key, None)

    def close(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            now = time.monotonic()
            with self._lock:
                stalled = [key for key, (_, since) in self._active.items()
                           if now - since >= self.after]
            if not stalled or now < self._reachable_until or self._server_reachable():
                continue
            with self._lock:
                victims = [self._active[key][0] for key in stalled if key in self._active]
            for conn in victims:
                self._abort(conn)

    def _server_reachable(self) -> bool:
        try:
            psycopg.connect(self._conninfo, connect_timeout=PROBE_TIMEOUT).close()
        except psycopg.Error:
            return False
        # Reachable: the long statements are just long; look again after a while.
        self._reachable_until = time.monotonic() + self.after
        return True

    def _abort(self, conn: Conn) -> None:
        try:
            fd = os.dup(conn.fileno())
        except (OSError, psycopg.Error):
            return
        with socket.socket(fileno=fd) as sock, contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        self.aborted += 1
        log.debug("aborted a PostgreSQL statement stalled for over %.0f s on an unreachable "
                  "server", self.after)


class Checkout:
    """Connections out of the pool for the store's calls, with outages accounted for."""

    def __init__(self, pool: ConnectionPool[Conn], *, timeout: float, outage: OutageLog,
                 guard: StallGuard) -> None:
        self.pool = pool
        self.timeout = timeout
        self.outage = outage
        self.guard = guard

    @contextlib.contextmanager
    def connection(self) -> Iterator[Conn]:
        """A healthy pooled connection for one call; each call's outcome feeds the outage
        log. A failure to reach the server raises ``StoreUnavailable`` (judged here, where
        the connection's state is known); other driver errors pass through for the store to
        map (a constraint may mean a conflict)."""
        conn: Conn | None = None
        try:
            conn = self._get()
            with self.guard.watch(conn):
                yield conn
        except psycopg.Error as e:
            if unavailable(e, conn):
                self.outage.fail(e)
                raise store_error(e, conn) from e
            self.outage.ok()  # the server answered, if only to refuse
            raise
        except HoraError:
            self.outage.ok()  # raised on what the server answered
            raise
        else:
            self.outage.ok()
        finally:
            if conn is not None:
                self.pool.putconn(conn)

    def _get(self) -> Conn:
        timeout = min(self.timeout, OUTAGE_CHECKOUT) if self.outage.down else self.timeout
        deadline = time.monotonic() + timeout
        # Each lost connection is dropped (the pool replaces it) and the next one taken at
        # once; at most one per pool slot, then whatever the pool makes within the deadline.
        for _ in range(self.pool.max_size + 1):
            conn = self.pool.getconn(timeout=max(0.01, deadline - time.monotonic()))
            if not idle_connection_lost(conn):
                return conn
            conn.close()
            self.pool.putconn(conn)
        return self.pool.getconn(timeout=max(0.01, deadline - time.monotonic()))
