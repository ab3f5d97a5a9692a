"""Every SDK error the API can answer comes back out of ``hora.Client`` as the same class with
the same typed fields (issue #10): the server writes them as RFC 9457 extension members and
the client rebuilds the exception from them, never from the message.

``CASES`` is one table: how to provoke the error through a real route of a real server
(``hora serve`` on each store), the class the client must raise, and the typed fields it must
carry. The problem document itself is checked too (type, status, members), so a regression
on either side of the wire shows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from hora import Client
from hora.client import _Call, _dict
from hora.errors import (
    EXCEPTION_MEMBER,
    HoraError,
    IdempotencyConflict,
    InvalidPayload,
    InvalidTrigger,
    LockTimeout,
    NotFound,
    TooLarge,
    TooSparse,
    TransitionConflict,
    WaitTimeout,
)
from hora.limits import MAX_PAYLOAD_BYTES
from tests.api.conftest import Api


@dataclass
class World:
    """What a case may use: a tenant's client, raw HTTP as that tenant, the admin client."""

    client: Client
    http: httpx.Client
    admin: Client
    #: Ids a case created on the way, for the fields it expects.
    ids: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    id: str
    provoke: Callable[[World], Any]
    kind: type[HoraError]
    #: The typed fields the rebuilt exception must carry; a callable value is given the
    #: ids the case created and returns the expected value.
    fields: dict[str, Any]
    status: int
    slug: str


def _scheduled_job(w: World) -> str:
    job_id: str = w.client.enqueue("t", {}, delay=3600).id
    return job_id


def _replay_scheduled(w: World) -> None:
    w.ids["job"] = _scheduled_job(w)
    w.client.replay(w.ids["job"])


def _idempotency(w: World) -> None:
    w.ids["job"] = w.client.enqueue("t", {"n": 1}, idempotency_key="k-1").id
    w.client.enqueue("t", {"n": 2}, idempotency_key="k-1")


def _lock_held(w: World) -> None:
    w.http.post("/v1/locks/roundtrip/acquire", json={"ttl": 600, "owner": "a"})
    w.client._send(_Call("POST", "/v1/locks/roundtrip/acquire", _dict,
                         body={"ttl": 60, "owner": "b"}, has_body=True))


def _wait_timeout(w: World) -> None:
    w.ids["job"] = _scheduled_job(w)
    w.client._send(_Call("GET", f"/v1/jobs/{w.ids['job']}", _dict,
                         params=(("wait", "0.2"), ("strict", "true"))))


CASES = [
    Case("not-found", lambda w: w.client.get_job("no-such-job"), NotFound,
         {"field": None}, 404, "not-found"),
    Case("invalid-payload", lambda w: w.admin.create_key("no-such-tenant"), InvalidPayload,
         {"field": "tenant_id", "reason": "no tenant 'no-such-tenant'; create it first"},
         422, "invalid-request"),
    Case("too-large", lambda w: w.client.enqueue("t", {"blob": "x" * MAX_PAYLOAD_BYTES}),
         TooLarge, {"field": "payload"}, 422, "invalid-request"),
    Case("invalid-trigger", lambda w: w.client.create_schedule("t", trigger="0 0 32 * *"),
         InvalidTrigger, {"field": "trigger.cron"}, 422, "invalid-trigger"),
    Case("too-sparse",
         lambda w: w.client.preview("DTSTART:20260101T000000Z\n"
                                    "RRULE:FREQ=YEARLY;BYWEEKNO=1;BYMONTH=7"),
         TooSparse, {"field": "trigger.rrule"}, 422, "invalid-trigger"),
    Case("transition-conflict", _replay_scheduled, TransitionConflict,
         {"job_id": lambda ids: ids["job"], "expected": "dead", "actual": "scheduled"},
         409, "state-conflict"),
    Case("idempotency-conflict", _idempotency, IdempotencyConflict,
         {"key": "k-1", "existing_job_id": lambda ids: ids["job"]}, 409,
         "idempotency-conflict"),
    Case("lock-timeout", _lock_held, LockTimeout,
         {"name": "roundtrip", "wait": 0.0}, 409, "lock-held"),
    Case("wait-timeout", _wait_timeout, WaitTimeout,
         {"kind": "job", "record_id": lambda ids: ids["job"], "state": "scheduled",
          "waited": 0.2}, 409, "wait-timeout"),
]


@pytest.fixture
def world(api: Api) -> Iterator[World]:
    _, key, http = api.tenant()
    with Client(api.server.url, key, retries=0) as client, \
            Client(api.server.url, api.server.admin_key, retries=0) as admin:
        yield World(client, http, admin)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_an_sdk_error_comes_back_as_itself(world: World, case: Case) -> None:
    with pytest.raises(HoraError) as caught:
        case.provoke(world)
    err = caught.value
    assert type(err) is case.kind, repr(err)
    for name, want in case.fields.items():
        want = want(world.ids) if callable(want) else want
        assert getattr(err, name) == want, (name, err)
    if err.field is not None:
        assert str(err) == f"{err.field}: {err.reason}"
    # The document the client read: the class's type and status, the members it was
    # rebuilt from, and the field in ``errors`` for a 422.
    problem: dict[str, Any] = err.problem  # type: ignore[attr-defined]
    assert err.status == case.status == problem["status"]  # type: ignore[attr-defined]
    assert problem["type"] == f"urn:hora:problem:{case.slug}"
    assert problem[EXCEPTION_MEMBER] == case.kind.__name__
    assert problem["detail"] == str(err)
    for name in case.kind.members:
        value = getattr(err, name)
        assert problem[name] == (list(value) if isinstance(value, tuple) else value)
    if case.status == 422:
        assert problem["errors"] == [{"field": err.field, "message": err.reason}]


def test_every_case_is_a_different_exception() -> None:
    kinds = [c.kind for c in CASES]
    assert len(set(kinds)) == len(kinds)
