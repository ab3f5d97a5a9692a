"""The claim's gates, the part both stores share: which candidates start, which wait and
until when (pure logic over rows the store read and locked; docs/flow.md).

A claim reads its candidates as always (due, in priority order). Those without gates (no
``flow`` on the row, no ``queue:<name>`` limit on their queue) start at once: the fast path.
The others come here with what the store read in the same transaction: the operators'
overrides (``hora_rate_limits``), the GCRA buckets they need (locked), and the running
count of their concurrency keys (serialized per key). ``plan`` decides, in priority order:

- a job starts only if every one of its rate gates admits it and its concurrency key has
  room; only then are its buckets consumed (a job refused by one gate costs no other);
- a job a rate gate admits only a little later (within the claim's ``ahead``) starts now
  with that later instant as its start: the buckets count it there and the worker holds it
  until then (its ``due_at`` and ``started_at`` are that instant), so a claim takes a
  bucket's next few starts at once instead of one per claim, and a job that comes back on
  its slot a moment before the bucket has room is not pushed back again;
- a job a rate gate refuses is pushed to its projected slot: the instant the gate admits
  next, or one interval after the last job that bucket pushed back (``slot``), so a backlog
  of one bucket comes back one interval apart instead of all at once;
- a job whose concurrency key is full waits for a running one to leave (``queue``: parked
  with a safety-net due time, woken by the finish), is cancelled (``cancel_new``), or
  supersedes the others of its key (``cancel_in_progress``) and then waits its turn.

Rate budget is spent when a job starts, whatever happens to it afterwards (a crashed
attempt does not give its start back: the provider saw the call).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from hora.flow import Gates, Rate, gcra
from hora.models import ClaimedJob

#: How long a job waiting for a full concurrency key is parked: a safety net only, since
#: the finish of a job of its key wakes the next waiting one at once.
PARK_US = 60_000_000
#: The prefix of a runtime limit row that limits every job of a queue.
QUEUE_LIMIT_PREFIX = "queue:"

BucketKey = tuple[str, str, str]  # (tenant, limit name, key value)
LimitKey = tuple[str, str]  # (tenant, limit name)
ConcKey = tuple[str, str]  # (tenant, concurrency key)


class Claimed(tuple[list[ClaimedJob], list[ClaimedJob]]):
    """What ``claim_jobs`` returns: the pair (started, reserved) callers unpack, plus
    ``wake_at``: when a gate pushed jobs back, the instant the worker should claim again
    (the earliest due job after the claim, or now when more may be due at once), so a
    limit is used to the full instead of at the next poll. None: nothing gated happened."""

    wake_at: datetime | None

    def __new__(cls, started: list[ClaimedJob], reserved: list[ClaimedJob],
                wake_at: datetime | None = None) -> Claimed:
        self = super().__new__(cls, (started, reserved))
        self.wake_at = wake_at
        return self


@dataclass(frozen=True, slots=True)
class Candidate:
    """A due job the claim read whose start is gated."""

    id: str
    tenant_id: str
    queue: str
    flow: str | None
    queue_limited: bool
    #: Why the last claim passed it over (``rate:<name>``...), None for a new job.
    blocked_on: str | None = None
    #: Its due instant (µs). A job back from a gate is read up to the claim's ``ahead``
    #: before it is due: it starts then if its gates admit it by then, else stays as it is.
    due_us: int = 0
    #: ``flow`` parsed, once.
    gates: Gates = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "gates", Gates.from_json(self.flow))


@dataclass(slots=True)
class Bucket:
    tat: int
    slot: int | None
    changed: bool = False


@dataclass(frozen=True, slots=True)
class Limit:
    rate: Rate
    burst: int


@dataclass(slots=True)
class Plan:
    """What one claim does with its gated candidates."""

    admitted: list[str] = field(default_factory=list)
    #: The admitted jobs that start later than now (µs): held by the worker until then.
    start_at: dict[str, int] = field(default_factory=dict)
    #: (job id, new due instant µs, state_reason, blocked_on)
    blocked: list[tuple[str, int, str, str]] = field(default_factory=list)
    #: (job id, reason): cancel_new
    cancelled: list[tuple[str, str]] = field(default_factory=list)
    #: (tenant, concurrency key, the job that supersedes the others): cancel_in_progress
    supersede: list[tuple[str, str, str]] = field(default_factory=list)
    #: Set to now when a full batch pushed jobs back: more may be due, claim again at once.
    wake_at: int | None = None
    #: A bucket this claim used has jobs pushed behind it (due later): the store reads the
    #: next due instant for the worker to wake at.
    pending: bool = False

    def wake(self, at: int) -> None:
        self.wake_at = at if self.wake_at is None else min(self.wake_at, at)


def limit_keys(cands: Iterable[Candidate]) -> list[LimitKey]:
    """The (tenant, limit name) an override may exist for, sorted."""
    out: set[LimitKey] = set()
    for c in cands:
        out.update((c.tenant_id, name) for name, _k, _r, _b in c.gates.rates)
        if c.queue_limited:
            out.add((c.tenant_id, QUEUE_LIMIT_PREFIX + c.queue))
    return sorted(out)


def bucket_keys(cands: Iterable[Candidate]) -> list[BucketKey]:
    """The buckets the candidates need, sorted (the order every claimer locks them in)."""
    out: set[BucketKey] = set()
    for c in cands:
        out.update((c.tenant_id, name, key) for name, key, _r, _b in c.gates.rates)
        if c.queue_limited:
            out.add((c.tenant_id, QUEUE_LIMIT_PREFIX + c.queue, ""))
    return sorted(out)


def concurrency_keys(cands: Iterable[Candidate]) -> list[ConcKey]:
    out = {(c.tenant_id, conc[0]) for c in cands if (conc := c.gates.concurrency)}
    return sorted(out)


def lock_id(tenant_id: str, key: str) -> int:
    """A stable signed 64-bit number for a concurrency key (PostgreSQL advisory locks)."""
    digest = hashlib.blake2b(f"hora-conc\0{tenant_id}\0{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def concurrency_name(key: str) -> str:
    """The limit's name of a full concurrency key (``name:field=value`` or ``name``)."""
    head, eq, _value = key.partition("=")
    return head.rpartition(":")[0] or head if eq else key


def _gates(c: Candidate, overrides: Mapping[LimitKey, Limit],
           ) -> list[tuple[str, str, Limit]]:
    out = []
    for name, key, rate, burst in c.gates.rates:
        out.append((name, key, overrides.get((c.tenant_id, name), Limit(rate, burst))))
    if c.queue_limited:
        qname = QUEUE_LIMIT_PREFIX + c.queue
        limit = overrides.get((c.tenant_id, qname))
        if limit is not None:  # the row may have gone since the candidates were read
            out.append((qname, "", limit))
    return out


def plan(cands: Sequence[Candidate], now_us: int, *, overrides: Mapping[LimitKey, Limit],
         buckets: dict[BucketKey, Bucket], running: Mapping[ConcKey, int],
         full_batch: bool = False, ahead_us: int = 0) -> Plan:
    """Decide each gated candidate, in the order given (the claim's priority order).
    ``buckets`` is updated in place (``changed`` marks those to write back); a bucket
    missing from it is full. ``full_batch``: the claim read as many candidates as it may
    start, so more may be due: a job pushed back then asks for an immediate new claim.
    ``ahead_us``: a job every rate gate admits by ``now_us + ahead_us`` starts at that
    instant (``Plan.start_at``) instead of being pushed back, unless jobs pushed back
    earlier are in line before it."""
    out = Plan()
    busy = dict(running)
    heads: dict[BucketKey, int] = {}
    for c in cands:
        gates = _gates(c, overrides)
        conc = c.gates.concurrency
        early = c.due_us > now_us  # read ahead of its instant: start it then, or leave it
        at = max(now_us, c.due_us)
        # Rates first: a refusal has a definite instant; concurrency has none.
        worst: tuple[int, str, str, Limit] | None = None
        in_line = False  # jobs this bucket pushed back earlier wait ahead of this one
        for name, key, limit in gates:
            b = buckets.get((c.tenant_id, name, key))
            ok, _tat, allow_at = _decide(b, at, limit)
            if not ok and (worst is None or allow_at > worst[0]):
                worst = (allow_at, name, key, limit)
            if (not ok and b is not None and b.slot is not None and b.slot > now_us
                    and c.blocked_on != f"rate:{name}"):
                in_line = True
        if worst is not None and worst[0] <= now_us + ahead_us and not in_line:
            at, worst = worst[0], None  # every gate admits it at ``at``: it starts then
        if worst is not None and early:
            out.wake(c.due_us)  # not yet: claimed again when it is due
            continue
        if worst is not None:
            allow_at, name, key, limit = worst
            b = buckets.setdefault((c.tenant_id, name, key), Bucket(0, None))
            slot = allow_at
            # A new job queues up behind those the bucket pushed back already; one that
            # comes back on its slot and finds the bucket a little later than promised (the
            # previous start was late: GCRA counts a start from when it happened) stays at
            # the head of the line, so lateness never sends a job to the back.
            returning = c.blocked_on == f"rate:{name}"
            bk = (c.tenant_id, name, key)
            if returning:  # several come back late together: one interval apart again
                if bk in heads:
                    slot = max(slot, heads[bk] + limit.rate.interval_us)
                heads[bk] = slot
            elif b.slot is not None:
                slot = max(slot, b.slot + limit.rate.interval_us)
            b.slot = slot if b.slot is None else max(b.slot, slot)
            b.changed = True
            reason = f"rate_limited: {name}" + (f" ({key})" if key else "")
            out.blocked.append((c.id, slot, reason, f"rate:{name}"))
            if full_batch:
                out.wake(now_us)
            continue
        if conc is not None:
            ckey, climit, policy = conc
            ck = (c.tenant_id, ckey)
            if busy.get(ck, 0) >= climit and early:
                out.wake(c.due_us)
                continue
            if busy.get(ck, 0) >= climit:
                if policy == "cancel_new":
                    out.cancelled.append((c.id, f"concurrency: {ckey} is full ({climit} "
                                                "running; policy cancel_new)"))
                    continue
                if policy == "cancel_in_progress":
                    out.supersede.append((c.tenant_id, ckey, c.id))
                out.blocked.append((c.id, now_us + PARK_US, f"concurrency: {ckey}",
                                    f"concurrency:{concurrency_name(ckey)}"))
                if full_batch:
                    out.wake(now_us)
                continue
            busy[ck] = busy.get(ck, 0) + 1
        for name, key, limit in gates:
            bk = (c.tenant_id, name, key)
            b = buckets.setdefault(bk, Bucket(0, None))
            _ok, b.tat, _next = _decide(b, at, limit)
            b.changed = True
        out.admitted.append(c.id)
        if at > now_us:
            out.start_at[c.id] = at
    out.pending = bool(out.blocked) or any(
        b.changed and b.slot is not None and b.slot > now_us for b in buckets.values())
    return out


def _decide(b: Bucket | None, now_us: int, limit: Limit) -> tuple[bool, int, int]:
    return gcra(None if b is None else b.tat, now_us, limit.rate, limit.burst)
