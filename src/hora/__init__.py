"""hora: durable scheduling and orchestration on SQLite or PostgreSQL.

    from hora import Hora, RetryPolicy

    app = Hora()  # ./hora.db, or Hora("postgresql://...")

    @app.task(retry=RetryPolicy(max_attempts=5))
    def send_push(user_id: str, title: str) -> None: ...

    send_push.enqueue(user_id="u1", title="Hi", delay=300, idempotency_key="push-u1-42")

The public names below are imported on first use (PEP 562), not by ``import hora``: the
``hora`` command, a script that only needs ``hora.errors`` and ``from hora import FakeClock``
should not pay for the HTTP client, the API server or the metrics libraries. ``from hora
import Hora`` works exactly as an eager import would. To add a public name, add one line to
``_EXPORTS`` and its import to the ``TYPE_CHECKING`` block (for mypy and IDEs);
``tests/unit/test_imports.py`` fails if the two disagree.
"""

from __future__ import annotations

import importlib

# Not ``from typing import TYPE_CHECKING``: ``import hora`` alone should not import typing.
# mypy treats any constant of this name as true.
TYPE_CHECKING = False

__version__ = "0.1.0"

# Public name -> the module that defines it. ``__all__`` is these names and ``__version__``.
_EXPORTS: dict[str, str] = {
    "ApiError": "hora.errors",
    "AsyncClient": "hora.client",
    "Attempt": "hora.models",
    "AuthError": "hora.errors",
    "Cancel": "hora.errors",
    "ChildFailed": "hora.errors",
    "Client": "hora.client",
    "Clock": "hora.clock",
    "ConfigError": "hora.errors",
    "Conflict": "hora.errors",
    "ConnectionFailed": "hora.errors",
    "DeclaredReport": "hora.schedules",
    "Ensured": "hora.schedules",
    "ErrorInfo": "hora.models",
    "Fail": "hora.errors",
    "FakeClock": "hora.clock",
    "Hora": "hora.app",
    "HoraError": "hora.errors",
    "IdempotencyConflict": "hora.errors",
    "InvalidPayload": "hora.errors",
    "InvalidTrigger": "hora.errors",
    "Job": "hora.models",
    "JobContext": "hora.context",
    "BatchContext": "hora.context",
    "JobEvent": "hora.models",
    "JobRequest": "hora.payloads",
    "JobState": "hora.states",
    "LeaderElection": "hora.locks",
    "Lease": "hora.locks",
    "Batch": "hora.flow",
    "Concurrency": "hora.flow",
    "Debounce": "hora.flow",
    "LockRecord": "hora.models",
    "LockTimeout": "hora.errors",
    "LogLine": "hora.models",
    "WaitTimeout": "hora.errors",
    "WorkflowFailed": "hora.errors",
    "NondeterminismError": "hora.errors",
    "NotAllowed": "hora.errors",
    "NotFound": "hora.errors",
    "Page": "hora.models",
    "QueueInfo": "hora.models",
    "QueueState": "hora.models",
    "QuotaExceeded": "hora.errors",
    "RateLimit": "hora.flow",
    "RateLimited": "hora.errors",
    "Retry": "hora.errors",
    "RetryPolicy": "hora.retry",
    "Schedule": "hora.models",
    "ServerError": "hora.errors",
    "ServiceUnavailable": "hora.errors",
    "SignatureError": "hora.errors",
    "SkippingClock": "hora.clock",
    "StaleRecord": "hora.errors",
    "StepFailed": "hora.errors",
    "StoreError": "hora.errors",
    "StoreUnavailable": "hora.errors",
    "SystemClock": "hora.clock",
    "Task": "hora.app",
    "Throttle": "hora.flow",
    "Tick": "hora.models",
    "TooLarge": "hora.errors",
    "TooSparse": "hora.errors",
    "TransitionConflict": "hora.errors",
    "UnknownTask": "hora.errors",
    "Worker": "hora.worker",
    "WorkerInfo": "hora.models",
    "WorkflowCancelled": "hora.errors",
    "WorkflowContext": "hora.workflows",
    "current_job": "hora.context",
    "current_batch": "hora.context",
}

if TYPE_CHECKING:  # what mypy and IDEs see; keep in step with _EXPORTS
    from typing import Any

    from hora.app import Hora as Hora
    from hora.app import Task as Task
    from hora.client import AsyncClient as AsyncClient
    from hora.client import Client as Client
    from hora.clock import Clock as Clock
    from hora.clock import FakeClock as FakeClock
    from hora.clock import SkippingClock as SkippingClock
    from hora.clock import SystemClock as SystemClock
    from hora.context import BatchContext as BatchContext
    from hora.context import JobContext as JobContext
    from hora.context import current_batch as current_batch
    from hora.context import current_job as current_job
    from hora.errors import ApiError as ApiError
    from hora.errors import AuthError as AuthError
    from hora.errors import Cancel as Cancel
    from hora.errors import ChildFailed as ChildFailed
    from hora.errors import ConfigError as ConfigError
    from hora.errors import Conflict as Conflict
    from hora.errors import ConnectionFailed as ConnectionFailed
    from hora.errors import Fail as Fail
    from hora.errors import HoraError as HoraError
    from hora.errors import IdempotencyConflict as IdempotencyConflict
    from hora.errors import InvalidPayload as InvalidPayload
    from hora.errors import InvalidTrigger as InvalidTrigger
    from hora.errors import LockTimeout as LockTimeout
    from hora.errors import NondeterminismError as NondeterminismError
    from hora.errors import NotAllowed as NotAllowed
    from hora.errors import NotFound as NotFound
    from hora.errors import QuotaExceeded as QuotaExceeded
    from hora.errors import RateLimited as RateLimited
    from hora.errors import Retry as Retry
    from hora.errors import ServerError as ServerError
    from hora.errors import ServiceUnavailable as ServiceUnavailable
    from hora.errors import SignatureError as SignatureError
    from hora.errors import StaleRecord as StaleRecord
    from hora.errors import StepFailed as StepFailed
    from hora.errors import StoreError as StoreError
    from hora.errors import StoreUnavailable as StoreUnavailable
    from hora.errors import TooLarge as TooLarge
    from hora.errors import TooSparse as TooSparse
    from hora.errors import TransitionConflict as TransitionConflict
    from hora.errors import UnknownTask as UnknownTask
    from hora.errors import WaitTimeout as WaitTimeout
    from hora.errors import WorkflowCancelled as WorkflowCancelled
    from hora.errors import WorkflowFailed as WorkflowFailed
    from hora.flow import Batch as Batch
    from hora.flow import Concurrency as Concurrency
    from hora.flow import Debounce as Debounce
    from hora.flow import RateLimit as RateLimit
    from hora.flow import Throttle as Throttle
    from hora.locks import LeaderElection as LeaderElection
    from hora.locks import Lease as Lease
    from hora.models import Attempt as Attempt
    from hora.models import ErrorInfo as ErrorInfo
    from hora.models import Job as Job
    from hora.models import JobEvent as JobEvent
    from hora.models import LockRecord as LockRecord
    from hora.models import LogLine as LogLine
    from hora.models import Page as Page
    from hora.models import QueueInfo as QueueInfo
    from hora.models import QueueState as QueueState
    from hora.models import Schedule as Schedule
    from hora.models import Tick as Tick
    from hora.models import WorkerInfo as WorkerInfo
    from hora.payloads import JobRequest as JobRequest
    from hora.retry import RetryPolicy as RetryPolicy
    from hora.schedules import DeclaredReport as DeclaredReport
    from hora.schedules import Ensured as Ensured
    from hora.states import JobState as JobState
    from hora.worker import Worker as Worker
    from hora.workflows import WorkflowContext as WorkflowContext

__all__ = sorted([*_EXPORTS, "__version__"])


if not TYPE_CHECKING:  # hidden from mypy, so that a misspelt ``from hora import X`` is an error

    def __getattr__(name: str) -> Any:
        """Import a public name's module on first access and cache it in this module."""
        module = _EXPORTS.get(name)
        if module is None:
            raise AttributeError(f"module 'hora' has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    """The module's own names and every lazy public one, imported or not yet."""
    return sorted({*globals(), *_EXPORTS})
