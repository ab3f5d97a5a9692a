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
from hora.flow import FlowSpec
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
    @property
    def flow(self) -> FlowSpec | None: ...


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
    flow: FlowSpec | None = None


def defaults_of(entry: RegisteredTask) -> TaskDefaults:
    policy = DEFAULT_RETRY if entry.retry is None else RetryPolicy.from_dict(entry.retry)
    if policy.max_attempts != entry.max_attempts:
        policy = RetryPolicy.from_dict({**policy.to_dict(), "max_attempts": entry.max_attempts})
    return _Defaults(entry.queue, entry.priority, entry.timeout, policy,
                     FlowSpec.from_dict(entry.name, entry.flow))


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


@functools.lru_cache(maxsize=1024)
def batch_item_schema(fn: Callable[..., Any]) -> dict[str, Any]:
    """The payload of one job of a batched task (``@app.task(batch=...)``), whose handler
    takes the list of payloads: the schema of ``X`` when its first parameter is annotated
    ``list[X]`` (or another sequence of ``X``) and ``X`` describes an object (a TypedDict, a
    pydantic model, a dataclass); any object otherwise."""
    from pydantic import TypeAdapter

    params = [p for p in inspect.signature(fn).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    try:
        hints = typing.get_type_hints(fn)
    except Exception:
        hints = {}
    hint = hints.get(params[0].name) if params else None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if args and isinstance(origin, type) and issubclass(origin, Sequence) \
            and origin not in (str, bytes):
        try:
            sub = TypeAdapter(args[0]).json_schema(ref_template="#/$defs/{model}")
        except Exception:
            sub = {}
        if sub.get("type") == "object":
            return sub
    return {"type": "object"}


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,),
    "null": (type(None),), "array": (list,), "object": (dict,)}


def _plain_types(sub: Mapping[str, Any]) -> tuple[type, ...] | None:
    """The Python types a property schema that only names JSON types admits (``{}``: any;
    ``{"type": t}``; ``{"anyOf": [{"type": t}, ...]}``), or None for any other schema."""
    if not sub:
        return (object,)
    if set(sub) == {"type"} and sub["type"] in _JSON_TYPES:
        return _JSON_TYPES[sub["type"]]
    if set(sub) == {"anyOf"} and all(isinstance(a, Mapping) and set(a) == {"type"}
                                     and a["type"] in _JSON_TYPES for a in sub["anyOf"]):
        return tuple(t for a in sub["anyOf"] for t in _JSON_TYPES[a["type"]])
    return None


class _Checker:
    """One schema, compiled: a plain object schema (named properties of plain JSON types,
    the usual signature) is checked by a few isinstance calls; when that says valid, it is.
    Anything else, and every refusal, goes to ``jsonschema`` (which words the error and
    points at the path)."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.schema = schema
        self._validator: Any = None
        self.plain: dict[str, tuple[type, ...]] | None = None
        props = schema.get("properties")
        if (schema.get("type") == "object" and isinstance(props, Mapping)
                and set(schema) <= {"type", "properties", "required", "additionalProperties"}):
            plain = {k: _plain_types(v) for k, v in props.items() if isinstance(v, Mapping)}
            if len(plain) == len(props) and all(t is not None for t in plain.values()):
                self.plain = {k: t for k, t in plain.items() if t is not None}
        self.required = tuple(schema.get("required", ()))
        self.extra = schema.get("additionalProperties", True) is not False

    def plainly_valid(self, payload: Mapping[str, Any]) -> bool:
        plain = self.plain
        if plain is None:
            return False
        for name in self.required:
            if name not in payload:
                return False
        for name, value in payload.items():
            types = plain.get(name)
            if types is None:
                if not self.extra:
                    return False
                continue
            if isinstance(value, bool) and bool not in types and object not in types:
                return False
            if not isinstance(value, types):
                return False
        return True

    def first_error(self, payload: Mapping[str, Any]) -> Any:
        if self.plainly_valid(payload):
            return None
        if self._validator is None:
            import jsonschema

            cls = jsonschema.validators.validator_for(
                self.schema, default=jsonschema.Draft202012Validator)
            self._validator = cls(self.schema)
        return next(iter(sorted(self._validator.iter_errors(payload),
                                key=lambda e: list(e.path))), None)


@functools.lru_cache(maxsize=4096)
def _checker_of_text(schema_text: str) -> _Checker:
    return _Checker(json.loads(schema_text))


@functools.lru_cache(maxsize=4096)
def _checker_of_fn(fn: Callable[..., Any], skip_first: bool) -> _Checker:
    return _Checker(payload_schema(fn, skip_first=skip_first))


def check_payload(kind: str, name: str, schema: Mapping[str, Any] | Callable[..., Any],
                  payload: Mapping[str, Any], *, skip_first: bool = False) -> None:
    """Refuse a payload that does not match ``schema`` (a JSON Schema, or a function whose
    signature's schema it is), naming the field at fault (``payload.<path>``;
    ``args.<path>`` for a workflow). The payload is already bounded (at most 256 KiB, 64
    levels deep), so is the validation."""
    if callable(schema):
        checker = _checker_of_fn(schema, skip_first)
    else:
        checker = _checker_of_text(json.dumps(schema, sort_keys=True))
    error = checker.first_error(payload)
    if error is None:
        return
    schema_doc = checker.schema
    root = "args" if kind == "workflow" else "payload"
    path = [str(p) for p in error.absolute_path]
    if error.validator == "required" and not path:
        missing = next((r for r in schema_doc.get("required", ()) if r not in payload), None)
        path = [missing] if missing else []
    elif error.validator == "additionalProperties" and not path:
        props = schema_doc.get("properties", {})
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
                updated_at=now, flow=None if t.flow is None else t.flow.to_dict()))
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
            self._check_local_task(name, local.fn, payload)
            return local
        return self._resolve_stored("task", name, payload, allow_unregistered,
                                    has_local=bool(self._public_tasks()))

    def resolve_workflow(self, name: str, args: Mapping[str, Any], *,
                         allow_unregistered: bool = False) -> None:
        """Check a workflow start: ``name`` must be defined here or registered (same rule
        as tasks), and ``args`` match its schema."""
        local = self.definitions.get(name)
        if local is not None:
            check_payload("workflow", name, local.fn, args, skip_first=True)
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
        if self._batched(name):
            return batch_item_schema(fn)
        return payload_schema(fn)

    def _batched(self, name: str) -> bool:
        local = self.tasks.get(name)
        return local is not None and local.flow is not None and local.flow.batch is not None

    def _check_local_task(self, name: str, fn: Callable[..., Any],
                          payload: Mapping[str, Any]) -> None:
        if name.startswith(STARTER_PREFIX):
            definition = self.definitions.get(name[len(STARTER_PREFIX):])
            if definition is not None:
                check_payload("task", name, definition.fn, payload, skip_first=True)
                return
        if self._batched(name):
            check_payload("task", name, batch_item_schema(fn), payload)
            return
        check_payload("task", name, fn, payload)

    def _public_tasks(self) -> list[str]:
        return [n for n in self.tasks if not n.startswith(RESERVED_TASK_PREFIX)]

    def _resolve_stored(self, kind: str, name: str, payload: Mapping[str, Any],
                        allow_unregistered: bool, *, has_local: bool) -> TaskDefaults | None:
        entry, any_registered = self.store.probe_registered_task(
            tenant_id=self.tenant_id, kind=kind, name=name)
        if entry is not None:
            check_payload(kind, name, entry.payload_schema, payload)
            return defaults_of(entry)
        if allow_unregistered or not (any_registered or has_local):
            return None  # on purpose, or nothing registered to compare with: accepted
        known = [e.name for e in self.store.list_registered_tasks(
            tenant_id=self.tenant_id, kind=kind, limit=MAX_ENTRIES)]
        local = self._public_tasks() if kind == "task" else list(self.definitions)
        raise unknown(kind, name, sorted({*known, *local}))
