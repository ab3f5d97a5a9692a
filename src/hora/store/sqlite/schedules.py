"""Schedules: their rows, the tick ledger, and the SQL of one scheduler pass."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime

from hora.errors import (
    Conflict,
    NotFound,
    StaleRecord,
)
from hora.models import (
    Page,
    Schedule,
    Tick,
)
from hora.store import PlanFn
from hora.store.common import (
    from_us,
    id_cursor,
    keyset_page,
    schedule_from_row,
    schedule_params,
    tick_from_row,
    to_us,
)
from hora.store.sqlite.connection import Q, SQLiteConnection, _rows
from hora.store.sqlite.jobs import (
    _insert_params,
)


class SQLiteSchedules(SQLiteConnection):
    def insert_schedule(self, schedule: Schedule) -> Schedule:
        with self._write() as conn:
            try:
                conn.execute(Q["insert_schedule"], schedule_params(schedule, to_us))
            except sqlite3.IntegrityError as e:
                if "hora_schedules.tenant_id, hora_schedules.name" in str(e):
                    raise Conflict(f"a schedule named {schedule.name!r} already exists") from None
                raise
            return self._get_schedule(conn, schedule.id, schedule.tenant_id)

    def _get_schedule(self, conn: sqlite3.Connection, schedule_id: str,
                      tenant_id: str) -> Schedule:
        rows = _rows(conn.execute(Q["get_schedule"], {"id": schedule_id,
                                                      "tenant_id": tenant_id}))
        if not rows:
            raise NotFound(f"schedule {schedule_id} not found")
        return schedule_from_row(rows[0], from_us)

    def get_schedule(self, schedule_id: str, *, tenant_id: str) -> Schedule:
        with self._read() as conn:
            return self._get_schedule(conn, schedule_id, tenant_id)

    def list_schedules(self, *, tenant_id: str, state: str | None = None, limit: int = 50,
                       cursor: str | None = None) -> Page[Schedule]:
        with self._read() as conn:
            rows = _rows(conn.execute(Q["list_schedules"], {
                "tenant_id": tenant_id, "state": state, "cursor": id_cursor(cursor),
                "limit": limit + 1}))
        items = [schedule_from_row(r, from_us) for r in rows]
        return keyset_page(items, limit, lambda s: s.id)

    def update_schedule(self, schedule: Schedule,
                        skipped: Sequence[tuple[datetime, datetime, str]] = ()) -> Schedule:
        """Replace a schedule's row (the caller recomputed cursor and next_fire_at), and
        record ``skipped`` occurrences (nominal, fire_at, reason) in its ledger."""
        with self._write() as conn:
            try:
                cur = conn.execute(Q["update_schedule"], schedule_params(schedule, to_us))
            except sqlite3.IntegrityError as e:
                if "hora_schedules.tenant_id, hora_schedules.name" in str(e):
                    raise Conflict(f"a schedule named {schedule.name!r} already exists") from None
                raise
            if cur.rowcount == 0:
                current = self._get_schedule(conn, schedule.id, schedule.tenant_id)  # NotFound
                raise StaleRecord(f"schedule {schedule.id} changed meanwhile (version "
                                  f"{current.version}, not {schedule.version}); read it again")
            n = to_us(schedule.updated_at)
            for nominal, fire_at, reason in skipped:
                conn.execute(Q["insert_tick"], {
                    "schedule_id": schedule.id, "nominal": to_us(nominal),
                    "fire_at": to_us(fire_at), "outcome": "skipped", "reason": reason,
                    "job_id": None, "now": n})
            return self._get_schedule(conn, schedule.id, schedule.tenant_id)

    def delete_schedule(self, schedule_id: str, *, tenant_id: str) -> None:
        with self._write() as conn:
            if conn.execute(Q["delete_schedule"], {"id": schedule_id,
                                                   "tenant_id": tenant_id}).rowcount == 0:
                raise NotFound(f"schedule {schedule_id} not found")
            conn.execute(Q["delete_ticks"], {"id": schedule_id})

    def list_ticks(self, schedule_id: str, *, tenant_id: str, outcome: str | None = None,
                   limit: int = 100, cursor: datetime | None = None) -> Page[Tick]:
        with self._read() as conn:
            self._get_schedule(conn, schedule_id, tenant_id)  # NotFound across tenants
            rows = conn.execute(Q["list_ticks"], {
                "schedule_id": schedule_id, "outcome": outcome, "limit": limit + 1,
                "cursor": None if cursor is None else to_us(cursor)}).fetchall()
        ticks = [tick_from_row(r, from_us) for r in rows]
        return keyset_page(ticks, limit, lambda t: t.nominal.isoformat())

    def process_due_schedules(self, now: datetime, limit: int, plan: PlanFn) -> tuple[int, int]:
        """Apply ``plan`` to each due schedule inside one write transaction; returns
        (jobs fired, schedules processed)."""
        n = to_us(now)
        fired = 0
        with self._write() as conn:
            rows = _rows(conn.execute(Q["due_schedules"], {"now": n, "limit": limit}))
            for r in rows:
                schedule = schedule_from_row(r, from_us)
                active = [(a, b) for a, b in conn.execute(
                    Q["unfinished_jobs_of_schedule"], {"schedule_id": schedule.id})]
                p = plan(schedule, active)
                for cancel_id in p.cancel_job_ids:
                    params = {"id": cancel_id, "tenant_id": schedule.tenant_id, "now": n,
                              "reason": f"cancelled by schedule {schedule.id}: "
                                        "overlap policy cancel_previous"}
                    if conn.execute(Q["cancel_waiting"], params).rowcount == 0:
                        conn.execute(Q["request_cancel"], params)
                for t in p.ticks:
                    job_id = None
                    if t.job is not None:
                        if conn.execute(Q["insert_job"], _insert_params(t.job, n)).rowcount:
                            job_id = t.job.id
                            fired += 1
                        else:  # fired before (another scheduler): the same job, not a new one
                            row = conn.execute(Q["job_by_idempotency_key"], {
                                "tenant_id": t.job.tenant_id,
                                "key": t.job.idempotency_key}).fetchone()
                            job_id = row[0]
                    conn.execute(Q["insert_tick"], {
                        "schedule_id": schedule.id, "nominal": to_us(t.nominal),
                        "fire_at": to_us(t.fire_at), "outcome": t.outcome,
                        "reason": t.reason, "job_id": job_id, "now": n})
                conn.execute(Q["advance_schedule"], {
                    "id": schedule.id, "now": n,
                    "cursor": to_us(p.cursor or schedule.cursor),
                    "next_fire_at": None if p.next_fire_at is None else to_us(p.next_fire_at),
                    "error": p.error})
        return fired, len(rows)

    def next_schedule_fire(self) -> datetime | None:
        with self._read() as conn:
            row = conn.execute(Q["next_schedule_fire"]).fetchone()
        return None if row is None or row[0] is None else from_us(row[0])

    def count_active_schedules(self, tenant_id: str, *, limit: int) -> int:
        with self._read() as conn:
            return int(conn.execute(Q["count_active_schedules"], {
                "tenant_id": tenant_id, "limit": limit}).fetchone()[0])


