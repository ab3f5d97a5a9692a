"""Retention: old finished records are pruned, in bounded batches, by the scheduler role.

What goes, per kind (``hora.models.RETENTION_KINDS``), once older than its age:

==============  =======  ==================================================================
kind            default  records
==============  =======  ==================================================================
``jobs``        14 days  succeeded, cancelled, discarded and replayed jobs (by finished_at),
                         with their attempts and events
``dead``        30 days  dead letters (the DLQ), likewise: kept longer, so there is time to
                         replay or discard them
``ticks``       14 days  schedule ticks (by occurrence)
``workflows``   30 days  completed, failed and cancelled workflows (by finished_at), with
                         their journal, signals and approval requests
``idempotency`` 1 day    the HTTP API's Idempotency-Key records (by creation; they expire
                         after 24 hours anyway)
==============  =======  ==================================================================

Never pruned: a job that is waiting or running; a workflow's own job (``hora.workflow:*``)
while its workflow is live; a child workflow while its parent is live. The ages are global
(``HORA_RETENTION`` / ``hora serve --retention``, e.g. ``jobs=7d,dead=off``) and may be
overridden per tenant (``hora_retention``; ``PATCH /v1/tenants/{id}`` with ``retention``).

A prune is a loop of batches (``batch_size`` records, one short transaction each, reading
the head of a partial index by age), with a ``pause`` between batches so the workers'
writes interleave; each batch's count goes to ``hora_pruned_rows_total{kind}``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from hora.clock import Clock
from hora.errors import ConfigError, StoreUnavailable
from hora.models import RETENTION_KINDS, RetentionPolicy
from hora.store import FlowKeyStore, RateLimitStore, RetentionStore
from hora.store.flowkeys import FLOW_KEY_GRACE

log = logging.getLogger("hora.retention")

_DAY = 86_400.0

#: The documented defaults.
DEFAULT_POLICY = RetentionPolicy(jobs=14 * _DAY, dead=30 * _DAY, ticks=14 * _DAY,
                                 workflows=30 * _DAY, idempotency=1 * _DAY)
#: Records per batch (per transaction).
BATCH_SIZE = 1000
#: How often the scheduler role prunes.
PRUNE_INTERVAL = 60.0
#: A rate-limit bucket whose tat and slot are this far past is deleted (a full bucket is the
#: same as none; the margin keeps a row a claim may be about to read).
RATE_BUCKET_GRACE = timedelta(hours=1)

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": _DAY, "w": 7 * _DAY}
_OFF = ("off", "never", "none")


def parse_age(text: str, *, allow_off: bool = True) -> float | None:
    """``14d``, ``12h``, ``90m``, ``30s``, ``2w`` or plain seconds (> 0); ``off`` (never
    pruned) gives None where allowed. ConfigError otherwise."""
    t = text.strip().lower()
    if allow_off and t in _OFF:
        return None
    m = _AGE.match(t)
    if m is None:
        raise ConfigError(f"retention age {text!r} is not a duration like 14d, 12h, 90m, 30s"
                          + (" or off" if allow_off else ""))
    seconds = float(m.group(1)) * _UNIT[m.group(2)]
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(f"retention age {text!r} must be more than zero")
    return seconds


def parse_policy(text: str, base: RetentionPolicy = DEFAULT_POLICY) -> RetentionPolicy:
    """``jobs=7d,dead=off,...`` over ``base`` (kinds not named keep base's age)."""
    ages = {k: base.age(k) for k in RETENTION_KINDS}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        kind, sep, value = part.partition("=")
        kind = kind.strip()
        if not sep or kind not in RETENTION_KINDS:
            raise ConfigError(f"retention {part!r}: give kind=age with kind one of "
                              f"{', '.join(RETENTION_KINDS)} (e.g. jobs=14d,dead=off)")
        ages[kind] = parse_age(value)
    return RetentionPolicy(**ages)


def policy_from_env(env: Mapping[str, str]) -> RetentionPolicy:
    """The global policy: ``HORA_RETENTION`` over the defaults."""
    return parse_policy(env.get("HORA_RETENTION", ""))


@dataclass(frozen=True, slots=True)
class Target:
    """One prune to do: records of ``kind`` older than ``cutoff``, of one tenant or of every
    tenant but ``exclude``."""

    kind: str
    cutoff: datetime
    tenant_id: str | None = None
    exclude: tuple[str, ...] = ()


@dataclass
class PruneReport:
    """Records pruned (or, for a dry run, that would be), per kind."""

    counts: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    seconds: float = 0.0
    #: Some kind was stopped at ``max_batches`` with more to go.
    more: bool = False

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class Retention:
    """Prunes a store by a policy: ``prune`` (all of it, as ``hora prune`` does), ``count``
    (a dry run), and ``pass_if_due`` (the scheduler role's periodic pass)."""

    def __init__(self, store: RetentionStore, clock: Clock, *,
                 policy: RetentionPolicy = DEFAULT_POLICY, batch_size: int = BATCH_SIZE,
                 pause: float = 0.0, duty: float = 0.1, interval: float = PRUNE_INTERVAL,
                 max_batches: int | None = 100) -> None:
        if batch_size < 1:
            raise ConfigError("retention batch size must be at least 1")
        if not 0 < duty <= 1:
            raise ConfigError("retention duty must be in (0, 1]")
        self.store = store
        self.clock = clock
        self.policy = policy
        self.batch_size = batch_size
        #: Between two batches the pruner rests at least ``pause`` seconds, and long enough
        #: that its batches hold the store at most ``duty`` of the time (a batch that took
        #: 40 ms is followed by 360 ms of rest at 0.1): the workers' writes come first.
        self.pause = pause
        self.duty = duty
        self.interval = interval
        #: A periodic pass stops after this many batches per kind and tenant (the next pass,
        #: due at once then, goes on).
        self.max_batches = max_batches
        self._next_pass: datetime | None = None
        self._stopping = False

    def targets(self, kinds: Iterable[str] = RETENTION_KINDS, *, tenant_id: str | None = None,
                older_than: float | None = None) -> list[Target]:
        """What to prune now. ``older_than`` replaces every age (and the tenants'
        overrides) by one; ``tenant_id`` narrows to one tenant (with its override)."""
        kinds = _check_kinds(kinds)
        now = self.clock.now()
        overrides = {} if older_than is not None else self.store.retention_overrides()
        out: list[Target] = []
        for kind in kinds:
            if older_than is not None:
                out.append(Target(kind, now - timedelta(seconds=older_than), tenant_id))
                continue
            if tenant_id is not None:
                age = overrides.get(tenant_id, RetentionPolicy()).over(self.policy).age(kind)
                if age is not None:
                    out.append(Target(kind, now - timedelta(seconds=age), tenant_id))
                continue
            age = self.policy.age(kind)
            if age is not None:
                out.append(Target(kind, now - timedelta(seconds=age), None,
                                  tuple(sorted(overrides))))
            for tenant, override in sorted(overrides.items()):
                age = override.over(self.policy).age(kind)
                if age is not None:
                    out.append(Target(kind, now - timedelta(seconds=age), tenant))
        return out

    def count(self, kinds: Iterable[str] = RETENTION_KINDS, *, tenant_id: str | None = None,
              older_than: float | None = None, limit: int = 1_000_000) -> PruneReport:
        """A dry run: per kind, how many records a prune would delete now, each target
        counted up to ``limit``. Writes nothing."""
        report = PruneReport({k: 0 for k in _check_kinds(kinds)})
        for t in self.targets(kinds, tenant_id=tenant_id, older_than=older_than):
            report.counts[t.kind] += self.store.count_prunable(
                t.kind, cutoff=t.cutoff, limit=limit, tenant_id=t.tenant_id,
                exclude_tenants=t.exclude)
        return report

    def prune(self, kinds: Iterable[str] = RETENTION_KINDS, *, tenant_id: str | None = None,
              older_than: float | None = None, max_batches: int | None = None,
              on_batch: Callable[[str, int], None] | None = None) -> PruneReport:
        """Prune, batch after batch, until nothing old is left, or for at most
        ``max_batches`` batches per kind and tenant (``report.more`` then says whether some
        were stopped with more to go). ``on_batch(kind, rows)`` is told after each batch (a
        progress bar)."""
        from hora.observability import PRUNED_ROWS

        started = time.monotonic()
        report = PruneReport({k: 0 for k in _check_kinds(kinds)})
        rest = 0.0
        for t in self.targets(kinds, tenant_id=tenant_id, older_than=older_than):
            done = 0
            while not self._stopping:
                if max_batches is not None and done >= max_batches:
                    report.more = True
                    break
                if rest > 0:
                    time.sleep(rest)  # let the workers' writes in between batches
                began = time.monotonic()
                n = self.store.prune_batch(t.kind, cutoff=t.cutoff, limit=self.batch_size,
                                           tenant_id=t.tenant_id, exclude_tenants=t.exclude)
                took = time.monotonic() - began
                rest = max(self.pause, took * (1 - self.duty) / self.duty)
                done += 1
                report.batches += 1
                report.counts[t.kind] += n
                if n:
                    PRUNED_ROWS.labels(t.kind).inc(n)
                if on_batch is not None:
                    on_batch(t.kind, n)
                if n < self.batch_size:
                    break
        report.seconds = time.monotonic() - started
        return report

    def pass_if_due(self) -> PruneReport | None:
        """The scheduler role's pass, at most every ``interval`` seconds and at most
        ``max_batches`` batches long; when it stops at that bound with more to go, the next
        pass is due at once (the batches still rest between them)."""
        now = self.clock.now()
        if self._next_pass is not None and now < self._next_pass:
            return None
        report = self.prune(max_batches=self.max_batches)
        self._prune_flow_keys(now)
        self._prune_rate_buckets(now)
        self._next_pass = now if report.more else now + timedelta(seconds=self.interval)
        if report.total:
            log.info("retention pruned %s", ", ".join(
                f"{n} {k}" for k, n in report.counts.items() if n))
        return report

    def _prune_flow_keys(self, now: datetime) -> int:
        """Expired debounce/throttle keys (hora_flow_keys, ``hora.flow``); enqueues delete
        a few as they go, too."""
        if not isinstance(self.store, FlowKeyStore):
            return 0
        return self._in_batches(self.store.prune_flow_keys, now - FLOW_KEY_GRACE)

    def _prune_rate_buckets(self, now: datetime) -> int:
        """Rate-limit buckets full again for an hour (``hora_rate_buckets``: one row per
        limit and key value ever used, so per-user keys would otherwise pile up)."""
        if not isinstance(self.store, RateLimitStore):
            return 0
        return self._in_batches(self.store.prune_rate_buckets, now - RATE_BUCKET_GRACE)

    def _in_batches(self, prune: Callable[..., int], before: datetime) -> int:
        """``prune(before=, limit=)`` in bounded batches, at most ``max_batches`` a pass."""
        total = 0
        for _ in range(self.max_batches or 100):
            n = prune(before=before, limit=self.batch_size)
            total += n
            if n < self.batch_size or self._stopping:
                break
        return total

    async def run(self) -> None:
        """The periodic pass as its own loop, beside the scheduler's (a long prune never
        delays a schedule); ends after ``stop``."""
        self._stopping = False
        loop = asyncio.get_running_loop()
        while not self._stopping:
            try:
                await loop.run_in_executor(None, self.pass_if_due)
            except StoreUnavailable as e:
                log.debug("retention pass failed; trying again: %s", e)
            except Exception:
                log.exception("retention pass failed; trying again")
            due = self._next_pass
            if due is not None and due <= self.clock.now():
                await asyncio.sleep(0)  # more to prune: go on (each batch rests anyway)
            else:
                await self.clock.sleep(min(self.interval, 5.0))

    def stop(self) -> None:
        self._stopping = True


def _check_kinds(kinds: Iterable[str]) -> list[str]:
    out: list[str] = []
    for k in kinds:
        if k not in RETENTION_KINDS:
            raise ConfigError(f"unknown retention kind {k!r}: one of "
                              f"{', '.join(RETENTION_KINDS)}")
        if k not in out:
            out.append(k)
    return out


def resolve_kinds(text: str) -> list[str]:
    """``all`` or a comma-separated list of kinds."""
    if text.strip() == "all":
        return list(RETENTION_KINDS)
    return _check_kinds(p.strip() for p in text.split(",") if p.strip())


__all__ = ["BATCH_SIZE", "DEFAULT_POLICY", "PRUNE_INTERVAL", "PruneReport", "Retention",
           "Target", "parse_age", "parse_policy", "policy_from_env",
           "resolve_kinds"]
