"""What both stores share for run-time rate limits: the row codec, the multi-token GCRA step
behind ``take_tokens`` and the bucket clamp behind ``set_rate_limit``, in integer
microseconds so every store and process computes the same answer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hora.flow import Rate
from hora.models import RateLimitOverride

#: How far beyond its burst a bucket may owe (see ``take``): a rate raised at run time
#: holds within this, and takers' clocks may differ by as much without beating the limit.
DEBT_MARGIN_US = 1_000_000


def override_from_row(r: Mapping[str, Any], ts: Any) -> RateLimitOverride:
    return RateLimitOverride(tenant_id=r["tenant_id"], name=r["name"], count=int(r["count"]),
                             period=float(r["period"]), burst=int(r["burst"]),
                             updated_at=ts(r["updated_at"]))


def take(tat_us: int | None, now_us: int, rate: Rate, burst: int,
         want: int) -> tuple[int, int, float]:
    """Up to ``want`` GCRA admissions at once: (granted, the bucket's new tat, seconds until
    one is free when none was granted, else 0.0). The caller writes the new tat when it
    differs from ``tat_us`` (also without a grant: an old debt cut to the margin).

    With ``interval`` the rate's emission interval and ``tolerance = (burst - 1) *
    interval``, the k-th start of a batch is admitted when ``tat + (k - 1) * interval -
    tolerance <= now``: exactly what ``want`` calls of ``hora.flow.gcra`` in a row at ``now``
    would admit, so a batch never beats the limit's window bound.
    """
    interval = rate.interval_us
    tolerance = interval * (burst - 1)
    tat = now_us if tat_us is None or tat_us < now_us else tat_us
    # Under one rate a bucket never owes more than its burst; much more is debt of an older,
    # slower rate (a tenant's limit was raised), which the new one inherits for at most
    # DEBT_MARGIN. The margin, not zero: takers' clocks differ a little, and a taker whose
    # clock is behind must not cut the debt others' takes made.
    tat = min(tat, horizon(now_us, rate, burst) + DEBT_MARGIN_US)
    free = (now_us - tat + tolerance) // interval + 1
    granted = max(0, min(want, free))
    if granted:
        return granted, tat + granted * interval, 0.0
    return 0, tat, (tat - tolerance - now_us) / 1_000_000  # tat: maybe cut, to be written


def horizon(now_us: int, rate: Rate, burst: int) -> int:
    """The latest tat a bucket keeps when its limit changes to ``rate``: the new limit fully
    spent at ``now`` (its next start one interval away), never a debt of the old one."""
    return now_us + rate.interval_us * burst


#: A ``blocked_on`` prefix (``rate:<name>``, ``concurrency:<name>``) -> the gauge's reason.
#: The most pushed jobs a changed limit makes due again at once (the rest are re-planned
#: when their old slots come).
RELEASE_LIMIT = 10_000


def release_params(tenant_id: str, name: str, now: Any) -> dict[str, Any]:
    """``release_rate_blocked``'s parameters (``now`` in the dialect's form)."""
    return {"tenant_id": tenant_id, "blocked_on": f"rate:{name}", "now": now,
            "limit": RELEASE_LIMIT}


_REASONS = {"rate": "rate_limited", "concurrency": "concurrency"}


def reasons(blocked: Sequence[Sequence[Any]],
            paused: Sequence[Sequence[Any]]) -> list[tuple[str, str, int]]:
    """The gauge's two grouped reads as (reason, name, count): (blocked_on, n) rows and
    (queue, n) rows of paused queues."""
    out: list[tuple[str, str, int]] = []
    for blocked_on, n in blocked:
        kind, _, name = str(blocked_on).partition(":")
        out.append((_REASONS.get(kind, kind), name, int(n)))
    out.extend(("queue_paused", str(name), int(n)) for name, n in paused)
    return out
