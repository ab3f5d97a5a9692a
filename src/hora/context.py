"""What a running handler can know about its own job: ``hora.current_job()``.

A context variable, not an argument, so handlers keep plain signatures (the payload's
fields) and still reach their job id, attempt number and cancellation flag, from async code
and from sync code running in the worker's threads alike.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

from hora.errors import Cancel


@dataclass(slots=True)
class JobContext:
    job_id: str
    task: str
    attempt: int
    max_attempts: int
    correlation_id: str | None
    tenant_id: str
    due_at: datetime
    started_at: datetime
    worker_id: str
    cancel_reason: str | None = None
    _cancelled: bool = False

    @property
    def cancelled(self) -> bool:
        """True once somebody asked to cancel this job; long sync handlers should check it."""
        return self._cancelled

    def raise_if_cancelled(self) -> None:
        """Stop cooperatively: raises ``Cancel`` if cancellation was requested."""
        if self._cancelled:
            raise Cancel(self.cancel_reason or "cancelled on request")

    def request_cancel(self, reason: str | None = None) -> None:
        self.cancel_reason = reason or self.cancel_reason
        # A plain flag: set on the loop, read from handler threads; a bool write is atomic.
        self._cancelled = True


_current: ContextVar[JobContext | None] = ContextVar("hora_current_job", default=None)


def current_job() -> JobContext:
    """The job the calling handler is running for; raises outside a handler."""
    ctx = _current.get()
    if ctx is None:
        raise RuntimeError("hora.current_job() called outside a running job")
    return ctx
