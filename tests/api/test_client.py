"""``hora.Client`` and ``hora.AsyncClient`` against a real ``hora serve``, on both stores.

Each test makes its own tenant. Transports used to inject failures wrap httpx's real one:
the request still reaches the server, except when the wrapper refuses to send it. Retry
waits go through a recording no-op ``sleep``, so no test waits for a backoff.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest

import hora
from hora import AsyncClient, Client, JobState, Page, RetryPolicy
from hora.client import (
    AuthError,
    ConnectionFailed,
    QuotaExceeded,
    RateLimited,
    ServerError,
    _Requests,
)
from hora.errors import (
    Conflict,
    HoraError,
    IdempotencyConflict,
    InvalidPayload,
    InvalidTrigger,
    NotFound,
    TransitionConflict,
)
from hora.models import Attempt, ErrorInfo, Job, JobEvent, Schedule, Tick
from hora.testing import wait_for_condition
from tests.api.conftest import Api

T = TypeVar("T")


class Sleeps:
    """A ``sleep`` that records the waits instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)

    async def asleep(self, seconds: float) -> None:
        self.waits.append(seconds)


class Recording(httpx.HTTPTransport):
    """httpx's real transport, keeping every request and response it carried."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[httpx.Request] = []
        self.responses: list[httpx.Response] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        response = super().handle_request(request)
        self.responses.append(response)
        return response


class Flaky(Recording):
    """Fails the first ``failures`` requests, one way:

    ``refuse``  ConnectError before sending (the server never sees the request)
    ``lose``    send, let the server answer, then ReadError (the answer is lost)
    ``status``  answer ``status`` itself with ``headers`` (not sent to the server)
    """

    def __init__(self, mode: str, failures: int = 1, status: int = 503,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__()
        self.mode, self.failures = mode, failures
        self.status, self.headers = status, headers or {}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.failures <= 0:
            return super().handle_request(request)
        self.failures -= 1
        if self.mode == "refuse":
            self.requests.append(request)
            raise httpx.ConnectError("connection refused (injected)", request=request)
        if self.mode == "lose":
            super().handle_request(request).close()
            raise httpx.ReadError("connection reset (injected)", request=request)
        self.requests.append(request)
        return httpx.Response(self.status, headers=self.headers, request=request, json={
            "type": "urn:hora:problem:injected", "title": "injected", "status": self.status,
            "detail": f"injected {self.status}"})


class AsyncFlaky(httpx.AsyncHTTPTransport):
    """``Flaky``'s ``lose`` mode for the async client."""

    def __init__(self, failures: int = 1) -> None:
        super().__init__()
        self.failures = failures
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        response = await super().handle_async_request(request)
        if self.failures > 0:
            self.failures -= 1
            await response.aclose()
            raise httpx.ReadError("connection reset (injected)", request=request)
        return response


class Clients:
    """Makes tenants and clients on the test's server; closes them all afterwards."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.url = api.server.url
        self.sleeps = Sleeps()
        self._open: list[Client | httpx.Client] = []

    def client(self, key: str | None, **options: Any) -> Client:
        options.setdefault("sleep", self.sleeps)
        c = Client(self.url, key, **options)
        self._open.append(c)
        return c

    def tenant(self, scopes: tuple[str, ...] = ("read", "write"), **quotas: Any,
               ) -> tuple[str, str, Client]:
        tid, key, http = self.api.tenant(scopes, **quotas)
        self._open.append(http)
        return tid, key, self.client(key)

    def admin(self) -> Client:
        return self.client(self.api.server.admin_key)

    def close(self) -> None:
        for c in self._open:
            c.close()


@pytest.fixture
def clients(api: Api) -> Iterator[Clients]:
    cs = Clients(api)
    try:
        yield cs
    finally:
        cs.close()


@pytest.fixture
def client(clients: Clients) -> Client:
    return clients.tenant()[2]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def every_item(fetch: Callable[[str | None], Page[T]]) -> list[T]:
    items: list[T] = []
    cursor: str | None = None
    while True:
        page = fetch(cursor)
        items += page.items
        if page.next_cursor is None:
            return items
        cursor = page.next_cursor


def wait_for_state(client: Client, job_id: str, state: JobState) -> Job:
    seen: list[Job] = []

    def reached() -> bool:
        seen.append(client.get_job(job_id))
        return seen[-1].state is state

    wait_for_condition(reached, timeout=30, interval=0.1, message=f"job {job_id} {state}")
    return seen[-1]


def aware(dt: datetime) -> bool:
    return dt.tzinfo is not None and dt.utcoffset() == timedelta(0)


# -- jobs -------------------------------------------------------------------------------------


def test_enqueue_get_list_cancel_round_trip(client: Client) -> None:
    before = datetime.now(UTC)
    job = client.enqueue("reports.build", {"month": "2026-01", "n": [1, 2]},
                         delay=timedelta(hours=1), queue="reports", priority=5,
                         correlation_id="corr-1", timeout=timedelta(seconds=90),
                         retry=RetryPolicy(max_attempts=3, base=2.0, jitter="none"))
    assert isinstance(job, Job)
    assert job.task == "reports.build" and job.payload == {"month": "2026-01", "n": [1, 2]}
    assert job.state is JobState.SCHEDULED and job.queue == "reports" and job.priority == 5
    assert job.correlation_id == "corr-1" and job.timeout == 90.0
    assert job.max_attempts == 3 and job.attempt == 0
    assert job.retry_policy is not None and job.retry_policy["base"] == 2.0
    assert aware(job.created_at) and aware(job.due_at) and job.started_at is None
    assert timedelta(minutes=59) < job.due_at - before < timedelta(minutes=61)

    got = client.get_job(job.id)
    assert got.id == job.id and got.payload == job.payload and got.due_at == job.due_at
    assert got.attempts == ()
    assert got.events and isinstance(got.events[0], JobEvent)
    first = got.events[0]
    assert first.job_id == job.id and first.from_state is None
    assert first.to_state is JobState.SCHEDULED and aware(first.at)

    second = client.enqueue("reports.build", {"month": "2026-02"}, queue="reports",
                            at=datetime(2030, 1, 1, 9, tzinfo=UTC), max_attempts=7)
    assert second.due_at == datetime(2030, 1, 1, 9, tzinfo=UTC) and second.max_attempts == 7
    page = client.list_jobs(state="scheduled", queue="reports")
    assert [j.id for j in page.items] == [second.id, job.id]  # newest first
    assert [j.id for j in client.list_jobs(correlation_id="corr-1").items] == [job.id]
    assert client.list_jobs(state=[JobState.SUCCEEDED, "dead"]).items == []
    assert client.list_jobs(task="no.such.task").items == []
    first_page = client.list_jobs(limit=1)
    assert [j.id for j in first_page.items] == [second.id] and first_page.next_cursor
    rest = client.list_jobs(limit=1, cursor=first_page.next_cursor)
    assert [j.id for j in rest.items] == [job.id]
    assert [j.id for j in every_item(lambda c: client.list_jobs(limit=1, cursor=c))] == [
        second.id, job.id]

    cancelled = client.cancel_job(job.id, reason="no longer needed")
    assert cancelled.state is JobState.CANCELLED
    assert cancelled.state_reason == "no longer needed" and cancelled.finished_at is not None
    assert client.list_jobs(state="cancelled").items[0].id == job.id
    with pytest.raises(TransitionConflict) as e:
        client.cancel_job(job.id)
    assert e.value.job_id == job.id and e.value.actual == "cancelled"
    assert e.value.expected == ("scheduled", "retrying", "running")
    assert getattr(e.value, "status", None) == 409


def test_enqueue_is_idempotent_with_a_key(client: Client) -> None:
    a = client.enqueue("mail.send", {"to": "a@example.com"}, idempotency_key="mail-1")
    b = client.enqueue("mail.send", {"to": "a@example.com"}, idempotency_key="mail-1")
    assert a.id == b.id and a.idempotency_key == "mail-1"
    assert len(client.list_jobs(task="mail.send").items) == 1


def test_enqueue_http_sends_a_target(client: Client) -> None:
    job = client.enqueue_http("https://example.com/hooks/renew", method="put",
                              headers={"X-Plan": "pro"}, body={"plan": "pro"},
                              request_timeout=5, delay=3600, max_attempts=2)
    assert job.task == "hora.http" and job.max_attempts == 2
    assert job.payload == {"url": "https://example.com/hooks/renew", "method": "PUT",
                           "headers": {"x-plan": "pro"}, "body": {"plan": "pro"},
                           "timeout": 5.0}
    assert client.get_job(job.id).payload == job.payload
    with pytest.raises(InvalidPayload, match=r"target\.url"):
        client.enqueue_http("ftp://example.com/file")


def test_dead_letter_queue_replay_and_discard(client: Client) -> None:
    url = f"http://127.0.0.1:{closed_port()}/"
    # The server's worker serves the default queue only.
    jobs = [client.enqueue_http(url, max_attempts=1) for _ in range(4)]
    dead = [wait_for_state(client, j.id, JobState.DEAD) for j in jobs]
    attempt = dead[0].attempts[0]
    assert isinstance(attempt, Attempt) and attempt.job_id == jobs[0].id
    assert attempt.number == 1 and attempt.outcome == "failed"
    assert aware(attempt.started_at) and attempt.ended_at is not None
    assert isinstance(attempt.error, ErrorInfo) and attempt.error.type
    assert isinstance(dead[0].last_error, ErrorInfo)
    assert [e.to_state for e in dead[0].events][-1] is JobState.DEAD

    listed = client.dead_jobs(queue="default", task="hora.http")
    assert {j.id for j in listed.items} == {j.id for j in jobs}
    assert client.dead_jobs(task="other.task").items == []

    one = client.replay(jobs[0].id)  # one id: POST /v1/dlq/{id}/replay
    assert len(one) == 1 and one[0].replay_of == jobs[0].id
    original = client.get_job(jobs[0].id)
    assert original.state is JobState.REPLAYED and original.replayed_as == one[0].id
    many = client.replay([jobs[1].id, jobs[2].id])  # several: POST /v1/dlq/replay
    assert [j.replay_of for j in many] == [jobs[1].id, jobs[2].id]
    assert client.replay([]) == [] and client.discard([]) == []

    assert client.discard(jobs[3].id) == [jobs[3].id]
    assert client.get_job(jobs[3].id).state is JobState.DISCARDED
    with pytest.raises(TransitionConflict, match="is discarded, expected dead"):
        client.replay(jobs[3].id)  # no longer dead: single and bulk answer alike
    with pytest.raises(TransitionConflict) as e:
        client.discard([jobs[3].id])
    assert e.value.job_id == jobs[3].id and e.value.expected == "dead"


# -- schedules --------------------------------------------------------------------------------


def test_schedule_crud_pause_resume_trigger(client: Client) -> None:
    s = client.create_schedule("reports.daily", {"kind": "daily"},
                               trigger={"cron": "0 3 * * *", "timezone": "Europe/Paris"},
                               name="nightly", queue="reports", priority=2, max_attempts=4,
                               misfire="run_once", misfire_grace=timedelta(minutes=5),
                               overlap="skip", retry=RetryPolicy(max_attempts=4),
                               correlation_id="sched-corr")
    assert isinstance(s, Schedule)
    assert s.name == "nightly" and s.task == "reports.daily" and s.payload == {"kind": "daily"}
    assert s.trigger == {"cron": "0 3 * * *", "timezone": "Europe/Paris"}
    assert s.misfire_policy == "run_once" and s.misfire_grace == 300.0
    assert s.overlap_policy == "skip" and s.state == "active" and s.max_attempts == 4
    assert s.next_fire_at is not None and aware(s.next_fire_at) and aware(s.cursor)
    assert s.retry_policy is not None and s.retry_policy["max_attempts"] == 4

    assert client.get_schedule(s.id) == s
    bare = client.create_schedule("reports.hourly", trigger="0 * * * *")  # a bare cron
    assert bare.trigger == {"cron": "0 * * * *"} and bare.name is None
    assert {x.id for x in client.list_schedules().items} == {s.id, bare.id}
    assert [x.id for x in client.list_schedules(limit=1).items] in ([s.id], [bare.id])

    changed = client.update_schedule(s.id, trigger="30 4 * * *", priority=9,
                                     payload={"kind": "late"}, name="late-nightly")
    assert changed.trigger == {"cron": "30 4 * * *"} and changed.priority == 9
    assert changed.payload == {"kind": "late"} and changed.name == "late-nightly"
    assert changed.version > s.version and changed.next_fire_at != s.next_fire_at
    assert changed.next_fire_at is not None and changed.next_fire_at.minute == 30

    paused = client.pause_schedule(s.id)
    assert paused.state == "paused"
    assert [x.id for x in client.list_schedules(state="paused").items] == [s.id]
    assert client.resume_schedule(s.id).state == "active"

    job = client.trigger_schedule(s.id)
    assert job.schedule_id == s.id and job.task == "reports.daily"
    assert job.payload == {"kind": "late"} and job.queue == "reports"

    occ = client.preview_schedule(s.id, count=3, after=datetime(2026, 1, 1, tzinfo=UTC))
    assert [o["at"] for o in occ] == ["2026-01-01T04:30:00Z", "2026-01-02T04:30:00Z",
                                      "2026-01-03T04:30:00Z"]
    assert set(occ[0]) >= {"at", "local", "nominal", "skipped", "notes"}
    assert len(client.preview_schedule(s.id)) == 10

    client.delete_schedule(s.id)
    with pytest.raises(NotFound):
        client.get_schedule(s.id)
    with pytest.raises(NotFound):
        client.delete_schedule(s.id)


def test_schedule_ticks(client: Client) -> None:
    start = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    s = client.create_schedule("client.tick", trigger={"every": "PT1S", "start": start})
    seen: list[Page[Tick]] = []

    def ticked() -> bool:
        seen.append(client.schedule_ticks(s.id))
        return len(seen[-1].items) >= 2

    wait_for_condition(ticked, timeout=30, interval=0.2, message="two ticks")
    client.pause_schedule(s.id)
    ticks = seen[-1].items
    t = ticks[0]
    assert isinstance(t, Tick) and t.schedule_id == s.id and t.outcome == "fired"
    assert t.job_id is not None and aware(t.nominal) and aware(t.recorded_at)
    assert ticks[0].nominal > ticks[1].nominal  # newest first
    assert client.get_job(t.job_id).schedule_id == s.id
    assert client.schedule_ticks(s.id, outcome="skipped").items == []
    first = client.schedule_ticks(s.id, limit=1)
    assert len(first.items) == 1 and first.next_cursor is not None
    nxt = client.schedule_ticks(s.id, limit=1, cursor=first.next_cursor)
    assert nxt.items[0].nominal < first.items[0].nominal


def test_http_schedule(client: Client) -> None:
    s = client.create_http_schedule("https://example.com/hook", trigger="0 6 * * 1",
                                    method="PATCH", body={"x": 1}, request_timeout=10,
                                    paused=True)
    assert s.task == "hora.http" and s.state == "paused"
    assert s.payload == {"url": "https://example.com/hook", "method": "PATCH", "headers": {},
                         "body": {"x": 1}, "timeout": 10.0}
    changed = client.update_schedule(s.id, target={"url": "https://example.com/other"})
    assert changed.payload["url"] == "https://example.com/other"
    assert changed.payload["method"] == "POST"
    with pytest.raises(InvalidPayload, match="target"):
        client.update_schedule(s.id, payload={"a": 1})


def test_preview_an_unsaved_trigger(client: Client) -> None:
    after = datetime(2026, 1, 1, tzinfo=UTC)  # a Thursday
    occ = client.preview("0 9 * * 1-5", after=after, count=4)
    assert [o["at"] for o in occ] == ["2026-01-01T09:00:00Z", "2026-01-02T09:00:00Z",
                                      "2026-01-05T09:00:00Z", "2026-01-06T09:00:00Z"]
    assert all(o["skipped"] is None and o["notes"] == [] for o in occ)
    ny = client.preview({"cron": "0 9 * * *", "timezone": "America/New_York"}, after=after,
                        count=1)
    assert ny[0]["at"] == "2026-01-01T14:00:00Z" and ny[0]["local"].startswith(
        "2026-01-01T09:00")
    assert len(client.preview("*/5 * * * *")) == 10


# -- errors -----------------------------------------------------------------------------------


def test_errors_map_to_the_sdk_tree(clients: Clients) -> None:
    _, _, a = clients.tenant()
    _, _, b = clients.tenant()
    job = a.enqueue("private.task", {"secret": 1})
    with pytest.raises(NotFound) as nf:
        b.get_job(job.id)
    assert getattr(nf.value, "status", None) == 404
    problem = getattr(nf.value, "problem", {})
    assert problem["type"] == "urn:hora:problem:not-found" and problem["detail"] == str(nf.value)
    with pytest.raises(NotFound):
        b.cancel_job(job.id)

    with pytest.raises(InvalidTrigger) as it:
        a.create_schedule("t", trigger={"cron": "61 * * * *"})
    assert "cron" in str(it.value) and getattr(it.value, "status", None) == 422
    assert getattr(it.value, "problem", {})["errors"][0]["field"].startswith("trigger")
    with pytest.raises(InvalidTrigger, match="cron"):
        a.preview("not a cron at all")

    first = a.enqueue("mail.send", {"to": "a"}, idempotency_key="k-1")
    with pytest.raises(IdempotencyConflict) as ic:
        a.enqueue("mail.send", {"to": "b"}, idempotency_key="k-1")
    assert ic.value.key == "k-1" and ic.value.existing_job_id == first.id
    assert str(ic.value) == getattr(ic.value, "problem", {})["detail"]
    assert "k-1" in str(ic.value) and first.id in str(ic.value)

    with pytest.raises(InvalidPayload, match="priority") as ip:
        a.enqueue("t", priority=10**9)
    assert getattr(ip.value, "status", None) == 422
    with pytest.raises(InvalidPayload, match="reserved"):
        a.enqueue("hora.http", {})

    with pytest.raises(TransitionConflict) as tc:
        a.replay([first.id])
    assert tc.value.job_id == first.id and tc.value.actual == "scheduled"

    a.create_schedule("t", trigger="0 1 * * *", name="unique")
    with pytest.raises(Conflict) as c:
        a.create_schedule("t", trigger="0 2 * * *", name="unique")
    assert type(c.value) is Conflict and "unique" in str(c.value)
    with pytest.raises(InvalidPayload):
        a.get_job("")


def test_auth_errors(clients: Clients) -> None:
    for key in ("hora_" + "x" * 32, None):
        with pytest.raises(AuthError) as e:
            clients.client(key).list_jobs()
        assert e.value.status == 401 and e.value.problem["type"].endswith("unauthorized")
        assert isinstance(e.value, HoraError)
    _, _, reader = clients.tenant(scopes=("read",))
    assert reader.list_jobs().items == []
    with pytest.raises(AuthError, match="write") as w:
        reader.enqueue("t")
    assert w.value.status == 403
    _, _, writer = clients.tenant()
    with pytest.raises(AuthError, match="admin"):
        writer.list_tenants()


def test_quota_exceeded(clients: Clients) -> None:
    _, _, c = clients.tenant(max_pending_jobs=1)
    c.enqueue("t")
    with pytest.raises(QuotaExceeded, match="max_pending_jobs") as e:
        c.enqueue("t")
    assert isinstance(e.value, AuthError) and e.value.status == 403


def test_rate_limited(clients: Clients) -> None:
    _, key, _ = clients.tenant(rate_limit=1)
    c = clients.client(key, retries=0)
    with pytest.raises(RateLimited) as e:
        for _ in range(10):
            c.list_jobs()
    assert e.value.status == 429 and e.value.retry_after is not None
    assert e.value.retry_after > 0
    assert e.value.problem["type"] == "urn:hora:problem:rate-limited"


# -- admin and health -------------------------------------------------------------------------


def test_tenants_and_keys(clients: Clients) -> None:
    admin = clients.admin()
    tid = f"c-{uuid.uuid4().hex[:10]}"
    t = admin.create_tenant(tid, name="Client Co", max_pending_jobs=100, rate_limit=50)
    assert t["id"] == tid and t["name"] == "Client Co" and t["max_pending_jobs"] == 100
    assert t["rate_limit"] == 50 and t["webhook_secret"].startswith("whsec_")
    with pytest.raises(Conflict):
        admin.create_tenant(tid)
    assert admin.get_tenant(tid)["name"] == "Client Co"
    listed = every_item(lambda c: admin.list_tenants(limit=100, cursor=c))
    assert tid in {x["id"] for x in listed}
    updated = admin.update_tenant(tid, name="Renamed", rate_limit=None)
    assert updated["name"] == "Renamed" and updated["rate_limit"] is None
    assert updated["max_pending_jobs"] == 100
    with pytest.raises(NotFound):
        admin.get_tenant("no-such-tenant")
    rotated = admin.rotate_webhook_secret(tid)["webhook_secret"]
    assert rotated.startswith("whsec_") and rotated != t["webhook_secret"]
    assert "webhook_secret" not in admin.get_tenant(tid)

    until = datetime.now(UTC) + timedelta(days=7)
    k = admin.create_key(tid, scopes=("read",), name="ro", expires_at=until)
    assert k["key"].startswith("hora_") and k["scopes"] == ["read"] and k["name"] == "ro"
    assert datetime.fromisoformat(k["expires_at"]) == until
    keys = admin.list_keys(tid).items
    assert [x["id"] for x in keys] == [k["id"]] and "key" not in keys[0]
    with pytest.raises(InvalidPayload, match="tenant_id"):
        admin.create_key("no-such-tenant")

    ro = clients.client(k["key"])
    assert ro.list_jobs().items == []
    with pytest.raises(AuthError):
        ro.enqueue("t")
    revoked = admin.revoke_key(k["id"])
    assert revoked["revoked_at"] is not None

    def refused() -> bool:
        try:
            ro.list_jobs()
        except AuthError:
            return True
        return False

    wait_for_condition(refused, timeout=15, interval=0.2, message="the revoked key refused")


def test_health(clients: Clients) -> None:
    anonymous = clients.client(None)
    assert anonymous.healthz()["status"] == "ok"
    assert anonymous.readyz()["status"] == "ok"


# -- the wire: headers, idempotency keys, retries ---------------------------------------------


def test_headers_and_automatic_idempotency_keys(clients: Clients) -> None:
    _, key, _ = clients.tenant()
    wire = Recording()
    c = clients.client(key, transport=wire)
    a = c.enqueue("t", {"n": 1})
    b = c.enqueue("t", {"n": 1})
    c.get_job(a.id)
    post_a, post_b, get = wire.requests
    assert a.id != b.id  # two calls are two jobs, however alike
    keys = [post_a.headers["idempotency-key"], post_b.headers["idempotency-key"]]
    assert keys[0] != keys[1] and all(uuid.UUID(k).version == 4 for k in keys)
    assert "idempotency-key" not in get.headers
    for r in wire.requests:
        assert r.headers["user-agent"] == f"hora-python/{hora.__version__}"
        assert r.headers["authorization"] == f"Bearer {key}"

    call = _Requests.enqueue("t", {"n": 2}, {})  # one call sent twice: the server replays
    first, again = c._send(call), c._send(call)
    assert first.id == again.id
    assert wire.responses[-1].headers.get("idempotent-replayed") == "true"
    assert [j.payload for j in c.list_jobs(task="t").items].count({"n": 2}) == 1


def test_retry_after_a_refused_connection(clients: Clients) -> None:
    _, key, _ = clients.tenant()
    wire = Flaky("refuse")
    c = clients.client(key, transport=wire)
    job = c.enqueue("retry.refused", {"n": 1})
    assert len(wire.requests) == 2
    assert wire.requests[0].headers["idempotency-key"] == wire.requests[1].headers[
        "idempotency-key"]
    assert len(clients.sleeps.waits) == 1 and 0 < clients.sleeps.waits[0] <= 5
    assert [j.id for j in c.list_jobs(task="retry.refused").items] == [job.id]


def test_retry_after_a_lost_answer_runs_the_post_once(clients: Clients) -> None:
    _, key, _ = clients.tenant()
    wire = Flaky("lose")
    c = clients.client(key, transport=wire)
    job = c.enqueue("retry.lost", {"n": 1})
    assert len(wire.responses) == 2  # the server answered both tries
    assert wire.responses[1].headers.get("idempotent-replayed") == "true"
    assert [j.id for j in c.list_jobs(task="retry.lost").items] == [job.id]


def test_no_retry_of_a_patch_whose_answer_was_lost(clients: Clients) -> None:
    _, key, plain = clients.tenant()
    s = plain.create_schedule("t", trigger="0 1 * * *")
    wire = Flaky("lose")
    c = clients.client(key, transport=wire)
    with pytest.raises(ConnectionFailed, match="ReadError") as e:
        c.update_schedule(s.id, priority=3)
    assert isinstance(e.value.__cause__, httpx.ReadError) and len(wire.responses) == 1
    assert plain.get_schedule(s.id).priority == 3  # it did run, once


def test_retry_on_503_and_429_honours_retry_after_capped(clients: Clients) -> None:
    _, key, _ = clients.tenant()
    c = clients.client(key, transport=Flaky("status", status=429,
                                            headers={"Retry-After": "7"}))
    assert c.list_jobs().items == []
    assert clients.sleeps.waits == [5.0]  # 7 s advised, 5 s the cap

    c = clients.client(key, transport=Flaky("status", failures=2, status=503))
    assert c.list_jobs().items == []
    assert len(clients.sleeps.waits) == 3

    c = clients.client(key, transport=Flaky("status", failures=5, status=503), retries=1)
    with pytest.raises(ServerError) as e:
        c.list_jobs()
    assert e.value.status == 503 and e.value.problem["detail"] == "injected 503"

    wire = Flaky("status", status=429, headers={"Retry-After": "1"})
    c = clients.client(key, transport=wire, retries=0)
    with pytest.raises(RateLimited) as rl:
        c.enqueue("t")
    assert rl.value.retry_after == 1.0 and len(wire.requests) == 1


def test_unreachable_server(clients: Clients) -> None:
    sleeps = Sleeps()
    c = Client(f"http://127.0.0.1:{closed_port()}", "k", retries=3, sleep=sleeps)
    with c, pytest.raises(ConnectionFailed) as e:
        c.enqueue("t")
    assert isinstance(e.value.__cause__, httpx.ConnectError)
    assert isinstance(e.value, ServerError) and e.value.status is None
    assert len(sleeps.waits) == 3 and all(0 < w <= 5 for w in sleeps.waits)


# -- the async client -------------------------------------------------------------------------


def test_async_client(clients: Clients) -> None:
    _, key, _ = clients.tenant()
    _, other_key, _ = clients.tenant()
    sleeps = Sleeps()

    async def main() -> None:
        async with AsyncClient(clients.url, key, sleep=sleeps.asleep) as c:
            job = await c.enqueue("async.task", {"n": 1}, delay=60, queue="aq")
            assert job.state is JobState.SCHEDULED and job.queue == "aq"
            got = await c.get_job(job.id)
            assert got.id == job.id and got.events[0].to_state is JobState.SCHEDULED
            page = await c.list_jobs(queue="aq")
            assert [j.id for j in page.items] == [job.id]
            occ = await c.preview("0 9 * * *", after=datetime(2026, 1, 1, tzinfo=UTC),
                                  count=2)
            assert [o["at"] for o in occ] == ["2026-01-01T09:00:00Z", "2026-01-02T09:00:00Z"]
            s = await c.create_schedule("async.task", trigger="0 9 * * *")
            assert (await c.pause_schedule(s.id)).state == "paused"
            assert (await c.healthz())["status"] == "ok"
            with pytest.raises(InvalidTrigger, match="cron"):
                await c.create_schedule("t", trigger={"cron": "0 25 * * *"})
            cancelled = await c.cancel_job(job.id)
            assert cancelled.state is JobState.CANCELLED
            async with AsyncClient(clients.url, other_key) as other:
                with pytest.raises(NotFound):
                    await other.get_job(job.id)
        async with AsyncClient(clients.url, "hora_nope") as bad:
            with pytest.raises(AuthError):
                await bad.list_jobs()
        wire = AsyncFlaky()
        async with AsyncClient(clients.url, key, transport=wire, sleep=sleeps.asleep) as c:
            again = await c.enqueue("async.lost", {"n": 1})
            assert len(wire.requests) == 2 and len(sleeps.waits) == 1
            assert [j.id for j in (await c.list_jobs(task="async.lost")).items] == [again.id]

    asyncio.run(main())


# -- without a server -------------------------------------------------------------------------


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HORA_URL", "http://hora.internal:9000/")
    monkeypatch.setenv("HORA_API_KEY", "hora_env")
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"status": "ok"})

    with Client(transport=httpx.MockTransport(answer)) as c:
        assert c.base_url == "http://hora.internal:9000" and c.healthz() == {"status": "ok"}
    assert str(seen[0].url) == "http://hora.internal:9000/healthz"
    assert seen[0].headers["authorization"] == "Bearer hora_env"
    with Client("http://x", api_key="") as c:
        assert "authorization" not in c._http.headers
    monkeypatch.delenv("HORA_URL")
    with Client() as c:
        assert c.base_url == "http://127.0.0.1:8000"


def test_answers_that_are_not_problems() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/healthz":
            return httpx.Response(502, text="<html>Bad gateway</html>")
        if request.url.path == "/readyz":
            return httpx.Response(503, json={"status": "unavailable", "detail": "store: down"})
        return httpx.Response(200, json={"unexpected": True})

    with Client("http://x", transport=httpx.MockTransport(answer), retries=0) as c:
        with pytest.raises(ServerError, match="Bad gateway") as e:
            c.healthz()
        assert e.value.status == 502
        assert c.readyz() == {"status": "unavailable", "detail": "store: down"}
        with pytest.raises(ServerError, match="unexpected answer"):
            c.get_job("j1")
