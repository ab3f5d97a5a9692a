"""The error tree's wire form, without a server: every SDK error writes its typed fields as
problem members and is rebuilt from them as the same class with the same fields; a message
is never parsed (a rebuilt error keeps whatever wording the server chose)."""

from __future__ import annotations

from typing import Any

import pytest

from hora.errors import (
    EXCEPTION_MEMBER,
    PROBLEM_CLASSES,
    ApiError,
    Conflict,
    HoraError,
    IdempotencyConflict,
    InvalidPayload,
    InvalidTrigger,
    LockTimeout,
    NotAllowed,
    NotFound,
    ServiceUnavailable,
    StaleRecord,
    StoreError,
    StoreUnavailable,
    TooLarge,
    TooSparse,
    TransitionConflict,
    UnknownTask,
    WaitTimeout,
    WorkflowFailed,
)

ERRORS: list[HoraError] = [
    InvalidPayload("must be between 1 and 10, not 11", field="priority"),
    TooLarge("JSON over its limit of 262144 bytes", field="payload"),
    InvalidTrigger("day-of-month 32 is out of range 1-31", field="trigger.cron"),
    TooSparse("no occurrence within 400 years", field="trigger.rrule"),
    NotFound("job j-1 not found"),
    NotAllowed("approval request a-1 may be decided by manager-a only"),
    Conflict("a schedule named nightly exists"),
    TransitionConflict("j-1", ("scheduled", "retrying"), "running"),
    TransitionConflict("wf-1", "pending", None, message="workflow wf-1 is missing"),
    IdempotencyConflict("k-1", "j-9"),
    StaleRecord("schedule s-1 changed meanwhile"),
    LockTimeout("nightly", 2.5, retry_after=30.0),
    UnknownTask("no handler registered for task 'x'"),
    StoreUnavailable("the database cannot be reached", retry_after=2.0),
    WaitTimeout("job", "j-1", "running", 30.0),
    WorkflowFailed("wf-1", "failed", "ValueError", "no good"),
]


def _typed(err: HoraError) -> dict[str, Any]:
    return {name: getattr(err, name) for name in ("field", "reason", *err.members)}


@pytest.mark.parametrize("err", ERRORS, ids=lambda e: type(e).__name__)
def test_members_rebuild_the_same_error(err: HoraError) -> None:
    members = err.problem_members()
    assert members[EXCEPTION_MEMBER] == type(err).__name__
    if err.field is not None:  # as the API writes it, beside the members
        members["errors"] = [{"field": err.field, "message": err.reason}]
    kind = PROBLEM_CLASSES[members[EXCEPTION_MEMBER]]
    back = kind.from_problem(str(err), members)
    assert type(back) is type(err)
    assert _typed(back) == _typed(err)
    assert str(back) == str(err)


def test_a_rebuilt_error_keeps_the_servers_wording() -> None:
    members = TransitionConflict("a-1", "pending", "approved").problem_members()
    detail = "approval a-1 is approved, expected pending (decided by manager-a)"
    back = TransitionConflict.from_problem(detail, members)
    assert str(back) == detail
    assert (back.job_id, back.expected, back.actual) == ("a-1", "pending", "approved")


def test_every_class_names_its_problem_type_and_status() -> None:
    table = {c.__name__: (c.problem_type, c.http_status) for c in PROBLEM_CLASSES.values()}
    assert table["InvalidPayload"] == table["TooLarge"] == ("invalid-request", 422)
    assert table["InvalidTrigger"] == table["TooSparse"] == ("invalid-trigger", 422)
    assert table["NotFound"] == ("not-found", 404)
    assert table["TransitionConflict"] == ("state-conflict", 409)
    assert table["IdempotencyConflict"] == ("idempotency-conflict", 409)
    assert table["LockTimeout"] == ("lock-held", 409)
    assert table["StoreUnavailable"] == ("store-unavailable", 503)
    assert table["NondeterminismError"] == ("internal", 500)
    assert not any(issubclass(c, ApiError) for c in PROBLEM_CLASSES.values())


def test_an_internal_error_writes_no_members() -> None:
    assert StoreError("PostgreSQL: relation hora_jobs does not exist").problem_members() == {}
    assert HoraError("secret detail").problem_members() == {}


def test_the_field_makes_the_message_and_stays_data() -> None:
    err = InvalidTrigger("day-of-month 32 is out of range 1-31", field="cron")
    assert str(err) == "cron: day-of-month 32 is out of range 1-31"
    assert (err.field, err.reason) == ("cron", "day-of-month 32 is out of range 1-31")
    assert str(InvalidPayload("no field")) == "no field"


def test_the_clients_503_is_also_the_sdks_store_unavailable() -> None:
    err = ServiceUnavailable("the database cannot be reached", retry_after=3.0)
    assert isinstance(err, StoreUnavailable) and isinstance(err, ApiError)
    assert (err.status, err.retry_after) == (503, 3.0)
