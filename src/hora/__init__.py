"""hora: durable scheduling and orchestration on SQLite or PostgreSQL.

    from hora import Hora, RetryPolicy

    app = Hora()  # ./hora.db, or Hora("postgresql://...")

    @app.task(retry=RetryPolicy(max_attempts=5))
    def send_push(user_id: str, title: str) -> None: ...

    send_push.enqueue(user_id="u1", title="Hi", delay=300, idempotency_key="push-u1-42")
"""

from hora.app import Hora, JobRequest, Task
from hora.client import AsyncClient, Client
from hora.clock import Clock, FakeClock, SystemClock
from hora.context import JobContext, current_job
from hora.errors import (
    Cancel,
    ChildFailed,
    ConfigError,
    Conflict,
    Fail,
    HoraError,
    IdempotencyConflict,
    InvalidPayload,
    InvalidTrigger,
    LockTimeout,
    NondeterminismError,
    NotAllowed,
    NotFound,
    Retry,
    SignatureError,
    StaleRecord,
    StepFailed,
    StoreError,
    StoreUnavailable,
    TooLarge,
    TooSparse,
    TransitionConflict,
    UnknownTask,
    WorkflowCancelled,
)
from hora.locks import LeaderElection, Lease
from hora.models import Attempt, ErrorInfo, Job, JobEvent, LockRecord, Page, Schedule, Tick
from hora.retry import RetryPolicy
from hora.states import JobState
from hora.worker import Worker

__version__ = "0.1.0"

__all__ = [
    "AsyncClient",
    "Attempt",
    "Cancel",
    "ChildFailed",
    "Client",
    "Clock",
    "ConfigError",
    "Conflict",
    "ErrorInfo",
    "Fail",
    "FakeClock",
    "Hora",
    "HoraError",
    "IdempotencyConflict",
    "InvalidPayload",
    "InvalidTrigger",
    "Job",
    "JobContext",
    "JobEvent",
    "JobRequest",
    "JobState",
    "LeaderElection",
    "Lease",
    "LockRecord",
    "LockTimeout",
    "NondeterminismError",
    "NotAllowed",
    "NotFound",
    "Page",
    "Retry",
    "RetryPolicy",
    "Schedule",
    "SignatureError",
    "StaleRecord",
    "StepFailed",
    "StoreError",
    "StoreUnavailable",
    "SystemClock",
    "Task",
    "Tick",
    "TooLarge",
    "TooSparse",
    "TransitionConflict",
    "UnknownTask",
    "Worker",
    "WorkflowCancelled",
    "__version__",
    "current_job",
]
