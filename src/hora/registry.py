"""``app.registry``: the tasks and workflows this app defines, registered per tenant in the
store, and the check every enqueue passes through.

Workers (``Hora.worker().run``, ``hora worker``) and ``hora serve --app`` register, as they
start, each task and workflow of their app -- name, kind, queue, priority, retry policy,
max attempts, timeout and a JSON Schema of the payload derived from the function's
signature (pydantic) -- for the app's tenant and every tenant in the store. Then any process
enqueueing by name (the HTTP API, the CLI, a schedule, ``app.enqueue("name", ...)``) knows
what the name means even when it does not import the code:

* a name the process knows (``@app.task`` here) or the registry holds is checked against its
  schema and gets its defaults (queue, priority, max attempts; timeout and retry apply where
  it runs);
* an unknown name is refused with ``UnknownTask`` ("did you mean ...?") when there is
  something to compare with: the tenant has at least one registered entry of that kind, or
  this process defines at least one. With an empty registry and no local definitions a name
  is accepted as before (a fresh store used only over HTTP has nothing to check against);
* ``allow_unregistered=True`` accepts an unknown name anyway (not a bad payload for a known
  one); hora's own tasks (``hora.http``, ``hora.workflow:<name>``) are always known.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import json
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from hora.clock import Clock
from hora.errors import InvalidPayload, UnknownTask
from hora.models import RegisteredTask
from hora.payloads import RESERVED_TASK_PREFIX, TaskDefaults
from hora.retry import DEFAULT_RETRY, RetryPolicy

if TYPE_CHECKING:
    from hora.store import Store

__all__ = ["KINDS", "RegistryService", "payload_schema"]

KINDS = ("task", "workflow")
#: How many names the "did you mean" list offers, and how close they must be.
SUGGESTIONS = 3
CUTOFF = 0.6
#: The task that starts workflow ``<name>`` (what a schedule targets) is ``workflow:<name>``.
STARTER_PREFIX = "workflow:"
#: The registry entries of a tenant read to find suggestions (and to list).
MAX_ENTRIES = 10_000


class LocalTask(Protocol):
    """What the registry reads from a task this process defines (``hora.app.Task``)."""

    @property
    def fn(self) -> Callable[..., Any]: ...
    @property
    def queue(self) -> str: ...
    @property
    def priority(self) -> int: ...
    @property
    def timeout(self) -> float | None: ...
    @property
    def retry_policy(self) -> RetryPolicy: ...


class LocalWorkflow(Protocol):
    """What the registry reads from a workflow this process defines (``WorkflowDef``)."""

    @property
    def fn(self) -> Callable[..., Any]: ...
    @property
    def step_retry(self) -> RetryPolicy: ...


@dataclass(frozen=True, slots=True)
class _Defaults:
    """A registry entry as the defaults a job borrows (``hora.payloads.TaskDefaults``)."""

    queue: str
    priority: int
    timeout: float | None
    retry_policy: RetryPolicy


def defaults_of(entry: RegisteredTask) -> TaskDefaults:
    policy = DEFAULT_RETRY if entry.retry is None else RetryPolicy.from_dict(entry.retry)
    if policy.max_attempts != entry.max_attempts:
        policy = RetryPolicy.from_dict({**policy.to_dict(), "max_attempts": entry.max_attempts})
    return _Defaults(entry.queue, entry.priority, entry.timeout, policy)


# -- schemas ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def payload_schema(fn: Callable[..., Any], *, skip_first: bool = False) -> dict[str, Any]:
    """The JSON Schema of the payload ``fn`` is called with as ``fn(**payload)``: one
    property per named parameter (its annotation's schema, by pydantic; any value when it
    has none or pydantic cannot describe it), required when it has no default, and other
    properties allowed only when ``fn`` takes ``**kwargs``. ``skip_first`` drops the first
    parameter (a workflow's ``ctx``)."""
    from pydantic import TypeAdapter  # a few ms: only when registering or checking

    params = list(inspect.signature(fn).parameters.values())
    if skip_first and params:
        params = params[1:]
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # an annotation that does not resolve: treat every one as any
        hints = {}
    properties: dict[str, Any] = {}
    required: list[str] = []
    defs: dict[str, Any] = {}
    extra = False
    for p in params:
        if p.kind is p.VAR_KEYWORD:
            extra = True
            continue
        if p.kind is p.VAR_POSITIONAL:
            continue
        sub: dict[str, Any] = {}
        hint = hints.get(p.name, inspect.Parameter.empty)
        if hint is not inspect.Parameter.empty and hint is not Any:
            try:
                sub = TypeAdapter(hint).json_schema(ref_template="#/$defs/{model}")
            except Exception:
                sub = {}
        defs.update(sub.pop("$defs", {}))
        properties[p.name] = sub
        if p.default is inspect.Parameter.empty:
            required.append(p.name)
    schema: dict[str, Any] = {"type": "object", "properties": properties,
                              "additionalProperties": extra}
    if required:
        schema["required"] = required
    if defs:
        schema["$defs"] = defs
    return schema


@functools.lru_cache(maxsize=4096)
def _validator(schema_text: str) -> Any:
    import jsonschema

    schema = json.loads(schema_text)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema)


def check_payload(kind: str, name: str, schema: Mapping[str, Any],
                  payload: Mapping[str, Any]) -> None:
    """Refuse a payload that does not match ``schema``, naming the field at fault
    (``payload.<path>``; ``args.<path>`` for a workflow). The payload is already bounded
    (at most 256 KiB, 64 levels deep), so is the validation."""
    validator = _validator(json.dumps(schema, sort_keys=True))
    error = next(iter(sorted(validator.iter_errors(payload), key=lambda e: list(e.path))), None)
    if error is None:
        return
    root = "args" if kind == "workflow" else "payload"
    path = [str(p) for p in error.absolute_path]
    if error.validator == "required" and not path:
        missing = next((r for r in schema.get("required", ()) if r not in payload), None)
        path = [missing] if missing else []
    elif error.validator == "additionalProperties" and not path:
        props = schema.get("properties", {})
        extra = next((k for k in payload if k not in props), None)
        path = [str(extra)] if extra is not None else []
    field = ".".join([root, *path])
    raise InvalidPayload(f"does not match {kind} {name}'s parameters: {error.message}"[:500],
                         field=field)


def _suggestions(name: str, known: Sequence[str]) -> tuple[str, ...]:
    return tuple(difflib.get_close_matches(name, known, n=SUGGESTIONS, cutoff=CUTOFF))


def unknown(kind: str, name: str, known: Sequence[str]) -> UnknownTask:
    """The refusal of an unknown name, with the closest registered ones."""
    suggestions = _suggestions(name, known)
    hint = (f"; did you mean {' or '.join(repr(s) for s in suggestions)}?" if suggestions
            else "")
    return UnknownTask(
        f"no {kind} named {name[:200]!r} is registered{hint} (a worker registers its app's "
        "tasks as it starts; allow_unregistered, or --allow-unregistered in the CLI, "
        "accepts it anyway)",
        field="workflow" if kind == "workflow" else "task", name=name, kind=kind,
        suggestions=suggestions)


# -- the service -----------------------------------------------------------------------------


class RegistryService:
    """``app.registry``: registers this app's tasks and workflows, lists a tenant's, and
    checks every enqueue of a name (see the module docstring).

    Built by ``Hora`` with the store getter, the clock, the tenant and the app's task and
    workflow definitions (shared by every tenant's view)."""

    def __init__(self, *, store: Callable[[], Store], clock: Clock, tenant_id: str,
                 tasks: Mapping[str, LocalTask],
                 definitions: Mapping[str, LocalWorkflow]) -> None:
        self._store = store
        self.clock = clock
        self.tenant_id = tenant_id
        self.tasks = tasks
        self.definitions = definitions

    @property
    def store(self) -> Store:
        return self._store()

    def for_tenant(self, tenant_id: str) -> RegistryService:
        """The same registry acting for another tenant (a workflow job runs as its own)."""
        if tenant_id == self.tenant_id:
            return self
        return RegistryService(store=self._store, clock=self.clock, tenant_id=tenant_id,
                               tasks=self.tasks, definitions=self.definitions)

    # -- registering -------------------------------------------------------------------------

    def entries(self, tenant_id: str, now: datetime) -> list[RegisteredTask]:
        """This app's tasks and workflows as registry entries of ``tenant_id``."""
        out: list[RegisteredTask] = []
        for name, t in sorted(self.tasks.items()):
            if name.startswith(RESERVED_TASK_PREFIX):
                continue  # hora's own tasks are always known
            policy = t.retry_policy
            out.append(RegisteredTask(
                tenant_id=tenant_id, kind="task", name=name, queue=t.queue,
                priority=t.priority, max_attempts=policy.max_attempts,
                retry=policy.to_dict(), timeout=t.timeout,
                payload_schema=self._task_schema(name, t.fn), registered_at=now,
                updated_at=now))
        for name, d in sorted(self.definitions.items()):
            runner = self.tasks.get(f"{RESERVED_TASK_PREFIX}workflow:{name}")
            policy = runner.retry_policy if runner is not None else DEFAULT_RETRY
            out.append(RegisteredTask(
                tenant_id=tenant_id, kind="workflow", name=name,
                queue=runner.queue if runner is not None else "default",
                priority=runner.priority if runner is not None else 0,
                max_attempts=policy.max_attempts, retry=d.step_retry.to_dict(),
                timeout=None, payload_schema=payload_schema(d.fn, skip_first=True),
                registered_at=now, updated_at=now))
        return out

    def register(self, *, all_tenants: bool = True) -> int:
        """Upsert this app's tasks and workflows for its tenant (and, with ``all_tenants``,
        every tenant in the store), in one transaction; the number of entries written.
        What a worker and ``hora serve --app`` call as they start."""
        if not self.tasks and not self.definitions:
            return 0
        now = self.clock.now()
        tenants = {self.tenant_id}
        if all_tenants:
            cursor: str | None = None
            while True:
                page = self.store.list_tenants(limit=1000, cursor=cursor)
                tenants.update(t.id for t in page.items)
                cursor = page.next_cursor
                if cursor is None:
                    break
        entries = [e for tenant in sorted(tenants) for e in self.entries(tenant, now)]
        self.store.register_tasks(entries, now)
        return len(entries)

    def registered_tasks(self, *, kind: str | None = None) -> list[RegisteredTask]:
        """The tenant's registered tasks and workflows (of ``kind``), by kind then name."""
        if kind is not None and kind not in KINDS:
            raise InvalidPayload(f"kind must be one of {', '.join(KINDS)}", field="kind")
        return self.store.list_registered_tasks(tenant_id=self.tenant_id, kind=kind,
                                                limit=MAX_ENTRIES)

    # -- checking ----------------------------------------------------------------------------

    def resolve_task(self, name: str, payload: Mapping[str, Any], *,
                     allow_unregistered: bool = False) -> TaskDefaults | None:
        """The defaults a job of task ``name`` gets, its payload checked against the task's
        schema: the local task's, else the registry's; None for an unregistered name that
        is accepted (hora's own tasks, ``allow_unregistered``, nothing to compare with).
        UnknownTask or InvalidPayload otherwise."""
        local = self.tasks.get(name)
        if name.startswith(RESERVED_TASK_PREFIX):
            return local
        if local is not None:
            check_payload("task", name, self._task_schema(name, local.fn), payload)
            return local
        return self._resolve_stored("task", name, payload, allow_unregistered,
                                    has_local=bool(self._public_tasks()))

    def resolve_workflow(self, name: str, args: Mapping[str, Any], *,
                         allow_unregistered: bool = False) -> None:
        """Check a workflow start: ``name`` must be defined here or registered (same rule
        as tasks), and ``args`` match its schema."""
        local = self.definitions.get(name)
        if local is not None:
            check_payload("workflow", name, payload_schema(local.fn, skip_first=True), args)
            return
        self._resolve_stored("workflow", name, args, allow_unregistered,
                             has_local=bool(self.definitions))

    def _task_schema(self, name: str, fn: Callable[..., Any]) -> dict[str, Any]:
        """A task's payload schema; the task ``workflow:<name>`` that starts a workflow
        (a schedule's target) takes the workflow's args."""
        if name.startswith(STARTER_PREFIX):
            definition = self.definitions.get(name[len(STARTER_PREFIX):])
            if definition is not None:
                return payload_schema(definition.fn, skip_first=True)
        return payload_schema(fn)

    def _public_tasks(self) -> list[str]:
        return [n for n in self.tasks if not n.startswith(RESERVED_TASK_PREFIX)]

    def _resolve_stored(self, kind: str, name: str, payload: Mapping[str, Any],
                        allow_unregistered: bool, *, has_local: bool) -> TaskDefaults | None:
        entry = self.store.get_registered_task(tenant_id=self.tenant_id, kind=kind, name=name)
        if entry is not None:
            check_payload(kind, name, entry.payload_schema, payload)
            return defaults_of(entry)
        if allow_unregistered:
            return None
        known = [e.name for e in self.store.list_registered_tasks(
            tenant_id=self.tenant_id, kind=kind, limit=MAX_ENTRIES)]
        local = self._public_tasks() if kind == "task" else list(self.definitions)
        if not known and not has_local:
            return None  # nothing registered to compare with: accepted, as before
        raise unknown(kind, name, sorted({*known, *local}))
