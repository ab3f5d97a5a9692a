"""Run-time rate limits by name, GCRA buckets taken a slice at a time, and the counts of
jobs held back by flow control (see ``hora.store.RateLimitStore``)."""

from __future__ import annotations

from datetime import datetime

from psycopg.rows import dict_row

from hora.flow import Rate
from hora.models import RateLimitOverride
from hora.store.common import to_us
from hora.store.postgres.connection import PostgresConnection, Q, _utc
from hora.store.ratelimit_rows import (
    horizon,
    override_from_row,
    reasons,
    release_params,
    take,
)


class PostgresRateLimits(PostgresConnection):
    """Rate limits (hora_rate_limits) and their buckets (hora_rate_buckets)."""

    def set_rate_limit(self, limit: RateLimitOverride) -> RateLimitOverride:
        with self._write() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(Q["set_rate_limit"], {
                "tenant_id": limit.tenant_id, "name": limit.name, "count": limit.count,
                "period": limit.period, "burst": limit.burst,
                "updated_at": _utc(limit.updated_at)}).fetchone()
            cur.execute(Q["clamp_rate_buckets"], {
                "tenant_id": limit.tenant_id, "name": limit.name,
                "horizon": horizon(to_us(limit.updated_at), Rate(limit.count, limit.period),
                                   limit.burst)})
            cur.execute(Q["release_rate_blocked"], release_params(
                limit.tenant_id, limit.name, _utc(limit.updated_at)))
        assert row is not None
        return override_from_row(row, _utc)

    def get_rate_limit(self, tenant_id: str, name: str) -> RateLimitOverride | None:
        with self._read() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(Q["get_rate_limit"], {"tenant_id": tenant_id,
                                                    "name": name}).fetchone()
        return None if row is None else override_from_row(row, _utc)

    def list_rate_limits(self, tenant_id: str, *, limit: int = 1000,
                         ) -> list[RateLimitOverride]:
        with self._read() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(Q["list_rate_limits"], {"tenant_id": tenant_id,
                                                       "limit": limit}).fetchall()
        return [override_from_row(r, _utc) for r in rows]

    def delete_rate_limit(self, tenant_id: str, name: str, *, now: datetime,
                          fallback: tuple[Rate, int] | None = None) -> bool:
        params = {"tenant_id": tenant_id, "name": name}
        with self._write() as conn:
            deleted = conn.execute(Q["delete_rate_limit"], params).rowcount == 1
            if deleted and fallback is not None:
                conn.execute(Q["clamp_rate_buckets"], {
                    **params, "horizon": horizon(to_us(now), *fallback)})
            if deleted:
                conn.execute(Q["release_rate_blocked"], release_params(
                    tenant_id, name, _utc(now)))
        return deleted

    def take_tokens(self, tenant_id: str, name: str, key: str, *, rate: Rate, burst: int,
                    want: int, now: datetime) -> tuple[int, float]:
        """Two statements in one transaction: lock the bucket's row (creating it), then
        write its new tat; concurrent takers of the bucket wait on the row lock."""
        params = {"tenant_id": tenant_id, "name": name, "key": key}
        now_us = to_us(now)
        with self._write() as conn:
            row = conn.execute(Q["lock_rate_bucket"], params).fetchone()
            assert row is not None
            granted, tat, wait = take(int(row[0]), now_us, rate, burst, want)
            if tat != int(row[0]):
                conn.execute(Q["put_rate_bucket"], {**params, "tat": tat})
        return granted, wait

    def prune_rate_buckets(self, *, before: datetime, limit: int) -> int:
        with self._write() as conn:
            return conn.execute(Q["prune_rate_buckets"],
                                {"before": to_us(before), "limit": limit}).rowcount

    def waiting_by_reason(self, *, now: datetime, limit: int = 500,
                          ) -> list[tuple[str, str, int]]:
        with self._read(snapshot=True) as conn:
            blocked = conn.execute(Q["waiting_blocked"], {"limit": limit}).fetchall()
            paused = conn.execute(Q["waiting_paused"], {"now": _utc(now),
                                                        "limit": limit}).fetchall()
        return reasons(blocked, paused)
