"""Run-time rate limits by name, GCRA buckets taken a slice at a time, and the counts of
jobs held back by flow control (see ``hora.store.RateLimitStore``)."""

from __future__ import annotations

from datetime import datetime

from hora.flow import Rate
from hora.models import RateLimitOverride
from hora.store.common import from_us, to_us
from hora.store.ratelimit_rows import (
    horizon,
    override_from_row,
    reasons,
    release_params,
    take,
)
from hora.store.sqlite.connection import Q, SQLiteConnection, _rows


class SQLiteRateLimits(SQLiteConnection):
    """Rate limits (hora_rate_limits) and their buckets (hora_rate_buckets)."""

    def set_rate_limit(self, limit: RateLimitOverride) -> RateLimitOverride:
        now_us = to_us(limit.updated_at)
        with self._write() as conn:
            rows = _rows(conn.execute(Q["set_rate_limit"], {
                "tenant_id": limit.tenant_id, "name": limit.name, "count": limit.count,
                "period": limit.period, "burst": limit.burst, "updated_at": now_us}))
            conn.execute(Q["clamp_rate_buckets"], {
                "tenant_id": limit.tenant_id, "name": limit.name,
                "horizon": horizon(now_us, Rate(limit.count, limit.period), limit.burst)})
            conn.execute(Q["release_rate_blocked"], release_params(
                limit.tenant_id, limit.name, now_us))
        return override_from_row(rows[0], from_us)

    def get_rate_limit(self, tenant_id: str, name: str) -> RateLimitOverride | None:
        with self._read() as conn:
            rows = _rows(conn.execute(Q["get_rate_limit"], {"tenant_id": tenant_id,
                                                            "name": name}))
        return override_from_row(rows[0], from_us) if rows else None

    def list_rate_limits(self, tenant_id: str, *, limit: int = 1000,
                         ) -> list[RateLimitOverride]:
        with self._read() as conn:
            rows = _rows(conn.execute(Q["list_rate_limits"], {"tenant_id": tenant_id,
                                                              "limit": limit}))
        return [override_from_row(r, from_us) for r in rows]

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
                    tenant_id, name, to_us(now)))
        return deleted

    def take_tokens(self, tenant_id: str, name: str, key: str, *, rate: Rate, burst: int,
                    want: int, now: datetime) -> tuple[int, float]:
        params = {"tenant_id": tenant_id, "name": name, "key": key}
        now_us = to_us(now)
        with self._write() as conn:  # BEGIN IMMEDIATE: the one writer of the file
            row = conn.execute(Q["get_rate_bucket"], params).fetchone()
            old = None if row is None else int(row[0])
            granted, tat, wait = take(old, now_us, rate, burst, want)
            if tat != old and (granted or old is not None):
                conn.execute(Q["put_rate_bucket"], {**params, "tat": tat})
        return granted, wait

    def prune_rate_buckets(self, *, before: datetime, limit: int) -> int:
        with self._write() as conn:
            return conn.execute(Q["prune_rate_buckets"],
                                {"before": to_us(before), "limit": limit}).rowcount

    def waiting_by_reason(self, *, now: datetime, limit: int = 500,
                          ) -> list[tuple[str, str, int]]:
        with self._read() as conn:
            blocked = conn.execute(Q["waiting_blocked"], {"limit": limit}).fetchall()
            paused = conn.execute(Q["waiting_paused"], {"now": to_us(now),
                                                        "limit": limit}).fetchall()
        return reasons(blocked, paused)

