"""Retention: bounded prunes of old finished records, and the tenants' retention overrides.

Each ``prune_batch`` is one short ``BEGIN IMMEDIATE`` transaction that deletes at most
``limit`` records (and what hangs off them) from the head of a partial index by age, so the
write lock is held for one batch, never for a whole prune.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from hora.models import RETENTION_KINDS, RetentionPolicy
from hora.store.common import to_us
from hora.store.sqlite.connection import Q, SQLiteConnection


class SQLiteRetention(SQLiteConnection):
    """The retention aggregate: prunes over every table, and hora_retention."""

    def prune_batch(self, kind: str, *, cutoff: datetime, limit: int,
                    tenant_id: str | None = None, exclude_tenants: Sequence[str] = (),
                    ) -> int:
        params = _params(kind, cutoff, limit, tenant_id, exclude_tenants)
        with self._write() as conn:
            if kind in ("jobs", "dead"):
                ids = [r[0] for r in conn.execute(Q[f"prune_{kind}"], params).fetchall()]
                if ids:
                    doomed = {"ids": json.dumps(ids)}
                    conn.execute(Q["prune_job_attempts"], doomed)
                    conn.execute(Q["prune_job_events"], doomed)
                return len(ids)
            if kind == "workflows":
                keys = [list(r) for r in conn.execute(Q["prunable_workflows"], params)]
                if keys:
                    doomed = {"keys": json.dumps(keys)}
                    for part in ("history", "signals", "approvals", "rows"):
                        conn.execute(Q[f"prune_workflow_{part}"], doomed)
                return len(keys)
            return int(conn.execute(Q[f"prune_{kind}"], params).rowcount)

    def count_prunable(self, kind: str, *, cutoff: datetime, limit: int,
                       tenant_id: str | None = None, exclude_tenants: Sequence[str] = (),
                       ) -> int:
        params = _params(kind, cutoff, limit, tenant_id, exclude_tenants)
        with self._read() as conn:
            return int(conn.execute(Q[f"count_prunable_{kind}"], params).fetchone()[0])

    def retention_overrides(self) -> dict[str, RetentionPolicy]:
        with self._read() as conn:
            rows = conn.execute(Q["retention_overrides"]).fetchall()
        return {r[0]: RetentionPolicy(*r[1:]) for r in rows}

    def set_retention(self, tenant_id: str, policy: RetentionPolicy | None, *,
                      now: datetime) -> None:
        with self._write() as conn:
            if policy is None or all(policy.age(k) is None for k in RETENTION_KINDS):
                conn.execute(Q["clear_retention"], {"tenant_id": tenant_id})
            else:
                conn.execute(Q["set_retention"], {
                    "tenant_id": tenant_id, "now": to_us(now),
                    **{k: policy.age(k) for k in RETENTION_KINDS}})


def _params(kind: str, cutoff: datetime, limit: int, tenant_id: str | None,
            exclude: Sequence[str]) -> dict[str, Any]:
    if kind not in RETENTION_KINDS:
        raise ValueError(f"unknown retention kind {kind!r}")
    if limit < 1:
        raise ValueError("limit must be at least 1")
    return {"cutoff": to_us(cutoff), "limit": limit, "tenant_id": tenant_id,
            "exclude": json.dumps(list(exclude))}
