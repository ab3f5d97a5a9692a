"""Schedules: their rows, the tick ledger, and the SQL of one scheduler pass."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from hora.errors import Conflict, NotFound, StaleRecord, StoreError
from hora.models import NewJob, Page, Schedule, Tick
from hora.store import JobCancel, ScheduleAdvance
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
from hora.store.sqlite.jobs import _insert_params


class SQLiteSchedules(SQLiteConnection):
    """The schedules aggregate: hora_schedules and the hora_schedule_ticks ledger."""

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
            conn.execute(Q["delete_declared_mark"], {"id": schedule_id})

    def get_schedule_by_name(self, name: str, *, tenant_id: str) -> Schedule:
        with self._read() as conn:
            rows = _rows(conn.execute(Q["get_schedule_by_name"], {"name": name,
                                                                  "tenant_id": tenant_id}))
        if not rows:
            raise NotFound(f"no schedule named {name!r}")
        return schedule_from_row(rows[0], from_us)

    def mark_schedules_declared(self, schedule_ids: Sequence[str], *, tenant_id: str,
                                now: datetime) -> None:
        with self._write() as conn:
            for schedule_id in schedule_ids:
                conn.execute(Q["mark_declared"], {"schedule_id": schedule_id,
                                                  "tenant_id": tenant_id, "now": to_us(now)})

    def declared_schedules(self, *, tenant_id: str) -> list[Schedule]:
        with self._read() as conn:
            rows = _rows(conn.execute(Q["declared_schedules"], {"tenant_id": tenant_id}))
        return [schedule_from_row(r, from_us) for r in rows]

    def list_ticks(self, schedule_id: str, *, tenant_id: str, outcome: str | None = None,
                   limit: int = 100, cursor: datetime | None = None) -> Page[Tick]:
        with self._read() as conn:
            self._get_schedule(conn, schedule_id, tenant_id)  # NotFound across tenants
            rows = conn.execute(Q["list_ticks"], {
                "schedule_id": schedule_id, "outcome": outcome, "limit": limit + 1,
                "cursor": None if cursor is None else to_us(cursor)}).fetchall()
        ticks = [tick_from_row(r, from_us) for r in rows]
        return keyset_page(ticks, limit, lambda t: t.nominal.isoformat())

    @contextmanager
    def schedule_pass(self, now: datetime) -> Iterator[SQLiteSchedulePass]:
        """One ``BEGIN IMMEDIATE`` transaction: SQLite's one writer is the pass's lock."""
        with self._write() as conn:
            yield SQLiteSchedulePass(conn, now)

    def next_schedule_fire(self) -> datetime | None:
        with self._read() as conn:
            row = conn.execute(Q["next_schedule_fire"]).fetchone()
        return None if row is None or row[0] is None else from_us(row[0])

    def count_active_schedules(self, tenant_id: str, *, limit: int) -> int:
        with self._read() as conn:
            return int(conn.execute(Q["count_active_schedules"], {
                "tenant_id": tenant_id, "limit": limit}).fetchone()[0])




class SQLiteSchedulePass:
    """The SQL of one scheduler pass (see ``hora.store.SchedulePass``). Statements run in
    process, no round trip each, so a batch is ``executemany`` over one prepared statement."""

    def __init__(self, conn: sqlite3.Connection, now: datetime) -> None:
        self._conn = conn
        self._now = to_us(now)

    def due(self, limit: int) -> list[Schedule]:
        rows = _rows(self._conn.execute(Q["due_schedules"], {"now": self._now, "limit": limit}))
        return [schedule_from_row(r, from_us) for r in rows]

    def task_flows(self, keys: Sequence[tuple[str, str]],
                   ) -> dict[tuple[str, str], dict[str, Any] | None]:
        out: dict[tuple[str, str], dict[str, Any] | None] = {}
        for tenant_id, name in keys:
            row = self._conn.execute(Q["task_flow"], {"tenant_id": tenant_id,
                                                      "name": name}).fetchone()
            out[(tenant_id, name)] = json.loads(row[0]) if row and row[0] else None
        return out

    def active_jobs(self, schedule_ids: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
        out: dict[str, list[tuple[str, str]]] = {}
        for schedule_id, job_id, state in self._conn.execute(
                Q["unfinished_jobs_of_schedules"],
                {"schedule_ids": json.dumps(list(schedule_ids))}):
            out.setdefault(schedule_id, []).append((job_id, state))
        return out

    def insert_jobs(self, jobs: Sequence[NewJob]) -> dict[str, str]:
        stored: dict[str, str] = {}
        for job in jobs:
            if self._conn.execute(Q["insert_job"], _insert_params(job, self._now)).rowcount:
                stored[job.id] = job.id
                continue
            # Fired before (another scheduler): the same job, not a new one.
            row = self._conn.execute(Q["job_by_idempotency_key"], {
                "tenant_id": job.tenant_id, "key": job.idempotency_key}).fetchone()
            if row is None:  # pragma: no cover - the conflict target guarantees a row
                raise StoreError(f"insert of job {job.id} was ignored without a conflict")
            stored[job.id] = row[0]
        return stored

    def record_ticks(self, ticks: Sequence[Tick]) -> None:
        self._conn.executemany(Q["insert_tick"], [{
            "schedule_id": t.schedule_id, "nominal": to_us(t.nominal),
            "fire_at": to_us(t.fire_at), "outcome": t.outcome, "reason": t.reason,
            "job_id": t.job_id, "now": self._now} for t in ticks])

    def advance(self, advances: Sequence[ScheduleAdvance]) -> None:
        self._conn.executemany(Q["advance_schedule"], [{
            "id": a.schedule_id, "now": self._now, "cursor": to_us(a.cursor),
            "next_fire_at": None if a.next_fire_at is None else to_us(a.next_fire_at),
            "error": a.error} for a in advances])

    def cancel_jobs(self, cancels: Sequence[JobCancel]) -> None:
        for c in cancels:
            params = {"id": c.job_id, "tenant_id": c.tenant_id, "now": self._now,
                      "reason": c.reason}
            if self._conn.execute(Q["cancel_waiting"], params).rowcount == 0:
                self._conn.execute(Q["request_cancel"], params)
