"""Retention: bounded prunes of old finished records, and the tenants' retention overrides.

Each ``prune_batch`` is one statement in one short transaction: it locks at most ``limit``
records from the head of a partial index by age with ``FOR UPDATE SKIP LOCKED`` (a row a
worker holds is left for the next batch, never waited for) and deletes them with what hangs
off them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from hora.models import RETENTION_KINDS, RetentionPolicy
from hora.store.postgres.connection import Conn, PostgresConnection, Q


class PostgresRetention(PostgresConnection):
    """The retention aggregate: prunes over every table, and hora_retention."""

    def prune_batch(self, kind: str, *, cutoff: datetime, limit: int,
                    tenant_id: str | None = None, exclude_tenants: Sequence[str] = (),
                    ) -> int:
        params = _params(kind, cutoff, limit, tenant_id, exclude_tenants)
        with self._write() as conn:
            _index_probes_only(conn)
            cur = conn.execute(Q[f"prune_{kind}"], params)
            if kind in ("ticks", "idempotency"):
                return int(cur.rowcount)
            row = cur.fetchone()
            return 0 if row is None else int(row[0])

    def count_prunable(self, kind: str, *, cutoff: datetime, limit: int,
                       tenant_id: str | None = None, exclude_tenants: Sequence[str] = (),
                       ) -> int:
        params = _params(kind, cutoff, limit, tenant_id, exclude_tenants)
        with self._read() as conn, conn.transaction():
            _index_probes_only(conn)
            row = conn.execute(Q[f"count_prunable_{kind}"], params).fetchone()
        return 0 if row is None else int(row[0])

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
                    "tenant_id": tenant_id, "now": now,
                    **{k: policy.age(k) for k in RETENTION_KINDS}})


def _index_probes_only(conn: Conn) -> None:
    """For this transaction: no sequential scan where an index serves, no merge join. A
    prune batch reads ~limit rows by index (its deletes are bounded by ``= ANY(ARRAY(...))``
    index conditions); statistics of a table that just lost a million rows, or of a tiny
    one, must not turn that into a scan of the table."""
    conn.execute("SET LOCAL enable_seqscan = off")
    conn.execute("SET LOCAL enable_mergejoin = off")
    # A prune's commit need not wait for its WAL to reach the disk: a crash that loses the
    # last batch leaves rows the next batch deletes again. The workers' commits stay durable.
    conn.execute("SET LOCAL synchronous_commit = off")


def _params(kind: str, cutoff: datetime, limit: int, tenant_id: str | None,
            exclude: Sequence[str]) -> dict[str, Any]:
    if kind not in RETENTION_KINDS:
        raise ValueError(f"unknown retention kind {kind!r}")
    if limit < 1:
        raise ValueError("limit must be at least 1")
    return {"cutoff": cutoff, "limit": limit, "tenant_id": tenant_id,
            "exclude": list(exclude)}
