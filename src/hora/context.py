"""What a running handler can know about its own job: ``hora.current_job()``.

A context variable, not an argument, so handlers keep plain signatures (the payload's
fields) and still reach their job id, attempt number and cancellation flag, from async code
and from sync code running in the worker's threads alike.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

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
    """The job the calling handler is running for; raises outside a handler (and in a batch
    handler outside ``with current_batch().job(i):``)."""
    ctx = _current.get()
    if ctx is None:
        if _current_batch.get() is not None:
            raise RuntimeError("hora.current_job() called in a batch handler: use "
                               "hora.current_batch() (or `with current_batch().job(i):`)")
        raise RuntimeError("hora.current_job() called outside a running job")
    return ctx


@dataclass(slots=True)
class BatchContext:
    """What a batch handler can know about its batch: ``hora.current_batch()``.

    ``jobs[i]`` is the context of the job whose payload is the handler's ``i``-th item (its
    own id, attempt, cancellation flag). What the handler logs is kept with every job's
    attempt, except inside ``with batch.job(i):``, where it is kept with job ``i``'s only
    (and ``current_job()`` is that job).
    """

    task: str
    #: The batch's key value ("" when the task has no key).
    key: str
    jobs: tuple[JobContext, ...]
    _captures: tuple[LogCapture | None, ...] = ()

    def __len__(self) -> int:
        return len(self.jobs)

    @property
    def job_ids(self) -> list[str]:
        return [j.job_id for j in self.jobs]

    @contextlib.contextmanager
    def job(self, index: int) -> Iterator[JobContext]:
        """Within the block, log lines go to job ``index``'s attempt only and
        ``current_job()`` is that job."""
        ctx = self.jobs[index]
        token = _current.set(ctx)
        capture = self._captures[index] if index < len(self._captures) else None
        logs_token = _capture.set(capture) if capture is not None else None
        try:
            yield ctx
        finally:
            if logs_token is not None:
                _capture.reset(logs_token)
            _current.reset(token)


_current_batch: ContextVar[BatchContext | None] = ContextVar("hora_current_batch", default=None)


def current_batch() -> BatchContext:
    """The batch the calling batch handler is running (``@app.task(batch=Batch(...))``);
    raises outside one."""
    batch = _current_batch.get()
    if batch is None:
        raise RuntimeError("hora.current_batch() called outside a running batch")
    return batch


# -- the log lines of one attempt ------------------------------------------------------------

#: What is kept of what a handler logs, per attempt: at most this many lines and this many
#: bytes of messages (UTF-8), each message cut at MAX_LOG_LINE characters; past the bound one
#: line of level ``TRUNCATED`` says how many lines were not kept.
MAX_LOG_LINES = 200
MAX_LOG_BYTES = 64 * 1024
MAX_LOG_LINE = 4096
TRUNCATED = "TRUNCATED"

#: Loggers whose records are the worker's own bookkeeping, not the handler's.
_NOT_CAPTURED = frozenset({"hora.worker"})


class LogCapture:
    """The bounded log lines of one attempt, filled by the record factory below while the
    attempt's handler runs (its asyncio task, and threads started with a copy of its context:
    the worker's sync handler threads, ``asyncio.to_thread``). Thread-safe."""

    __slots__ = ("dropped", "lines", "size")

    #: One lock for every capture: appends are short, and most jobs never take it.
    _lock = threading.Lock()

    def __init__(self) -> None:
        self.lines: list[dict[str, str | float]] = []
        self.size = 0
        self.dropped = 0

    def add(self, record: logging.LogRecord) -> None:
        if record.name in _NOT_CAPTURED:
            return
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not break the handler's logging
            message = str(record.msg)
        if record.exc_info and record.exc_info[1] is not None:
            message = f"{message}\n{type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
        if len(message) > MAX_LOG_LINE:
            message = message[:MAX_LOG_LINE] + " ... [line truncated]"
        cost = len(message.encode("utf-8", "replace"))
        with self._lock:
            if len(self.lines) >= MAX_LOG_LINES or self.size + cost > MAX_LOG_BYTES:
                self.dropped += 1
                return
            self.size += cost
            # "at" as epoch seconds here (cheap); the wire shows it as ISO-8601.
            self.lines.append({"at": record.created, "level": record.levelname,
                               "message": message})

    def to_json(self) -> str | None:
        """The lines as the store keeps them (a JSON array), None when nothing was logged."""
        if not self.lines and not self.dropped:
            return None
        with self._lock:
            lines = list(self.lines)
            if self.dropped:
                lines.append({"at": time.time(), "level": TRUNCATED,
                              "message": f"{self.dropped} more line(s) not kept: the bound is "
                                         f"{MAX_LOG_LINES} lines and {MAX_LOG_BYTES} bytes "
                                         "per attempt"})
        if not lines:
            return None
        return json.dumps(lines, separators=(",", ":"))


_capture: ContextVar[LogCapture | None] = ContextVar("hora_log_capture", default=None)
_installed = False
_install_lock = threading.Lock()


def install_log_capture() -> None:
    """Wrap the logging record factory (once per process) so that a record created while an
    attempt's handler runs is also kept with the attempt. Any record a logger lets through
    (its level, as configured) counts, whatever handlers print it; hora adds no handler and
    changes no level. Outside a handler the cost is one context-variable read per record."""
    global _installed
    with _install_lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            capture = _capture.get()
            if capture is not None:
                capture.add(record)
            return record

        logging.setLogRecordFactory(factory)
        _installed = True
