"""What workflow code sees: ``WorkflowContext`` (every call journaled), ``Approval``,
``current_step()``, and the JSON checks the journal relies on.

Every method of the context takes the next position (``seq``) of the run and hands the call
to the engine (``hora.workflows.engine``), which answers from the journal or does the work.
"""

from __future__ import annotations

import contextvars
import json
import random as _random
import uuid as _uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from hora.errors import (
    InvalidPayload,
)
from hora.limits import (
    MAX_DELAY,
    MAX_PAYLOAD_BYTES,
    TooLarge,
    check_instant,
    check_json_shape,
    check_json_size,
    check_seconds,
)
from hora.models import (
    ErrorInfo,
)
from hora.retry import RetryPolicy

if TYPE_CHECKING:
    from hora.workflows.engine import _Run
    from hora.workflows.service import WorkflowDef

APPROVAL = "approval"
#: What a wait_for_approval may show its deciders, serialised (it is stored with the request).
MAX_APPROVAL_CONTEXT = 64 * 1024
#: How many actors an approval request may name as its deciders.
MAX_APPROVERS = 100


# -- records handed to workflow code ----------------------------------------------------------


class Record(dict[str, Any]):
    """A JSON object a step returned, readable as ``r.ok`` as well as ``r["ok"]``."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _wrap(value: Any) -> Any:
    if isinstance(value, dict):
        return Record({k: _wrap(v) for k, v in value.items()})
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


@dataclass(frozen=True)
class Approval:
    """The decision on a ``wait_for_approval``'s request (``app.approve``/``reject``, the
    CLI, or the HTTP API): who decided (over HTTP, the API key's name), why, and which
    request it was."""

    approved: bool
    actor: str | None
    comment: str | None
    approval_id: str | None = None


@dataclass(frozen=True)
class StepContext:
    """What a running step can know: ``hora.workflows.current_step()``."""

    workflow_id: str
    tenant_id: str
    seq: int
    name: str
    attempt: int
    correlation_id: str | None

    @property
    def idempotency_key(self) -> str:
        """Stable across every attempt and replay of this step: key side effects with it."""
        return f"{self.tenant_id}:{self.workflow_id}:{self.seq}"


_step: contextvars.ContextVar[StepContext | None] = contextvars.ContextVar("hora_step",
                                                                           default=None)


def current_step() -> StepContext:
    ctx = _step.get()
    if ctx is None:
        raise RuntimeError("hora.workflows.current_step() called outside a workflow step")
    return ctx


def _wait_seconds(value: timedelta | float, field: str) -> float:
    """A durable wait in seconds: a negative one is over at once (as ``asyncio.sleep``'s
    is); one past MAX_DELAY (or NaN) fails the workflow with a message naming ``field``,
    not an OverflowError from the deadline's arithmetic."""
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
        return 0.0
    return check_seconds(value, field, most=MAX_DELAY)


def _step_name(fn: Any) -> str:
    name = getattr(fn, "name", None)  # a hora Task
    if isinstance(name, str):
        return name
    module = getattr(fn, "__module__", None) or "?"
    return f"{module}.{getattr(fn, '__qualname__', repr(fn))}"


def _fn_of(fn: Callable[..., Any]) -> Callable[..., Any]:
    inner = getattr(fn, "fn", None)  # a hora Task wraps its function
    if callable(inner) and hasattr(fn, "name"):
        return cast(Callable[..., Any], inner)
    return fn


def _json(value: Any, what: str, *, limit: int = MAX_PAYLOAD_BYTES) -> Any:
    """A JSON round trip: what the journal will hand back on replay, handed back now.
    Refused (TooLarge) over ``limit`` bytes or MAX_JSON_DEPTH levels."""
    check_json_shape(value, what, max_bytes=limit)
    try:
        text = check_json_size(json.dumps(value, allow_nan=False), what, max_bytes=limit)
        return json.loads(text)
    except TooLarge:
        raise
    except (TypeError, ValueError) as e:
        raise InvalidPayload(f"{what} must be JSON-serialisable (it is journaled): {e}"
                             ) from None


def _error_info(err: BaseException) -> ErrorInfo:
    t = type(err)
    name = t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"
    return ErrorInfo(name, str(err)[:2000], None)


# -- the context a workflow function receives -------------------------------------------------


class WorkflowContext:
    """The workflow's handle on the outside world; every method is journaled."""

    def __init__(self, run: _Run) -> None:
        self._run = run

    @property
    def workflow_id(self) -> str:
        return self._run.wf.id

    @property
    def correlation_id(self) -> str | None:
        return self._run.wf.correlation_id

    def step(self, fn: Callable[..., Any], /, *args: Any, retry: RetryPolicy | None = None,
             timeout: float | timedelta | None = None, name: str | None = None,
             **kwargs: Any) -> Awaitable[Any]:
        """Run ``fn(*args, **kwargs)`` once (sync or async), journal its JSON result, retry
        it by ``retry`` (default: the workflow's step policy) with durable backoff."""
        seq = self._run.next_seq()
        return self._run.step(seq, name or _step_name(fn), _fn_of(fn), args, kwargs,
                              retry, timeout, kind="step")

    async def sleep(self, duration: timedelta | float) -> None:
        """A durable timer: the run ends, a job scheduled for the deadline resumes it."""
        seconds = _wait_seconds(duration, "sleep")
        seq = self._run.next_seq()
        await self._run.timer(seq, "sleep", lambda now: now + timedelta(seconds=seconds))

    async def sleep_until(self, instant: datetime) -> None:
        at = check_instant(instant, "sleep_until")
        seq = self._run.next_seq()
        await self._run.timer(seq, "sleep_until", lambda now: at)

    async def wait_for_signal(self, name: str, *,
                              timeout: timedelta | float | None = None,  # noqa: ASYNC109
                              ) -> Any:
        """The payload of the next signal ``name`` (signals sent earlier wait, in order), or
        None when ``timeout`` passes first."""
        seconds = None if timeout is None else _wait_seconds(timeout, "wait_for_signal timeout")
        seq = self._run.next_seq()
        got = await self._run.wait_signal(seq, name, seconds)
        return None if got is None else _wrap(got.get("payload"))

    async def wait_for_approval(self, name: str = APPROVAL, *,
                                timeout: timedelta | float | None = None,  # noqa: ASYNC109
                                context: Any = None,
                                approvers: Sequence[str] | None = None,
                                ) -> Approval | None:
        """Ask a person: this creates an approval request (its own id, listed in the
        approvals inbox with ``context``, any JSON value the deciders need to see) and waits
        for its decision, or returns None once ``timeout`` passes (the request expires).

        A decision names the request, so deciding twice is one decision and never answers a
        later ``wait_for_approval``. ``approvers``: the actors that may decide (over HTTP,
        the names of API keys with the approve scope); default: anyone with that scope.
        The request is made once, at this call's journal position: a replay finds it.
        """
        seconds = (None if timeout is None
                   else _wait_seconds(timeout, "wait_for_approval timeout"))
        if not name or len(name) > 200:
            raise InvalidPayload("approval name must be 1-200 characters")
        shown = _json(context, "approval context")
        if len(json.dumps(shown)) > MAX_APPROVAL_CONTEXT:
            raise InvalidPayload(f"approval context must be at most {MAX_APPROVAL_CONTEXT} "
                                 "bytes of JSON")
        who = None if approvers is None else _approvers(approvers)
        seq = self._run.next_seq()
        got = await self._run.wait_approval(seq, name, seconds, shown, who)
        if got is None:
            return None
        return Approval(approved=bool(got.get("approved")), actor=got.get("actor"),
                        comment=got.get("comment"), approval_id=got.get("approval_id"))

    def on_rollback(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
        """Register a compensation: if the workflow later fails or is cancelled, the
        registered compensations run in reverse order, each durably and with retries."""
        seq = self._run.next_seq()
        self._run.rollback(seq, _step_name(fn), _fn_of(fn), args, kwargs)

    def child(self, workflow: str | WorkflowDef, /, *, workflow_id: str | None = None,
              **args: Any) -> Awaitable[Any]:
        """Start a child workflow (idempotently) and wait for its result; raises
        ``ChildFailed`` if it fails or is cancelled."""
        seq = self._run.next_seq()
        name = workflow if isinstance(workflow, str) else workflow.name
        return self._run.child(seq, name, workflow_id, args)

    async def gather(self, *calls: Awaitable[Any]) -> list[Any]:
        """Run steps (or children) concurrently and return their results in order. Their
        positions were fixed when the calls were made, so replay is deterministic."""
        return await self._run.gather(calls)

    def now(self) -> datetime:
        """The time, recorded on the first run and replayed after."""
        seq = self._run.next_seq()
        return datetime.fromisoformat(self._run.value(
            seq, "now", lambda: self._run.clock.now().isoformat()))

    def random(self) -> float:
        seq = self._run.next_seq()
        return float(self._run.value(seq, "random", _random.random))

    def uuid4(self) -> str:
        seq = self._run.next_seq()
        return str(self._run.value(seq, "uuid", lambda: str(_uuid.uuid4())))



def _approvers(names: Sequence[str]) -> tuple[str, ...]:
    if isinstance(names, str):
        raise InvalidPayload("approvers must be a list of names, not one string")
    who = tuple(dict.fromkeys(names))
    if not 1 <= len(who) <= MAX_APPROVERS:
        raise InvalidPayload(f"approvers must name 1-{MAX_APPROVERS} actors (or be None)")
    for n in who:
        if not isinstance(n, str) or not 1 <= len(n) <= 200:
            raise InvalidPayload("each of approvers must be a name of 1-200 characters")
    return who

