"""Waiting for results: until a job or a workflow reaches its end, without spinning.

One ``ResultWaiters`` per process (the app's, shared by its tenant views and by the HTTP
API) keeps the waiters by key (``job:<id>``, ``workflow:<id>``) and wakes them three ways:

* **in-process**: the worker announces each job it ended (and the workflow service each
  workflow), so a waiter in the worker's process wakes on the write, not on a poll;
* **PostgreSQL**: the results migration's triggers ``NOTIFY hora_results`` in the
  transaction that ends a job or workflow; the first waiter starts **one** listener thread
  with one dedicated connection (``Store.subscribe_results``) that fans the announcements
  out to every waiter of the process, and stops once nobody has waited for
  ``LISTENER_IDLE`` seconds. While it listens, waiters re-read only every ``LISTEN_POLL``
  seconds, a safety net for a notification lost with a connection;
* **SQLite across processes** (no channel): waiters poll with a backoff from
  ``POLL_FIRST`` (50 ms) doubling to ``POLL_MAX`` (1 s), so an end is seen at most ~1 s late.

A wait's timeout runs on the **monotonic** clock, not the app's ``Clock``: a ``FakeClock``
that never advances must not make a wait last forever, nor one that skips make it spin. The
state read between wake-ups is a short store call (a thread for the async face); a waiter
holds no connection and, in async code, no thread while it sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from typing import TypeVar

from hora.errors import StoreError
from hora.limits import check_seconds
from hora.models import Job, Workflow
from hora.states import WORKFLOW_FINAL_STATES, JobState
from hora.store import Store, Subscription

log = logging.getLogger("hora.waiting")
T = TypeVar("T")

#: A job's run is over in these states: dead counts (it can still be replayed, but as a new
#: job) as do the states a dead job moves on to.
JOB_DONE_STATES = frozenset({JobState.SUCCEEDED, JobState.CANCELLED, JobState.DEAD,
                             JobState.DISCARDED, JobState.REPLAYED})
#: Polling without a channel: the first interval, doubling to the last.
POLL_FIRST = 0.05
POLL_MAX = 1.0
#: Re-read interval while the PostgreSQL listener is up (notifications do the waking).
LISTEN_POLL = 10.0
#: The listener thread closes its connection after this long without a waiter.
LISTENER_IDLE = 30.0
#: The longest wait the HTTP API accepts in one request (``?wait=``), in seconds.
MAX_HTTP_WAIT = 60.0
#: The longest wait the SDK accepts (a day); None waits without bound.
MAX_WAIT = 86_400.0


def job_key(job_id: str) -> str:
    return f"job:{job_id}"


def workflow_key(workflow_id: str) -> str:
    return f"workflow:{workflow_id}"


def job_done(job: Job) -> bool:
    return job.state in JOB_DONE_STATES


def workflow_done(wf: Workflow) -> bool:
    return wf.state in WORKFLOW_FINAL_STATES


def check_timeout(timeout: float | timedelta | None, *, most: float = MAX_WAIT,
                  field: str = "timeout") -> float | None:
    """A wait's bound in seconds (0 = just read the state); None = no bound."""
    if timeout is None:
        return None
    return check_seconds(timeout, field, most=most, zero=True)


class _Waiter:
    """One waiting caller: a threading event, or an asyncio event on the caller's loop."""

    __slots__ = ("aevent", "event", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self.loop = loop
        self.event = threading.Event()
        self.aevent = asyncio.Event() if loop is not None else None

    def fire(self) -> None:
        if self.loop is None:
            self.event.set()
            return
        assert self.aevent is not None
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            self.loop.call_soon_threadsafe(self.aevent.set)


class ResultWaiters:
    """The waiters of one process and what wakes them (see the module docstring)."""

    def __init__(self, store: Callable[[], Store]) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._waiters: dict[str, set[_Waiter]] = {}
        self._listener: threading.Thread | None = None
        self._no_channel = False
        self._closed = threading.Event()
        #: Set while the listener's LISTEN is up (waiters then poll only as a safety net).
        self.listening = threading.Event()
        #: Counters for tests and metrics: announcements received, state reads by waiters.
        self.announcements = 0
        self.reads = 0

    # -- waking -------------------------------------------------------------------------------

    def announce(self, key: str) -> None:
        """Wake every waiter of ``key`` (thread-safe; from the worker, the workflow service
        and the listener)."""
        with self._lock:
            self.announcements += 1
            waiters = list(self._waiters.get(key, ()))
        for w in waiters:
            w.fire()

    @contextlib.contextmanager
    def _watch(self, key: str, loop: asyncio.AbstractEventLoop | None) -> Iterator[_Waiter]:
        waiter = _Waiter(loop)
        with self._lock:
            self._waiters.setdefault(key, set()).add(waiter)
        self._ensure_listener()
        try:
            yield waiter
        finally:
            with self._lock:
                group = self._waiters.get(key)
                if group is not None:
                    group.discard(waiter)
                    if not group:
                        del self._waiters[key]

    def _interval(self, polls: int) -> float:
        if self.listening.is_set():
            return LISTEN_POLL
        return min(POLL_MAX, POLL_FIRST * 2.0 ** min(polls, 10))

    # -- the PostgreSQL listener --------------------------------------------------------------

    def close(self) -> None:
        """Stop the listener (its connection closes within a second); waiting still works
        after, by polling, until a new wait starts a new listener."""
        with self._lock:
            listener, self._listener = self._listener, None
            closed, self._closed = self._closed, threading.Event()  # the next listener's
            closed.set()
        if listener is not None and listener is not threading.current_thread():
            listener.join(5)

    def _ensure_listener(self) -> None:
        if self._no_channel:
            return
        with self._lock:
            if self._listener is not None and self._listener.is_alive():
                return
            try:
                sub = self._store().subscribe_results()
            except StoreError as e:
                log.debug("cannot subscribe to results, polling: %s", e)
                return
            if sub is None:
                self._no_channel = True
                return
            self._listener = threading.Thread(target=self._listen, args=(sub, self._closed),
                                              name="hora-results", daemon=True)
            self._listener.start()

    def _listen(self, sub: Subscription, closed: threading.Event) -> None:
        """One connection, LISTEN hora_results, fan out; exit after LISTENER_IDLE unused."""
        idle_since: float | None = None
        try:
            with contextlib.suppress(StoreError):
                sub.wait(0.0)  # connect and LISTEN now: from here on no end is missed
                self.listening.set()
            while not closed.is_set():
                try:
                    keys = sub.wait(1.0)
                    self.listening.set()
                except StoreError as e:
                    self.listening.clear()
                    log.debug("results channel failed, waiters poll meanwhile: %s", e)
                    closed.wait(1.0)
                    continue
                for key in keys:
                    self.announce(key)
                with self._lock:
                    if self._waiters:
                        idle_since = None
                        continue
                    now = time.monotonic()
                    if idle_since is None:
                        idle_since = now
                    elif now - idle_since >= LISTENER_IDLE:
                        self._listener = None
                        return
        finally:
            self.listening.clear()
            sub.close()

    # -- waiting ------------------------------------------------------------------------------

    def wait(self, key: str, read: Callable[[], T], done: Callable[[T], bool],
             timeout: float | None) -> tuple[T, bool]:
        """Read until ``done`` or the timeout: (the last value read, whether it is done).
        Blocks the calling thread (the sync SDK)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._watch(key, None) as w:
            polls = 0
            while True:
                self.reads += 1
                value = read()
                if done(value):
                    return value, True
                pause = self._interval(polls)
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return value, False
                    pause = min(pause, remaining)
                w.event.wait(pause)
                w.event.clear()
                polls += 1

    async def await_(self, key: str, read: Callable[[], Awaitable[T]],
                     done: Callable[[T], bool], timeout: float | None) -> tuple[T, bool]:  # noqa: ASYNC109 (the sync method's signature)
        """``wait`` for async callers: sleeps on an asyncio event (no thread held)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._watch(key, asyncio.get_running_loop()) as w:
            assert w.aevent is not None
            polls = 0
            while True:
                self.reads += 1
                value = await read()
                if done(value):
                    return value, True
                pause = self._interval(polls)
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return value, False
                    pause = min(pause, remaining)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(w.aevent.wait(), pause)
                w.aevent.clear()
                polls += 1
