"""Time, as a seam.

Every component receives a ``Clock`` and every query receives ``now`` as a parameter (the
database's own clock is never read), so a test can move a whole deployment through months
of schedule in milliseconds with ``FakeClock`` and get exactly what production would do.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable


def utc(dt: datetime) -> datetime:
    """Return ``dt`` as an aware UTC datetime; naive values are refused, not guessed."""
    if dt.tzinfo is None:
        raise ValueError(f"naive datetime {dt.isoformat()} has no time zone; pass an aware one")
    return dt.astimezone(UTC)


@runtime_checkable
class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, aware, in UTC."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Suspend the caller for ``seconds`` of this clock's time."""
        ...

    async def sleep_until(self, instant: datetime) -> None:
        """Suspend the caller until this clock reads ``instant`` or later."""
        ...


@runtime_checkable
class SkippingClock(Clock, Protocol):
    """A clock that can be moved ahead on request, as a test clock can (``FakeClock``).

    A capability, checked structurally: a worker running ``until_idle`` on such a clock
    skips it straight to the next due job instead of waiting, so months of retries and
    schedules run in milliseconds. The wall clock cannot skip, so it does not declare it.
    """

    def skip_to(self, instant: datetime) -> None:
        """Move this clock to ``instant`` (never backwards), waking whoever sleeps until
        then."""
        ...


class SystemClock:
    """The wall clock. ``sleep_until`` never returns early, which on-time starts rely on."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    async def sleep_until(self, instant: datetime) -> None:
        # asyncio's timers run on the monotonic clock and epoll rounds to whole
        # milliseconds, so re-check the wall clock and top up instead of trusting one sleep.
        while True:
            remaining = (instant - datetime.now(UTC)).total_seconds()
            if remaining <= 0:
                return
            await asyncio.sleep(remaining)


class FakeClock:
    """A clock that only moves when told to.

    ``advance`` and ``set`` wake sleepers in the order of their deadlines; a sleeper sees
    ``now()`` equal to the instant it is woken for only if nothing else moves the clock before
    it runs, so tests that need each step observed should advance one step at a time (or use
    ``hora.testing``'s helpers, which do).

    Thread-safe: workers run database calls in threads and may read ``now()`` from them.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = utc(start) if start else datetime(2030, 1, 1, tzinfo=UTC)
        self._lock = threading.Lock()
        self._seq = itertools.count()
        self._sleepers: list[
            tuple[datetime, int, asyncio.AbstractEventLoop, asyncio.Future[None]]
        ] = []

    def now(self) -> datetime:
        with self._lock:
            return self._now

    async def sleep(self, seconds: float) -> None:
        await self.sleep_until(self.now() + timedelta(seconds=max(0.0, seconds)))

    async def sleep_until(self, instant: datetime) -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if instant <= self._now:
                return
            heapq.heappush(self._sleepers, (instant, next(self._seq), loop, fut))
        try:
            await fut
        finally:
            if not fut.done():
                fut.cancel()

    def next_deadline(self) -> datetime | None:
        """The earliest instant somebody is sleeping until, if any."""
        with self._lock:
            self._drop_cancelled()
            return self._sleepers[0][0] if self._sleepers else None

    def advance(self, delta: timedelta | float) -> datetime:
        if isinstance(delta, (int, float)):
            delta = timedelta(seconds=delta)
        if delta < timedelta(0):
            raise ValueError("a clock cannot go backwards")
        return self.set(self.now() + delta)

    def set(self, instant: datetime) -> datetime:
        """Move to ``instant``, waking every sleeper whose deadline has come, earliest first."""
        instant = utc(instant)
        with self._lock:
            if instant < self._now:
                raise ValueError("a clock cannot go backwards")
            self._now = instant
            woken = []
            while self._sleepers and self._sleepers[0][0] <= instant:
                woken.append(heapq.heappop(self._sleepers))
        for _deadline, _seq, loop, fut in woken:
            if loop.is_closed():
                continue
            with contextlib.suppress(RuntimeError):  # loop closed between check and call
                loop.call_soon_threadsafe(_wake, fut)
        return instant

    def skip_to(self, instant: datetime) -> None:
        """``set`` it: the ``SkippingClock`` capability."""
        self.set(instant)

    def _drop_cancelled(self) -> None:
        while self._sleepers and self._sleepers[0][3].done():
            heapq.heappop(self._sleepers)


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def monotonic() -> float:
    """Monotonic seconds, for measuring durations that must not jump with the wall clock."""
    return time.monotonic()
