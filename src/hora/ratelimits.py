"""``app.rate_limits``: rate limits set by name at run time, over what the code declares.

A task declares its limits (``@app.task(rate_limit=RateLimit("10/s", name="smtp"))``); each
has a name (the declared one, else the task's). An operator overrides a limit by that name
without a deploy -- ``app.rate_limits.set("smtp", "2/s")``, ``PUT /v1/rate-limits/smtp``,
``hora limits set smtp 2/s`` -- and ``delete`` goes back to the declared rate. A name
``queue:<queue>`` limits every job of that queue. The overrides are rows of
``hora_rate_limits`` (per tenant), which every claim reads, so a change holds for every
worker at its next claim.

``list()`` shows the tenant's overrides and the limits its tasks declare -- this process's
tasks and, for tasks only other processes define, the registry's record of them -- each
with the rate in force and where it comes from (``override`` or ``declared``).

Changing a limit also moves its GCRA buckets no later than the new limit fully spent: a
limit raised from ``1/h`` to ``10/s`` holds at once, not after the hour a bucket owed under
the old one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from hora.clock import Clock
from hora.errors import InvalidPayload, NotFound
from hora.flow import MAX_BURST, MAX_KEY_LENGTH, FlowSpec, Rate, default_burst, parse_rate
from hora.limits import check_int
from hora.models import RateLimitInfo, RateLimitOverride
from hora.observability import JOBS_WAITING
from hora.payloads import RESERVED_TASK_PREFIX, check_text
from hora.store import Store

__all__ = ["MAX_OVERRIDES", "QUEUE_PREFIX", "RateLimitService", "check_limit_name",
           "queue_limit"]

#: A limit named ``queue:<queue>`` limits every job of that queue.
QUEUE_PREFIX = "queue:"
#: The most overrides a tenant may set (a few are usual), all of which ``list()`` shows.
MAX_OVERRIDES = 1000
#: The label sets of each reason the waiting gauge shows at most (the largest counts).
MAX_GAUGED = 500
#: The (reason, name) label sets the gauge has shown, so a cleared one drops to 0.
_GAUGED: set[tuple[str, str]] = set()


def queue_limit(queue: str) -> str:
    """The name of the limit on every job of ``queue``."""
    return QUEUE_PREFIX + queue


def check_limit_name(name: object) -> str:
    """A limit's name: 1-200 characters, storable, not hora's own (``hora.``), and for
    ``queue:<queue>`` a queue after the colon; else InvalidPayload naming ``name``."""
    if not isinstance(name, str) or not 0 < len(name) <= MAX_KEY_LENGTH or not name.strip():
        raise InvalidPayload(f"must be a name of 1 to {MAX_KEY_LENGTH} characters",
                             field="name")
    check_text(name=name)
    if name.startswith(RESERVED_TASK_PREFIX):
        raise InvalidPayload(f"{name[:60]!r} is reserved: names starting with "
                             f"{RESERVED_TASK_PREFIX!r} are hora's own", field="name")
    if name.startswith(QUEUE_PREFIX) and not name[len(QUEUE_PREFIX):].strip():
        raise InvalidPayload("name a queue after 'queue:', e.g. queue:emails", field="name")
    return name


class _LocalTask(Protocol):
    """What the service reads of a task this process defines (``hora.app.Task``)."""

    @property
    def flow(self) -> FlowSpec | None: ...


@dataclass(frozen=True, slots=True)
class _Declared:
    rate: Rate
    burst: int
    tasks: tuple[str, ...]


class RateLimitService:
    """A tenant's named rate limits: the overrides it sets and the limits its tasks declare."""

    def __init__(self, *, store: Callable[[], Store], clock: Clock, tenant_id: str,
                 tasks: Mapping[str, _LocalTask]) -> None:
        self._store = store
        self.clock = clock
        self.tenant_id = tenant_id
        self._tasks = tasks

    def set(self, name: str, rate: str | Rate, *, burst: int | None = None) -> RateLimitInfo:
        """Limit ``name`` to ``rate`` (``"20/s"``, ``"3/h"``, ``"100/15m"``) with ``burst``
        starts at once, for every worker from its next claim, whatever the code declares.
        Returns the limit as now in force."""
        check_limit_name(name)
        parsed = parse_rate(rate, "rate")
        if burst is None:
            burst = default_burst(parsed)
        check_int(burst, "burst", least=1, most=MAX_BURST)
        store = self._store()
        if store.get_rate_limit(self.tenant_id, name) is None and len(
                store.list_rate_limits(self.tenant_id, limit=MAX_OVERRIDES)) >= MAX_OVERRIDES:
            raise InvalidPayload(f"the tenant has {MAX_OVERRIDES} rate limits set at run time, "
                                 "the most it may; delete one first", field="name")
        stored = store.set_rate_limit(RateLimitOverride(
            tenant_id=self.tenant_id, name=name, count=parsed.count, period=parsed.period,
            burst=burst, updated_at=self.clock.now()))
        info = _info(name, stored, self._declared().get(name))
        assert info is not None
        return info

    def get(self, name: str) -> RateLimitInfo:
        """The limit ``name`` as in force; NotFound when it is neither set nor declared."""
        found = self.in_force(name)
        if found is None:
            raise NotFound(f"no rate limit named {name!r}: none was set at run time and no "
                           "known task declares one")
        return found

    def delete(self, name: str) -> bool:
        """Remove the run-time override of ``name``, so the rate its tasks declare applies
        again (or no limit, if none does): True when there was one to remove."""
        check_limit_name(name)
        declared = self._declared().get(name)
        fallback = None if declared is None else (declared.rate, declared.burst)
        return self._store().delete_rate_limit(self.tenant_id, name, now=self.clock.now(),
                                               fallback=fallback)

    def in_force(self, name: str) -> RateLimitInfo | None:
        """The limit ``name`` as in force, or None when it is neither set nor declared."""
        check_limit_name(name)
        return _info(name, self._store().get_rate_limit(self.tenant_id, name),
                     self._declared().get(name))

    # -- why jobs wait ------------------------------------------------------------------------

    def waiting(self) -> list[tuple[str, str, int]]:
        """(reason, name, count) of waiting jobs of every tenant that flow control holds
        back: ``rate_limited`` and ``concurrency`` by limit name, ``queue_paused`` by queue
        (two bounded grouped reads)."""
        return self._store().waiting_by_reason(now=self.clock.now(), limit=MAX_GAUGED)

    def refresh_waiting_metric(self) -> None:
        """Set ``hora_jobs_waiting{reason,name}`` from the store (at a /metrics scrape); a
        label set seen before and gone now drops to 0."""
        found = {(reason, name): n for reason, name, n in self.waiting()}
        for labels in list(_GAUGED):
            if labels not in found:
                JOBS_WAITING.labels(*labels).set(0)
        for labels, n in found.items():
            JOBS_WAITING.labels(*labels).set(n)
            _GAUGED.add(labels)

    # -- what the code declares ---------------------------------------------------------------

    def _declared(self) -> dict[str, _Declared]:
        """Per limit name, what the tasks declare: this process's tasks first, the registry
        for the others. Tasks declaring one name with different rates share its budget;
        the strictest rate is shown."""
        found: dict[str, list[tuple[str, Rate, int]]] = {}
        for task_name, task in self._tasks.items():
            spec = task.flow
            if spec is None:
                continue
            for limit_name, limit in zip(spec.names, spec.rate_limits, strict=True):
                found.setdefault(limit_name, []).append((task_name, limit.parsed, limit.burst))
        local = set(self._tasks)
        for entry in self._store().list_registered_tasks(tenant_id=self.tenant_id,
                                                         kind="task"):
            if entry.name in local or not entry.flow:
                continue
            for doc in _rate_docs(entry.flow):
                try:
                    rate = parse_rate(doc.get("rate", ""), "rate")
                    burst = int(doc["burst"]) if doc.get("burst") else default_burst(rate)
                    limit_name = str(doc.get("name") or entry.name)
                except (InvalidPayload, TypeError, ValueError):  # a record from elsewhere
                    continue
                found.setdefault(limit_name, []).append((entry.name, rate, burst))
        out = {}
        for limit_name, decls in found.items():
            _, rate, burst = min(decls, key=lambda d: (d[1].per_second, d[2]))
            out[limit_name] = _Declared(rate, burst, tuple(sorted({d[0] for d in decls})))
        return out


    # last in the class: below it, ``list`` names this method
    def list(self) -> list[RateLimitInfo]:
        """The tenant's overrides and the limits its tasks declare, by name."""
        overrides = {o.name: o for o in self._store().list_rate_limits(
            self.tenant_id, limit=MAX_OVERRIDES)}
        declared = self._declared()
        out = []
        for name in sorted(set(overrides) | set(declared)):
            info = _info(name, overrides.get(name), declared.get(name))
            if info is not None:
                out.append(info)
        return out

def _rate_docs(flow: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    docs = flow.get("rate_limits") or []
    return [d for d in docs if isinstance(d, Mapping)] if isinstance(docs, list) else []


def _info(name: str, override: RateLimitOverride | None,
          declared: _Declared | None) -> RateLimitInfo | None:
    if override is None and declared is None:
        return None
    tasks = () if declared is None else declared.tasks
    declared_rate = None if declared is None else str(declared.rate)
    declared_burst = None if declared is None else declared.burst
    if override is not None:
        rate = Rate(override.count, override.period)
        return RateLimitInfo(name=name, rate=str(rate), burst=override.burst, source="override",
                             count=rate.count, period=rate.period, declared_rate=declared_rate,
                             declared_burst=declared_burst, tasks=tasks,
                             updated_at=override.updated_at)
    assert declared is not None
    return RateLimitInfo(name=name, rate=str(declared.rate), burst=declared.burst,
                         source="declared", count=declared.rate.count,
                         period=declared.rate.period, declared_rate=declared_rate,
                         declared_burst=declared_burst, tasks=tasks)
