"""Metrics, traces and structured logs, read back the way an operator's tools read them."""

from __future__ import annotations

import io
import json
import logging
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY

from hora import Hora, RetryPolicy, current_job
from hora.observability import configure_logging
from hora.testing import run_until_idle, wait_for_condition
from hora.workflows import WorkflowContext

_EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    """The process's tracer provider (it can be set once), recording into memory."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)
    return _EXPORTER


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_job_metrics_count_attempts_by_outcome(app: Hora) -> None:
    flaky_calls: list[int] = []

    @app.task(name="obs.flaky", retry=RetryPolicy(max_attempts=3, base=1, jitter="none"))
    def flaky() -> None:
        flaky_calls.append(1)
        if len(flaky_calls) < 2:
            raise ValueError("first try fails")

    before = {o: sample("hora_job_attempts_total", task="obs.flaky", outcome=o)
              for o in ("failed", "succeeded")}
    lateness_before = sample("hora_job_start_lateness_seconds_count", task="obs.flaky")
    enqueued_before = sample("hora_jobs_enqueued_total", task="obs.flaky", queue="default")
    app.enqueue("obs.flaky")
    app.enqueue("obs.flaky", idempotency_key="k")
    app.enqueue("obs.flaky", idempotency_key="k")  # the same job: not counted twice
    run_until_idle(app)
    assert sample("hora_jobs_enqueued_total", task="obs.flaky",
                  queue="default") - enqueued_before == 2
    assert sample("hora_job_attempts_total", task="obs.flaky",
                  outcome="failed") - before["failed"] == 1
    assert sample("hora_job_attempts_total", task="obs.flaky",
                  outcome="succeeded") - before["succeeded"] == 2
    assert sample("hora_job_start_lateness_seconds_count",
                  task="obs.flaky") - lateness_before == 3
    assert sample("hora_worker_jobs_in_flight") == 0


def test_a_job_attempt_is_a_span_its_handler_spans_nest_in(app: Hora,
                                                          spans: InMemorySpanExporter) -> None:
    spans.clear()
    inner = trace.get_tracer("user-code")

    @app.task(name="obs.traced")
    def traced() -> None:
        with inner.start_as_current_span("charge the card"):
            pass

    app.enqueue("obs.traced", correlation_id="order-9")
    run_until_idle(app)
    by_name = {s.name: s for s in spans.get_finished_spans()}
    job_span = by_name["hora.job obs.traced"]
    assert job_span.kind is trace.SpanKind.CONSUMER
    assert job_span.attributes is not None
    assert job_span.attributes["hora.correlation_id"] == "order-9"
    assert job_span.attributes["hora.outcome"] == "succeeded"
    child = by_name["charge the card"]
    assert child.parent is not None and child.parent.span_id == job_span.context.span_id
    assert by_name["hora.enqueue"].kind is trace.SpanKind.PRODUCER


def test_workflow_runs_and_steps_are_spans_and_metrics(app: Hora,
                                                       spans: InMemorySpanExporter) -> None:
    spans.clear()

    def add(a: int, b: int) -> int:
        return a + b

    @app.workflow(name="obs.wf")
    async def wf(ctx: WorkflowContext) -> int:
        return int(await ctx.step(add, 1, 2))

    runs_before = sample("hora_workflow_runs_total", workflow="obs.wf", state="completed")
    wf.start(workflow_id="obs-1")
    run_until_idle(app)
    names = [s.name for s in spans.get_finished_spans()]
    assert "hora.workflow obs.wf" in names and any(n.startswith("hora.step ") for n in names)
    assert sample("hora_workflow_runs_total", workflow="obs.wf",
                  state="completed") - runs_before == 1


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    configure_logging(logging.INFO, json_format=True, stream=stream)
    try:
        yield stream
    finally:
        root.handlers[:] = saved[1]
        root.setLevel(saved[0])


def test_json_logs_carry_the_running_jobs_identity(app: Hora, json_log: io.StringIO) -> None:
    @app.task(name="obs.logs")
    def logs() -> None:
        logging.getLogger("billing").info("charged %s cents", 1250)

    job = app.enqueue("obs.logs", correlation_id="user-42")
    run_until_idle(app)
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    mine = [r for r in lines if r["logger"] == "billing"]
    assert len(mine) == 1
    record = mine[0]
    assert record["message"] == "charged 1250 cents" and record["level"] == "INFO"
    assert record["job_id"] == job.id and record["task"] == "obs.logs"
    assert record["correlation_id"] == "user-42" and record["attempt"] == 1
    assert record["ts"].endswith("+00:00")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_worker_process_serves_metrics_on_its_own_port(tmp_path: Path) -> None:
    port = _free_port()
    hora = str(Path(sys.executable).with_name("hora"))
    log_path = tmp_path / "worker.err"
    with log_path.open("wb") as err:
        proc = subprocess.Popen(
            [hora, "worker", "--app", "hora.demo:app", "--database-url",
             f"sqlite:///{tmp_path / 'w.db'}", "--metrics-port", str(port),
             "--log-format", "json"], stdout=subprocess.DEVNULL, stderr=err)
    try:
        def scraped() -> bool:
            try:
                return "hora_worker_jobs_in_flight" in httpx.get(
                    f"http://127.0.0.1:{port}/metrics", timeout=1).text
            except httpx.HTTPError:
                return False

        def started() -> bool:  # logged once its signal handlers are in place
            return '"logger": "hora.worker"' in log_path.read_text(errors="replace")

        wait_for_condition(scraped, timeout=30)
        wait_for_condition(started, timeout=30)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    err_text = log_path.read_text(errors="replace")
    assert proc.returncode == 0, err_text
    records = [json.loads(line) for line in err_text.splitlines() if line.startswith("{")]
    assert any(r["logger"] == "hora.worker" and "started" in r["message"] for r in records)


def test_a_bad_log_format_is_a_one_line_error(tmp_path: Path) -> None:
    hora = str(Path(sys.executable).with_name("hora"))
    ran = subprocess.run([hora, "worker", "--app", "hora.demo:app", "--log-format", "xml",
                          "--database-url", f"sqlite:///{tmp_path / 'x.db'}"],
                         capture_output=True, text=True, timeout=60, check=False)
    assert ran.returncode == 2 and ran.stderr.startswith("error: ")
    assert "--log-format 'xml'" in ran.stderr and "Traceback" not in ran.stderr


def test_current_job_is_what_the_log_filter_reads(app: Hora) -> None:
    seen: list[str] = []

    @app.task(name="obs.ctx")
    def ctx() -> None:
        seen.append(current_job().task)

    app.enqueue("obs.ctx")
    run_until_idle(app)
    assert seen == ["obs.ctx"]
