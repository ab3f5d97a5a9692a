"""HTTP targets end to end: a worker on the FakeClock calls a real HTTP server on 127.0.0.1.

The server answers from a script (status, headers, body, or hang until released) and
records every request, so a test can check the signature the receiver saw, how often it was
called and what each attempt sent. Time between attempts is the FakeClock's; only the HTTP
exchange itself is real.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from hora import Fail, FakeClock, Hora, JobState, Retry, RetryPolicy
from hora.errors import InvalidPayload
from hora.http_target import (
    TASK_NAME,
    AddressPolicy,
    HttpTargetError,
    HttpTargets,
    check_target_address,
    deliver,
    parse_target,
    register_http_task,
    verify,
)
from hora.testing import arun_until_idle
from tests.receiver import Receiver, Reply

T0 = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture
def app(sqlite_url: str, clock: FakeClock) -> Iterator[Hora]:
    a = Hora(sqlite_url, clock=clock)
    try:
        yield a
    finally:
        a.close()


@pytest.fixture
def targets(app: Hora, monkeypatch: pytest.MonkeyPatch) -> HttpTargets:
    monkeypatch.setenv("HORA_HTTP_ALLOW", "127.0.0.1")
    return register_http_task(app, retry=RetryPolicy(max_attempts=3, base=1, jitter="none"))


def run(app: Hora, targets: HttpTargets, until: datetime | None = None) -> dict[str, int]:
    async def main() -> dict[str, int]:
        try:
            return await arun_until_idle(app, until=until)
        finally:
            await targets.aclose()

    return asyncio.run(main())


def enqueue(app: Hora, target: dict[str, Any], **options: Any) -> str:
    return app.enqueue(TASK_NAME, parse_target(target), **options).id


def secret_of(app: Hora) -> str:
    return app.store.get_tenant(app.tenant_id).webhook_secret


# -- through the worker ----------------------------------------------------------------------


def test_the_receiver_verifies_the_signature_with_the_tenants_secret(
        sqlite_url: str, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    # A fake clock that starts at the wall clock's now: the reference package checks the
    # timestamp against the wall clock.
    clock = FakeClock(datetime.now(UTC))
    app = Hora(sqlite_url, clock=clock)
    monkeypatch.setenv("HORA_HTTP_ALLOW", "127.0.0.1")
    targets = register_http_task(app)
    try:
        job_id = enqueue(app, {"url": receiver.url("/renew?plan=pro"),
                               "headers": {"Authorization": "Bearer t0k"},
                               "body": {"customer": "c-1", "amount": 12.5}},
                         correlation_id="corr-9")
        run(app, targets)
        job = app.get_job(job_id)
        assert job.state is JobState.SUCCEEDED
        assert job.result["status"] == 200 and job.result["response"] == "ok"
        assert job.result["latency_ms"] >= 0
        [seen] = receiver.requests
        assert (seen.method, seen.path) == ("POST", "/renew?plan=pro")
        # The payload is stored as canonical JSON, so keys may come out in another order.
        assert json.loads(seen.body) == {"customer": "c-1", "amount": 12.5}
        assert Webhook(secret_of(app)).verify(seen.body, seen.headers) == {
            "customer": "c-1", "amount": 12.5}
        assert seen.headers["webhook-id"] == job_id
        assert seen.headers["webhook-timestamp"] == str(int(job.attempts[0].started_at
                                                            .timestamp()))
        assert seen.headers["content-type"] == "application/json"
        assert seen.headers["authorization"] == "Bearer t0k"
        assert seen.headers["hora-attempt"] == "1"
        assert seen.headers["hora-correlation-id"] == "corr-9"
    finally:
        app.close()


def test_a_503_is_retried_with_the_same_webhook_id_then_succeeds(
        app: Hora, clock: FakeClock, receiver: Receiver, targets: HttpTargets) -> None:
    receiver.answer(Reply(503, b"down for maintenance"), Reply(200, b'{"ok":true}'))
    job_id = enqueue(app, {"url": receiver.url(), "method": "PUT", "body": "hello"})
    run(app, targets)
    job = app.get_job(job_id)
    assert job.state is JobState.SUCCEEDED and job.attempt == 2
    assert job.result["status"] == 200 and job.result["response"] == '{"ok":true}'
    first = job.attempts[0]
    assert first.outcome == "failed" and first.error is not None
    assert first.error.type == "hora.http_target.HttpTargetError"
    assert first.error.message.startswith(f"PUT {receiver.url()} answered 503")
    assert first.error.message.endswith(": down for maintenance")
    a, b = receiver.requests
    assert a.headers["webhook-id"] == b.headers["webhook-id"] == job_id
    assert (a.headers["hora-attempt"], b.headers["hora-attempt"]) == ("1", "2")
    assert a.body == b.body == b"hello"
    assert a.headers["content-type"] == "text/plain; charset=utf-8"
    secret = secret_of(app)
    for seen, attempt in zip((a, b), job.attempts, strict=True):
        assert seen.headers["webhook-timestamp"] == str(int(attempt.started_at.timestamp()))
        verify(secret, seen.headers, seen.body, now=attempt.started_at)


def test_a_400_goes_dead_at_once_without_retrying(
        app: Hora, receiver: Receiver, targets: HttpTargets) -> None:
    receiver.answer(Reply(400, b'{"error":"unknown customer"}'))
    job_id = enqueue(app, {"url": receiver.url(), "body": {"customer": "nobody"}})
    stats = run(app, targets)
    job = app.get_job(job_id)
    assert job.state is JobState.DEAD and job.attempt == 1 and stats["retried"] == 0
    assert len(receiver.requests) == 1
    assert job.last_error is not None and job.last_error.type == "hora.errors.Fail"
    assert "answered 400 Bad Request" in job.last_error.message
    assert '{"error":"unknown customer"}' in job.last_error.message
    assert job.state_reason is not None and "non-retryable" in job.state_reason


def test_a_429_waits_exactly_its_retry_after_on_the_fake_clock(
        app: Hora, clock: FakeClock, receiver: Receiver, targets: HttpTargets) -> None:
    receiver.answer(Reply(429, b"slow down", {"Retry-After": "120"}))
    job_id = enqueue(app, {"url": receiver.url()})
    run(app, targets, until=T0 + timedelta(seconds=60))
    waiting = app.get_job(job_id)
    assert waiting.state is JobState.RETRYING and len(receiver.requests) == 1
    failed_at = waiting.attempts[0].ended_at
    assert failed_at == T0 and waiting.due_at == failed_at + timedelta(seconds=120)
    assert waiting.attempts[0].outcome == "retry"
    assert waiting.last_error is not None and "answered 429" in waiting.last_error.message
    assert "retry after 120s" in waiting.last_error.message

    run(app, targets)
    done = app.get_job(job_id)
    assert done.state is JobState.SUCCEEDED and done.attempt == 2
    assert done.attempts[1].started_at == T0 + timedelta(seconds=120)


def test_a_timeout_is_retried(app: Hora, receiver: Receiver, targets: HttpTargets) -> None:
    receiver.answer(Reply(hang=True))
    job_id = enqueue(app, {"url": receiver.url(), "timeout": 0.2})
    run(app, targets)
    job = app.get_job(job_id)
    assert job.state is JobState.SUCCEEDED and job.attempt == 2
    error = job.attempts[0].error
    assert error is not None and error.type == "hora.http_target.HttpTargetError"
    assert error.message == f"POST {receiver.url()}: timed out after 0.2s"


def test_loopback_is_refused_without_hora_http_allow(
        app: Hora, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HORA_HTTP_ALLOW", raising=False)
    targets = register_http_task(app)
    job_id = enqueue(app, {"url": receiver.url()})
    run(app, targets)
    job = app.get_job(job_id)
    assert job.state is JobState.DEAD and job.attempt == 1
    assert job.last_error is not None
    assert job.last_error.message == ("target.url: host 127.0.0.1 resolves to loopback "
                                      "address 127.0.0.1; set HORA_HTTP_ALLOW to permit it")
    assert receiver.requests == []


def test_a_bad_payload_written_around_the_api_goes_dead(
        app: Hora, receiver: Receiver, targets: HttpTargets) -> None:
    job_id = app.enqueue(TASK_NAME, {"url": "file:///etc/passwd"}).id
    run(app, targets)
    job = app.get_job(job_id)
    assert job.state is JobState.DEAD and job.attempt == 1
    assert job.last_error is not None
    assert job.last_error.message == "target.url: must be an http or https URL"


def test_each_tenant_gets_its_own_secret_once(app: Hora, receiver: Receiver,
                                              targets: HttpTargets) -> None:
    ids = [enqueue(app, {"url": receiver.url(), "body": {"n": n}}) for n in range(3)]
    run(app, targets)
    assert all(app.get_job(i).state is JobState.SUCCEEDED for i in ids)
    secret = secret_of(app)
    for seen in receiver.requests:
        verify(secret, seen.headers, seen.body, now=T0)
    # The stored secret survives the cache: a new handle (a restarted worker) signs alike.
    again = HttpTargets(app, AddressPolicy())
    assert asyncio.run(again.secret(app.tenant_id)) == secret


# -- deliver, directly -----------------------------------------------------------------------


def call(target: dict[str, Any], *, now: datetime = T0) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        async with httpx.AsyncClient(follow_redirects=False) as client:
            return await deliver(parse_target(target), secret="whsec_" + "A" * 32,
                                 msg_id="job_1", client=client,
                                 policy=AddressPolicy.parse("127.0.0.1"), now=lambda: now)

    return asyncio.run(main())


def test_redirects_are_not_followed(receiver: Receiver) -> None:
    receiver.answer(Reply(302, b"", {"Location": receiver.url("/elsewhere")}))
    with pytest.raises(Fail, match="answered 302 Found"):
        call({"url": receiver.url()})
    assert [s.path for s in receiver.requests] == ["/hook"]


def test_get_without_a_body_and_a_string_body_with_its_own_content_type(
        receiver: Receiver) -> None:
    call({"url": receiver.url(), "method": "GET"})
    call({"url": receiver.url(), "method": "PATCH", "body": "<x/>",
          "headers": {"Content-Type": "application/xml"}})
    get, patch = receiver.requests
    assert get.method == "GET" and get.body == b"" and "content-type" not in get.headers
    assert "hora-attempt" not in get.headers and "hora-correlation-id" not in get.headers
    assert patch.body == b"<x/>" and patch.headers["content-type"] == "application/xml"
    for seen in (get, patch):
        verify("whsec_" + "A" * 32, seen.headers, seen.body, now=T0)


def test_the_result_keeps_2_kib_and_an_error_1_kib_of_the_answer(receiver: Receiver) -> None:
    receiver.answer(Reply(200, b"a" * 100_000), Reply(502, b"b" * 100_000))
    assert call({"url": receiver.url()})["response"] == "a" * 2048
    with pytest.raises(HttpTargetError) as e:
        call({"url": receiver.url()})
    assert str(e.value).endswith(": " + "b" * 1024)
    assert "answered 502 Bad Gateway" in str(e.value)


def test_retry_after_as_an_http_date_and_a_408_without_one(receiver: Receiver) -> None:
    receiver.answer(Reply(429, headers={"Retry-After": "Tue, 01 Jan 2030 00:05:00 GMT"}),
                    Reply(408))
    with pytest.raises(Retry) as r:
        call({"url": receiver.url()})
    assert r.value.delay == 300.0 and "answered 429 Too Many Requests" in r.value.reason
    with pytest.raises(Retry) as r:
        call({"url": receiver.url()})
    assert r.value.delay is None and "answered 408 Request Timeout" in r.value.reason


def test_a_refused_connection_is_retryable() -> None:
    with socket.socket() as s:  # a port nobody listens on once this socket closes
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(HttpTargetError, match=r"^POST http://127\.0\.0\.1:\d+/: ConnectError"):
        call({"url": f"http://127.0.0.1:{port}/"})


def test_localhost_resolves_and_is_refused() -> None:
    with pytest.raises(Fail, match="host localhost resolves to loopback address"):
        asyncio.run(AddressPolicy().check("http://localhost:8080/"))


# -- the check at enqueue (the API calls it; the worker still checks at each call) ------------


def _addresses(*ips: str) -> Any:
    """A stand-in for ``socket.getaddrinfo`` answering ``ips`` for any name."""
    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        return [(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (ip, 0)) for ip in ips]
    return getaddrinfo


@pytest.mark.parametrize(("ips", "refused"), [
    (("127.0.0.1",), "loopback 127.0.0.1"),
    (("10.0.0.1", "fd00::1", "10.0.0.1"), "private 10.0.0.1, private fd00::1)"),
    (("169.254.169.254",), "link-local 169.254.169.254"),
    (("10.0.0.1", "93.184.215.14"), None),  # one public address: the worker judges each
    (("93.184.215.14",), None),
])
def test_enqueue_refuses_a_name_only_if_every_address_is_refused(
        monkeypatch: pytest.MonkeyPatch, ips: tuple[str, ...], refused: str | None) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", _addresses(*ips))
    if refused is None:
        check_target_address("https://svc.example/hook", AddressPolicy())
        return
    with pytest.raises(InvalidPayload, match=re.escape(
            f"resolves only to addresses workers do not call ({refused}")) as err:
        check_target_address("https://svc.example/hook", AddressPolicy())
    assert err.value.field == "target.url"


def test_enqueue_leaves_a_slow_or_failing_resolver_to_the_worker(
        monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def hang(*args: Any, **kwargs: Any) -> Any:
        release.wait(10)
        return _addresses("127.0.0.1")()

    monkeypatch.setattr(socket, "getaddrinfo", hang)
    try:
        began = time.monotonic()
        check_target_address("https://slow.example/", AddressPolicy(), resolve_timeout=0.2)
        assert time.monotonic() - began < 5
    finally:
        release.set()

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    check_target_address("https://nowhere.example/", AddressPolicy())


def test_enqueue_checks_literal_addresses_without_resolving(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a literal address was resolved")

    monkeypatch.setattr(socket, "getaddrinfo", never)
    with pytest.raises(InvalidPayload, match=r"^target\.url: ::ffff:10\.0\.0\.1 is a "
                       "IPv4-mapped private address"):
        check_target_address("http://[::ffff:10.0.0.1]/", AddressPolicy())
    check_target_address("http://10.0.0.1/", AddressPolicy.parse("10.0.0.0/8"))
    check_target_address("http://localhost/", AddressPolicy.parse("*"))
    check_target_address("http://8.8.8.8/", AddressPolicy())
