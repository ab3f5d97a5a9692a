"""Distributed locks with fencing tokens, and leader election (``app.locks``; ``Hora``'s
``lock``/``try_lock``/... delegate to it).

    with app.lock("nightly-export", ttl=60) as lease:    # waits up to 10 s, else LockTimeout
        export(fencing_token=lease.token)

    election = LeaderElection(app, "billing-leader", ttl=15)
    await election.run(on_elected=start_duties, on_lost=stop_duties)

A lock is a row of ``hora_locks`` per (tenant, name). A grant lasts ``ttl`` seconds unless
renewed, so a holder that dies frees it by expiring; its *fencing token* grows by one with
every grant of the name and is never reused. A holder that stalls past its ttl (a GC pause,
a frozen VM) may still believe it holds the lock while a newer holder works; the token is
what lets the resource they both write refuse the older one (remember the highest token
seen, refuse lower ones). Expiry compares the instants the callers pass (their clocks, not
the database's): keep the nodes' clocks in sync and the ttl well above their skew.

Locks are not re-entrant: a second acquire of a held lock waits or fails, whoever asks.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
import os
import random
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from hora.errors import (
    InvalidPayload,
    LockTimeout,
    StoreError,
    StoreUnavailable,
)
from hora.models import LockRecord
from hora.payloads import check_text

if TYPE_CHECKING:
    from hora.clock import Clock
    from hora.store import Store

__all__ = ["LeaderElection", "Lease", "LockService", "LockTimeout", "default_owner"]

log = logging.getLogger("hora.locks")

#: Longest lock name and owner, in characters.
MAX_NAME = 200
#: Longest grant: a lock held longer should be renewed (a dead holder blocks for a ttl).
MAX_TTL = 86_400.0
#: A waiting ``lock()`` tries again after a pause that starts here and doubles up to
#: POLL_MAX (each pause jittered down by up to half, so waiters spread out).
POLL_MIN = 0.02
POLL_MAX = 0.5


def default_owner() -> str:
    """``host:pid:random``: who holds a lock, readable in ``get_lock``, distinct per call."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


# -- validation -------------------------------------------------------------------------------


def _check_label(what: str, value: object) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_NAME:
        raise InvalidPayload(f"must be a string of 1 to {MAX_NAME} characters", field=what)
    check_text(**{what: value})
    return value


def _seconds(value: float | timedelta, what: str, *, zero: bool = False,
             most: float = math.inf) -> float:
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidPayload("must be seconds or a timedelta", field=what)
    seconds = float(value)
    low_ok = seconds >= 0 if zero else seconds > 0
    if not (low_ok and math.isfinite(seconds) and seconds <= most):
        bound = "at least 0" if zero else "more than 0"
        top = f" and at most {most:g}" if math.isfinite(most) else ""
        raise InvalidPayload(f"must be {bound}{top} seconds, not {value!r}", field=what)
    return seconds


def _ttl(value: float | timedelta) -> float:
    return _seconds(value, "ttl", most=MAX_TTL)


def _pauses() -> Iterator[float]:
    pause = POLL_MIN
    while True:
        yield pause * random.uniform(0.5, 1.0)
        pause = min(pause * 2, POLL_MAX)


# -- leases -----------------------------------------------------------------------------------


class Lease:
    """One grant of a lock: ``token`` is its fencing token, ``expires_at`` when it ends
    unless renewed. ``valid`` says whether it still holds by the app's clock."""

    __slots__ = ("_app", "_state", "acquired_at", "expires_at", "name", "owner", "tenant_id",
                 "token", "ttl")

    def __init__(self, app: LockService, *, name: str, owner: str, token: int,
                 acquired_at: datetime, expires_at: datetime, ttl: float) -> None:
        self._app = app
        self._state = "held"  # held | released | lost (a renewal was refused)
        self.tenant_id = app.tenant_id
        self.name = name
        self.owner = owner
        self.token = token
        self.acquired_at = acquired_at
        self.expires_at = expires_at
        self.ttl = ttl

    def __repr__(self) -> str:
        return (f"<Lease {self.name!r} token={self.token} owner={self.owner!r} "
                f"expires_at={self.expires_at.isoformat()} {self._state}>")

    @property
    def valid(self) -> bool:
        """Neither released nor refused a renewal, and not expired by the app's clock."""
        return self._state == "held" and self._app.clock.now() < self.expires_at

    @property
    def released(self) -> bool:
        return self._state == "released"

    def renew(self, ttl: float | timedelta | None = None) -> bool:
        """Hold on for ``ttl`` seconds from now (default: the ttl it was granted with).
        False, and the lease is over, when it had expired or another owner holds the lock."""
        if self._state != "held":
            return False
        seconds = self.ttl if ttl is None else _ttl(ttl)
        now = self._app.clock.now()
        until = now + timedelta(seconds=seconds)
        if self._app.store.renew_lock(self.tenant_id, self.name, owner=self.owner,
                                      token=self.token, now=now, expires_at=until):
            self.expires_at = until
            return True
        self._state = "lost"
        return False

    def release(self) -> bool:
        """Free the lock for the next owner. False when this grant was no longer the lock's
        (a renewal was refused, or it expired and another owner took it) or was released."""
        if self._state != "held":
            return False
        self._state = "released"
        return self._app.store.release_lock(self.tenant_id, self.name, owner=self.owner,
                                            token=self.token)

    async def arenew(self, ttl: float | timedelta | None = None) -> bool:
        return await asyncio.to_thread(self.renew, ttl)

    async def arelease(self) -> bool:
        return await asyncio.to_thread(self.release)


def _release_at_exit(lease: Lease) -> None:
    """Release when a ``with`` block ends; a failure is logged, not raised over the block's
    own outcome (an unreleased lease frees itself when it expires)."""
    if lease.released:  # the block released it itself
        return
    try:
        released = lease.release()
    except StoreError:
        log.warning("lock %r: release of token %d failed; it frees itself at %s",
                    lease.name, lease.token, lease.expires_at.isoformat(), exc_info=True)
        return
    if not released:
        log.warning("lock %r: token %d ran out before its block ended and another owner took "
                    "the lock; the two may have overlapped (raise the ttl or renew)",
                    lease.name, lease.token)


# -- the SDK ----------------------------------------------------------------------------------


class LockService:
    """``app.locks``: one tenant's locks -- try_lock, lock, alock, get_lock, and the lease
    calls of callers that keep no ``Lease`` (the HTTP API). Built with the store (a getter:
    the app opens it on first use), the clock and the tenant."""

    def __init__(self, *, store: Callable[[], Store], clock: Clock, tenant_id: str) -> None:
        self._store = store
        self.clock = clock
        self.tenant_id = tenant_id

    @property
    def store(self) -> Store:
        return self._store()

    def try_lock(self, name: str, ttl: float | timedelta = 30.0,
                 owner: str | None = None) -> Lease | None:
        """Take the lock ``name`` for ``ttl`` seconds if nobody holds it, else None at once.

        Not re-entrant: while a lease holds the lock, every try fails, its owner's too.
        """
        _check_label("name", name)
        seconds = _ttl(ttl)
        owner = default_owner() if owner is None else _check_label("owner", owner)
        now = self.clock.now()
        until = now + timedelta(seconds=seconds)
        token = self.store.acquire_lock(self.tenant_id, name, owner=owner, now=now,
                                        expires_at=until)
        if token is None:
            return None
        return Lease(self, name=name, owner=owner, token=token, acquired_at=now,
                     expires_at=until, ttl=seconds)

    def renew_lease(self, name: str, *, owner: str, token: int,
                    ttl: float | timedelta = 30.0) -> datetime | None:
        """Extend the grant ``token`` held by ``owner`` for ``ttl`` seconds from now: its new
        expiry, or None when it expired or the lock moved on. For callers that keep no
        ``Lease`` object between calls (the HTTP API)."""
        _check_label("name", name)
        _check_label("owner", owner)
        now = self.clock.now()
        until = now + timedelta(seconds=_ttl(ttl))
        if self.store.renew_lock(self.tenant_id, name, owner=owner, token=token, now=now,
                                 expires_at=until):
            return until
        return None

    def release_lease(self, name: str, *, owner: str, token: int) -> bool:
        """Free the lock if grant ``token`` of ``owner`` still holds it."""
        _check_label("name", name)
        _check_label("owner", owner)
        return self.store.release_lock(self.tenant_id, name, owner=owner, token=token)

    def get_lock(self, name: str) -> LockRecord | None:
        """The lock's row (held, expired or released; None if never taken): who holds it and
        the latest fencing token, for a resource that checks tokens."""
        _check_label("name", name)
        return self.store.get_lock(self.tenant_id, name)

    @contextlib.contextmanager
    def lock(self, name: str, ttl: float | timedelta = 30.0, wait: float | timedelta = 10.0,
             owner: str | None = None) -> Iterator[Lease]:
        """``with app.lock(name) as lease:`` -- wait up to ``wait`` seconds for the lock
        (``LockTimeout`` after), hold it for the block, release it at the end.

        The lease is not renewed meanwhile: a block that may outlast ``ttl`` calls
        ``lease.renew()``. ``wait`` is measured on the app clock and on the wall clock,
        whichever passes first, and the pauses between tries are real sleeps: a sync caller
        has no event loop to wait on a fake clock with (use ``alock`` for that).
        """
        wait_s = _seconds(wait, "wait", zero=True)
        start, started = self.clock.now(), time.monotonic()
        pauses = _pauses()
        while True:
            lease = self.try_lock(name, ttl, owner)
            if lease is not None:
                break
            waited = max((self.clock.now() - start).total_seconds(),
                         time.monotonic() - started)
            if waited >= wait_s:
                raise LockTimeout(name, wait_s)
            time.sleep(min(next(pauses), wait_s - waited))
        try:
            yield lease
        finally:
            _release_at_exit(lease)

    @contextlib.asynccontextmanager
    async def alock(self, name: str, ttl: float | timedelta = 30.0,
                    wait: float | timedelta = 10.0,
                    owner: str | None = None) -> AsyncIterator[Lease]:
        """``async with app.alock(name) as lease:`` -- ``lock`` for async code, waiting on the
        app clock (so a ``FakeClock`` drives the wait) with the store calls in a thread."""
        wait_s = _seconds(wait, "wait", zero=True)
        start = self.clock.now()
        pauses = _pauses()
        while True:
            lease = await asyncio.to_thread(self.try_lock, name, ttl, owner)
            if lease is not None:
                break
            waited = (self.clock.now() - start).total_seconds()
            if waited >= wait_s:
                raise LockTimeout(name, wait_s)
            await self.clock.sleep(min(next(pauses), wait_s - waited))
        try:
            yield lease
        finally:
            await asyncio.to_thread(_release_at_exit, lease)


# -- leader election --------------------------------------------------------------------------


#: A callback of ``LeaderElection.run``: given the lease won or lost; may be async.
Callback = Callable[[Lease], object]


class Candidate(Protocol):
    """What an election needs of its app: ``Hora`` or its ``app.locks``."""

    @property
    def clock(self) -> Clock: ...

    def try_lock(self, name: str, ttl: float | timedelta = 30.0,
                 owner: str | None = None) -> Lease | None: ...


class LeaderElection:
    """One candidate for leader of ``name``: the leader is whoever holds the lock ``name``.

    ``run()`` campaigns until stopped: it tries for the lock every ``ttl / 3`` seconds and,
    once leader, renews it at that pace; a refused renewal (the lease ran out, say after a
    pause longer than the ttl, and another candidate took over) calls ``on_lost`` and goes
    back to campaigning. A crashed leader is replaced within about ``4/3 * ttl``. All of it
    is timed by the app's clock. ``campaign_once()`` is one such round, for sync code
    (e.g. a cron-like job that should run on one node only).

    ``is_leader`` is true only while the lease is valid by the app's clock, so a leader cut
    off from the database stops believing it leads when its lease ends, not later; still,
    work done as leader should carry ``token`` to the resources it writes (fencing).
    """

    def __init__(self, app: Candidate, name: str, ttl: float | timedelta = 15.0,
                 owner: str | None = None) -> None:
        self.app = app
        self.name = _check_label("name", name)
        self.ttl = _ttl(ttl)
        self.owner = default_owner() if owner is None else _check_label("owner", owner)
        #: The current term's lease (None while not leader).
        self.lease: Lease | None = None
        #: When ``run`` next campaigns or renews (None while not sleeping between rounds).
        self.next_check: datetime | None = None
        self._stopping = False
        self._release_on_stop = True
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    def __repr__(self) -> str:
        return (f"<LeaderElection {self.name!r} owner={self.owner!r} "
                f"{'leader' if self.is_leader else 'follower'}>")

    @property
    def is_leader(self) -> bool:
        return self.lease is not None and self.lease.valid

    @property
    def token(self) -> int | None:
        """The fencing token of this leader's term, None when not leader."""
        lease = self.lease
        return lease.token if lease is not None and lease.valid else None

    @property
    def interval(self) -> float:
        return self.ttl / 3

    def campaign_once(self) -> bool:
        """One round: renew if leader, else try to become leader. True if leader after it.

        A renewal refused ends the term (no new try in the same round: another candidate
        gets its chance). A database error keeps a term whose lease is still valid by the
        app's clock and otherwise counts as not leader; it is logged, not raised.
        """
        lease = self.lease
        if lease is not None:
            try:
                if lease.renew():
                    return True
            except StoreError as e:
                _store_failed(e, "leader election %r: renewal failed", self.name)
                if lease.valid:
                    return True
            self.lease = None
            return False
        try:
            self.lease = self.app.try_lock(self.name, self.ttl, self.owner)
        except StoreError as e:
            _store_failed(e, "leader election %r: campaign failed", self.name)
            return False
        return self.lease is not None

    def resign(self) -> bool:
        """Release the lease now if leader (another candidate may take over at once)."""
        lease, self.lease = self.lease, None
        return lease is not None and lease.release()

    async def run(self, on_elected: Callback | None = None,
                  on_lost: Callback | None = None) -> None:
        """Campaign and lead until ``stop()``: ``on_elected(lease)`` when a term starts,
        ``on_lost(lease)`` when it ends (a refused renewal, or the stop). A callback that
        raises is logged; the election goes on."""
        if self._loop is not None:
            raise RuntimeError(f"leader election {self.name!r} is already running")
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._stopping = False
        term: Lease | None = None
        try:
            while not self._stopping:
                leader = await asyncio.to_thread(self.campaign_once)
                if term is not None and (not leader or self.lease is not term):
                    ended, term = term, None
                    await self._callback(on_lost, ended)
                if leader and term is None and self.lease is not None:
                    term = self.lease
                    await self._callback(on_elected, term)
                if not self._stopping:
                    await self._pause()
        finally:
            self.next_check = None
            self._loop = self._wake = None
            lease, self.lease = self.lease, None
            if lease is not None and self._release_on_stop:
                try:
                    await asyncio.to_thread(lease.release)
                except StoreError:
                    log.warning("leader election %r: release failed; the lease expires at %s",
                                self.name, lease.expires_at.isoformat(), exc_info=True)
            if term is not None:
                await self._callback(on_lost, term)

    def stop(self, *, release: bool = True) -> None:
        """End ``run`` (safe from any thread). With ``release=False`` the lease is left to
        expire, as a crash would leave it: the next leader starts only after the ttl."""
        self._stopping = True
        self._release_on_stop = release
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(wake.set)
        elif release:
            self.resign()

    async def _pause(self) -> None:
        """Sleep one interval on the app's clock, or until ``stop()``."""
        assert self._wake is not None
        until = self.app.clock.now() + timedelta(seconds=self.interval)
        self.next_check = until
        sleeper = asyncio.ensure_future(self.app.clock.sleep_until(until))
        woken = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({sleeper, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            woken.cancel()
            self.next_check = None

    async def _callback(self, fn: Callback | None, lease: Lease) -> None:
        if fn is None:
            return
        try:
            result = fn(lease)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("leader election %r: callback %s failed", self.name,
                          getattr(fn, "__qualname__", fn))


def _store_failed(error: StoreError, message: str, *args: object) -> None:
    """Log a failed election round: an unreachable database is already told once per outage
    by the store (a warning with a traceback every round would bury it), anything else is a
    warning with its traceback."""
    if isinstance(error, StoreUnavailable):
        log.debug(message + ": %s", *args, error)
    else:
        log.warning(message, *args, exc_info=error)
