"""API keys, tenants and per-tenant rate limits.

A key is ``hora_`` + 32 random base62 characters (190 bits); only its SHA-256 is stored, so a
leaked database leaks no usable key, and the lookup is one indexed read. Keys and tenants are
cached for a few seconds per process: a revoked key stops working within ``CACHE_SECONDS``.
"""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
import string
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hora.clock import Clock, SystemClock
from hora.errors import HoraError, InvalidPayload, NotFound
from hora.flow import Rate
from hora.http_target import new_secret
from hora.ids import new_id
from hora.limits import MAX_RATE_LIMIT, MAX_RETRY_AFTER, MIN_RATE_LIMIT
from hora.models import DEFAULT_TENANT, ApiKey, Tenant
from hora.store import RateLimitStore, Store
from hora.store.common import OPERATOR

log = logging.getLogger("hora.api")

KEY_PREFIX = "hora_"
_ALPHABET = string.ascii_letters + string.digits
CACHE_SECONDS = 5.0
SCOPES = ("read", "write", "approve", "admin", "operator")
#: What each scope also grants. ``admin`` manages its own tenant (its keys, its name) and
#: does anything in it; ``operator`` manages every tenant (creates them, sets quotas, keys of
#: any tenant) and is held by the bootstrap key and keys the CLI mints. ``approve`` decides
#: approvals without the general write rights. docs/api.md has the table.
IMPLIED = {
    "operator": {"operator", "admin", "write", "approve", "read"},
    "admin": {"admin", "write", "approve", "read"},
    "write": {"write", "read"},
    "approve": {"approve", "read"},
    "read": {"read"},
}


def new_key() -> str:
    return KEY_PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(32))


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_record(key: str, *, tenant_id: str, name: str | None, scopes: tuple[str, ...],
               now: datetime, expires_at: datetime | None = None) -> ApiKey:
    return ApiKey(id=new_id(), tenant_id=tenant_id, name=name, prefix=key[:12],
                  key_hash=hash_key(key), scopes=scopes, created_at=now,
                  expires_at=expires_at)


#: How far ahead a key's expiry may lie: beyond it, "never" (no expiry) says it honestly.
MAX_KEY_LIFETIME = timedelta(days=3660)


def check_expiry(expires_at: datetime | None, now: datetime, field: str) -> datetime | None:
    """A key's expiry, in UTC: after ``now`` and within ``MAX_KEY_LIFETIME``."""
    if expires_at is None:
        return None
    if expires_at.tzinfo is None:
        raise InvalidPayload("give an offset (e.g. 2030-01-01T00:00:00Z)", field=field)
    if expires_at <= now:
        raise InvalidPayload(f"{iso(expires_at)} is not in the future", field=field)
    if expires_at - now > MAX_KEY_LIFETIME:
        raise InvalidPayload(f"at most {MAX_KEY_LIFETIME.days} days ahead; leave it "
                             "out for a key that does not expire", field=field)
    return expires_at.astimezone(UTC)


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def default_tenant(tenant_id: str, now: datetime) -> Tenant:
    return Tenant(id=tenant_id, name=tenant_id, webhook_secret=new_secret(),
                  max_pending_jobs=None, max_active_schedules=None, rate_limit=None,
                  created_at=now, updated_at=now)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: the key's tenant and what its scopes grant."""

    key_id: str
    tenant_id: str
    grants: frozenset[str]

    def can(self, scope: str) -> bool:
        return scope in self.grants

    @property
    def operator(self) -> bool:
        """Manages every tenant; without it, an admin manages its own tenant only."""
        return OPERATOR in self.grants


def grants_of(scopes: tuple[str, ...]) -> frozenset[str]:
    out: set[str] = set()
    for s in scopes:
        out |= IMPLIED.get(s, set())
    return frozenset(out)


class Keyring:
    """Resolves presented keys to callers, with a short per-process cache."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._keys: dict[str, tuple[float, ApiKey | None]] = {}
        self._tenants: dict[str, tuple[float, Tenant | None]] = {}
        self._lock = threading.Lock()

    def resolve(self, presented: str) -> ApiKey | None:
        digest = hash_key(presented)
        now = time.monotonic()
        with self._lock:
            hit = self._keys.get(digest)
        if hit is not None and now - hit[0] < CACHE_SECONDS:
            return hit[1]
        record = self.store.api_key_by_hash(digest)
        with self._lock:
            if len(self._keys) > 10_000:
                self._keys.clear()
            self._keys[digest] = (now, record)
        return record

    def tenant(self, tenant_id: str) -> Tenant | None:
        now = time.monotonic()
        with self._lock:
            hit = self._tenants.get(tenant_id)
        if hit is not None and now - hit[0] < CACHE_SECONDS:
            return hit[1]
        try:
            record: Tenant | None = self.store.get_tenant(tenant_id)
        except NotFound:
            record = None
        with self._lock:
            self._tenants[tenant_id] = (now, record)
        return record

    def forget(self) -> None:
        """Drop the caches (after this process changed a key or tenant)."""
        with self._lock:
            self._keys.clear()
            self._tenants.clear()


#: The bucket of a tenant's API requests in ``hora_rate_buckets`` (a name of hora's own:
#: user limits may not start with ``hora.``).
API_BUCKET = "hora.api"
#: A process takes a tenant's request budget this many seconds' worth at a time (at least
#: one request) and spends it locally: the store sees about 1 / LEASE_SECONDS writes a
#: second per busy tenant and process, not one per request.
LEASE_SECONDS = 0.1


def api_rate(rate: float) -> tuple[Rate, int]:
    """A tenant's requests-per-second limit as a GCRA rate and burst (one second's worth, at
    least one); a rate stored below MIN_RATE_LIMIT, or not finite, counts as the minimum."""
    if not rate >= MIN_RATE_LIMIT:  # also NaN
        rate = MIN_RATE_LIMIT
    rate = min(rate, MAX_RATE_LIMIT)
    # a period of 10^6 s: the integer count keeps the interval (1/rate s) within 0.05 %
    return Rate(max(1, round(rate * 1_000_000)), 1_000_000.0), max(1, int(rate))


@dataclass(slots=True)
class _Slice:
    """A process's lease on a tenant's budget: ``tokens`` to spend before ``until`` (then
    lost, never carried over), or, after the store said none was left, none before
    ``empty_until``."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    tokens: int = 0
    until: float = 0.0
    empty_until: float = 0.0


class RateLimiter:
    """Each tenant's API request limit, ``rate`` requests per second with bursts of up to
    one second's worth, held across every API process on the store.

    The budget is one GCRA bucket per tenant in the store (``take_tokens``); a process
    takes a *slice* of it -- LEASE_SECONDS' worth of requests -- in one write, spends it
    locally and loses what it did not spend within LEASE_SECONDS. The guarantee: over any
    window of W seconds, all processes together admit at most
    ``ceil((W + LEASE_SECONDS) * rate) + burst - 1`` requests. Once the store says the
    bucket is empty, the process refuses the tenant's requests locally until the bucket
    refills (no store round trip per refused request).

    Without a store (or while it fails) each process keeps a local token bucket instead:
    the limit then holds per process only.
    """

    def __init__(self, store: RateLimitStore | None = None, clock: Clock | None = None, *,
                 lease: float = LEASE_SECONDS) -> None:
        self._store = store
        self._clock: Clock = clock or SystemClock()
        self._lease = lease
        self._slices: dict[str, _Slice] = {}
        self._buckets: dict[str, tuple[float, float]] = {}  # tenant -> (tokens, stamp)
        self._lock = threading.Lock()
        #: Store round trips made (for tests and the benchmark).
        self.store_calls = 0

    def take(self, tenant_id: str, rate: float) -> float:
        """0 when admitted, else the seconds until a request would be (finite)."""
        if self._store is None:
            return self._take_local(tenant_id, rate)
        with self._lock:
            slice_ = self._slices.get(tenant_id)
            if slice_ is None:
                if len(self._slices) > 10_000:
                    self._slices.clear()
                slice_ = self._slices.setdefault(tenant_id, _Slice())
        with slice_.lock:
            now = self._clock.now()
            t = now.timestamp()
            if slice_.tokens > 0 and t < slice_.until:
                slice_.tokens -= 1
                return 0.0
            if t < slice_.empty_until:
                return slice_.empty_until - t
            gcra_rate, burst = api_rate(rate)
            want = max(1, math.ceil(gcra_rate.per_second * self._lease))
            try:
                self.store_calls += 1
                granted, wait = self._store.take_tokens(
                    tenant_id, API_BUCKET, "", rate=gcra_rate, burst=burst, want=want, now=now)
            except HoraError as e:
                log.warning("the shared API rate limit is unavailable (%s); limiting "
                            "tenant %s in this process only", e, tenant_id)
                return self._take_local(tenant_id, rate)
            if granted:
                slice_.tokens, slice_.until = granted - 1, t + self._lease
                if granted < want:  # the bucket is empty now: the next slice in want's time
                    slice_.empty_until = t + want / gcra_rate.per_second
                return 0.0
            # none left: come back when a whole slice is free, not for each token that
            # frees (under a saturated limit that would be a store call per request)
            slice_.tokens = 0
            slice_.empty_until = t + wait + (want - 1) / gcra_rate.per_second
            return wait

    def _take_local(self, tenant_id: str, rate: float) -> float:
        """A token bucket of this process alone."""
        if not rate >= MIN_RATE_LIMIT:  # also NaN
            rate = MIN_RATE_LIMIT
        rate = min(rate, MAX_RATE_LIMIT)
        capacity = max(1.0, rate)
        now = time.monotonic()
        with self._lock:
            tokens, stamp = self._buckets.get(tenant_id, (capacity, now))
            tokens = min(capacity, tokens + (now - stamp) * rate)
            if tokens >= 1.0:
                self._buckets[tenant_id] = (tokens - 1.0, now)
                return 0.0
            self._buckets[tenant_id] = (tokens, now)
            return (1.0 - tokens) / rate


def retry_after_header(seconds: float) -> str:
    """Whole seconds, from 1 to MAX_RETRY_AFTER, whatever ``seconds`` is (inf, NaN)."""
    if not seconds < MAX_RETRY_AFTER:  # also inf and NaN
        return str(MAX_RETRY_AFTER)
    return str(max(1, math.ceil(seconds)))


def bootstrap_admin(store: Store, now: datetime, *, preset: str | None) -> str | None:
    """On a store without any key, create the first operator key (of the default tenant).

    Returns the new key to print once, or None when keys exist already. ``preset`` (from
    ``HORA_ADMIN_KEY``) is registered instead of a random key, so a deployment can know its
    admin key in advance; it is registered even when other keys exist, if it is new.
    """
    store.ensure_tenant(default_tenant(DEFAULT_TENANT, now))
    if preset:
        if not preset.startswith(KEY_PREFIX) or len(preset) < 24:
            from hora.errors import ConfigError

            raise ConfigError("HORA_ADMIN_KEY must start with 'hora_' and be at least 24 "
                              "characters long (e.g. the output of `hora keys generate`)")
        if store.api_key_by_hash(hash_key(preset)) is None:
            store.insert_api_key(key_record(preset, tenant_id=DEFAULT_TENANT, name="admin",
                                            scopes=(OPERATOR,), now=now))
        return None
    if store.count_api_keys() > 0:
        return None
    key = new_key()
    store.insert_api_key(key_record(key, tenant_id=DEFAULT_TENANT, name="admin",
                                    scopes=(OPERATOR,), now=now))
    return key


__all__ = ["API_BUCKET", "Caller", "Keyring", "RateLimiter", "api_rate", "bootstrap_admin",
           "hash_key", "new_key"]
