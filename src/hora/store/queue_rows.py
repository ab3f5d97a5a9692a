"""Rows of the queues aggregate as records, the same for both dialects (``instant`` decodes
the dialect's timestamps)."""

from __future__ import annotations

from typing import Any

from hora.models import QueueDepth, QueueState


def queue_state_from_row(r: dict[str, Any], instant: Any) -> QueueState:
    return QueueState(tenant_id=r["tenant_id"], name=r["name"], paused=bool(r["paused"]),
                      paused_at=None if r["paused_at"] is None else instant(r["paused_at"]),
                      reason=r["reason"])


def depths_from_rows(rows: list[dict[str, Any]], instant: Any) -> list[QueueDepth]:
    """(queue, state) groups -> one QueueDepth per queue, by name."""
    by_queue: dict[str, dict[str, Any]] = {}
    for r in rows:
        d = by_queue.setdefault(r["queue"], {"queue": r["queue"], "due": 0,
                                             "oldest_due_at": None})
        d[r["state"]] = int(r["n"])
        d["due"] += int(r["due"] or 0)
        if r["oldest_due"] is not None:
            at = instant(r["oldest_due"])
            if d["oldest_due_at"] is None or at < d["oldest_due_at"]:
                d["oldest_due_at"] = at
    return [QueueDepth(**by_queue[q]) for q in sorted(by_queue)]
