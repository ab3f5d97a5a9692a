"""``/readyz`` off the request thread pool, bounded in time.

When the database hangs, every route waiting for it holds a thread of the API's pool; a
readiness probe queued behind them would time out at the balancer instead of answering
"not ready". The check runs on a thread of its own instead, one at a time (concurrent
probes share the check in flight, so a hung database never costs more than that thread),
and the answer is "not ready" once ``timeout`` passes without one.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

#: Seconds /readyz waits for the store before answering 503.
READY_TIMEOUT = 2.0


class Readiness:
    """``check`` returns None when ready, else why not (it may also raise)."""

    def __init__(self, check: Callable[[], str | None], *,
                 timeout: float = READY_TIMEOUT) -> None:
        self._check = check
        self.timeout = timeout
        self._executor: ThreadPoolExecutor | None = None
        self._pending: Future[str | None] | None = None
        self._lock = threading.Lock()

    async def why_not_ready(self) -> str | None:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="hora-readyz")
            if self._pending is None or self._pending.done():
                self._pending = self._executor.submit(self._check)
            pending = self._pending
        try:
            return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(pending)),
                                          self.timeout)
        except TimeoutError:
            return f"store: no answer within {self.timeout:g} s"
        except Exception as e:  # any failure to reach the store means not ready
            return f"store: {e}"[:300]
