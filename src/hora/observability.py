"""Metrics, traces and structured logs: what an operator watches hora with.

- **Metrics** (Prometheus, ``prometheus-client``, on the default registry so an app's own
  ``/metrics`` shows hora's next to its own): jobs enqueued, attempts by outcome, attempt
  duration, start lateness (start - due), jobs in flight, schedule firings, workflow runs and
  steps, API requests by route and status with their latency. ``hora serve`` answers
  ``GET /metrics``; a worker-only process serves them with ``hora worker --metrics-port``.
- **Traces** (OpenTelemetry API): a span per enqueue batch (producer), per job attempt
  (consumer, the handler's own spans nest in it), per workflow run and step, per API request.
  Without an OpenTelemetry SDK configured these are no-ops. The correlation id is an
  attribute on every span: the store does not carry trace context between processes, so the
  correlation id is what joins a job to the request that made it.
- **Logs**: ``configure_logging(json_format=True)`` (``HORA_LOG_FORMAT=json``) writes one JSON
  object per line; every record logged while a job runs — hora's or the handler's own —
  carries the job id, task, attempt, tenant and correlation id, and the trace and span ids.

Labels are deliberately few (task, queue, outcome, workflow, route): tenant and job ids would
make series without bound.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace
from prometheus_client import Counter, Gauge, Histogram

from hora.context import _current

tracer = trace.get_tracer("hora")


def tracing() -> bool:
    """Whether an OpenTelemetry SDK is configured: without one every span is a no-op, and
    the worker's hot path skips making them (a span and its context switch cost ~10% of a
    job's overhead)."""
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                    2.5, 5.0, 10.0, 30.0, 60.0)
_DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                     60.0, 300.0, 900.0, 3600.0)

JOBS_ENQUEUED = Counter("hora_jobs_enqueued", "Jobs created by enqueues (idempotent repeats "
                        "of an existing job are not counted).", ["task", "queue"])
JOB_ATTEMPTS = Counter("hora_job_attempts", "Job attempts ended, by outcome: succeeded, "
                       "failed, retry, timeout, cancelled, released.", ["task", "outcome"])
JOB_DURATION = Histogram("hora_job_duration_seconds", "How long job attempts ran.", ["task"],
                         buckets=_DURATION_BUCKETS)
JOB_LATENESS = Histogram("hora_job_start_lateness_seconds", "Start minus due time of each "
                         "attempt (a retry counts from its backoff's end).", ["task"],
                         buckets=_LATENCY_BUCKETS)
JOBS_IN_FLIGHT = Gauge("hora_worker_jobs_in_flight", "Jobs running in this process's workers.")
SCHEDULE_JOBS = Counter("hora_schedule_jobs_fired", "Jobs fired by schedule passes in this "
                        "process.")
WORKFLOW_RUNS = Counter("hora_workflow_runs", "Workflow runs ended, by the state they left "
                        "the workflow in.", ["workflow", "state"])
WORKFLOW_STEPS = Counter("hora_workflow_steps", "Workflow steps executed (replays are not "
                         "counted), by status: done, pending (will retry), failed.",
                         ["workflow", "status"])
NOTIFICATIONS = Counter("hora_notifications", "Notifications created by app.notify (a dedup "
                        "key's repeat is not counted), by category.", ["category"])
NOTIFICATION_DELIVERIES = Counter(
    "hora_notification_deliveries", "Notification deliveries by channel and the state they "
    "reached: scheduled and suppressed at notify, sent and failed when their job ends.",
    ["channel", "state"])
PRUNED_ROWS = Counter("hora_pruned_rows", "Records pruned by retention in this process, by "
                      "kind: jobs, dead, ticks, workflows, idempotency.", ["kind"])
JOBS_UNRUNNABLE = Gauge("hora_jobs_unrunnable", "Waiting jobs, due now, that no live worker "
                        "serves (their queue, or their task on it), every tenant; set at each "
                        "/metrics scrape of hora serve.", ["queue", "task"])
JOBS_WAITING = Gauge("hora_jobs_waiting", "Waiting jobs held back by flow control, every "
                     "tenant, by reason (rate_limited, concurrency: by limit name; "
                     "queue_paused: due jobs, by queue); set at each /metrics scrape of hora "
                     "serve.", ["reason", "name"])
RESULT_WAITERS = Gauge("hora_result_waiters", "Calls and long-poll requests of this process "
                       "waiting for a job or workflow to end.")
HTTP_REQUESTS = Counter("hora_http_requests", "API requests answered.",
                        ["method", "route", "status"])
HTTP_DURATION = Histogram("hora_http_request_duration_seconds", "API request latency.",
                          ["method", "route"], buckets=_LATENCY_BUCKETS)


class TaskMetrics:
    """The label children of one task, looked up once: the worker's hot path touches only
    these (``labels()`` costs a dict lookup and a lock per call)."""

    __slots__ = ("duration", "lateness", "outcomes", "task")

    def __init__(self, task: str) -> None:
        self.task = task
        self.duration = JOB_DURATION.labels(task)
        self.lateness = JOB_LATENESS.labels(task)
        self.outcomes: dict[str, Any] = {}

    def ended(self, outcome: str, seconds: float) -> None:
        child = self.outcomes.get(outcome)
        if child is None:
            child = self.outcomes[outcome] = JOB_ATTEMPTS.labels(self.task, outcome)
        child.inc()
        self.duration.observe(seconds)


# -- logs -------------------------------------------------------------------------------------


class JobContextFilter(logging.Filter):
    """Adds the running job's identity and the current trace to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        job = _current.get()
        if job is not None:
            record.job_id = job.job_id
            record.task = job.task
            record.attempt = job.attempt
            record.tenant_id = job.tenant_id
            record.correlation_id = job.correlation_id
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            record.trace_id = f"{span.trace_id:032x}"
            record.span_id = f"{span.span_id:016x}"
        return True


_CONTEXT_FIELDS = ("job_id", "task", "attempt", "tenant_id", "correlation_id", "trace_id",
                   "span_id")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the job context, the error."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
        }
        for name in _CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                out[name] = value
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def configure_logging(level: int = logging.INFO, *, json_format: bool = False,
                      stream: Any = None) -> logging.Handler:
    """Log to ``stream`` (stderr) as text or JSON lines, with the job context on each record.
    Returns the handler (installed on the root logger, replacing earlier ones of ours)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(JobContextFilter())
    if json_format:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_hora", False):
            root.removeHandler(h)
    handler._hora = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    return handler


def log_format_from_env(value: str | None) -> bool:
    """``HORA_LOG_FORMAT``: text (default) or json."""
    fmt = (value or "text").strip().lower()
    if fmt not in ("text", "json"):
        from hora.errors import ConfigError

        raise ConfigError(f"HORA_LOG_FORMAT {value!r}: use text or json")
    return fmt == "json"


__all__ = ["JOBS_ENQUEUED", "JOBS_UNRUNNABLE", "JOB_ATTEMPTS", "JobContextFilter",
           "JsonFormatter", "TaskMetrics",
           "configure_logging", "log_format_from_env", "tracer", "tracing"]
