"""Schedules: their rows, the tick ledger, and the SQL of one scheduler pass."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from hora.errors import Conflict, NotFound, StaleRecord, StoreError
from hora.models import NewJob, Page, Schedule, Tick
from hora.store import JobCancel, ScheduleAdvance
from hora.store.common import (
    id_cursor,
    keyset_page,
    schedule_from_row,
    schedule_params,
    tick_from_row,
)
from hora.store.postgres.connection import Conn, PostgresConnection, Q, _announce, _utc
from hora.store.postgres.jobs import _insert_order, _insert_params


class PostgresSchedules(PostgresConnection):
    """The schedules aggregate: hora_schedules and the hora_schedule_ticks ledger."""

    def insert_schedule(self, schedule: Schedule) -> Schedule:
        with self._write() as conn, conn.cursor(row_factory=dict_row) as cur:
            try:
                row = cur.execute(Q["insert_schedule"], _schedule_params(schedule)).fetchone()
            except psycopg.errors.UniqueViolation as e:
                if _is_name_conflict(e):
                    raise Conflict(f"a schedule named {schedule.name!r} already exists") from None
                raise
        if row is None:  # pragma: no cover - INSERT ... RETURNING always returns the row
            raise StoreError(f"insert of schedule {schedule.id} returned nothing")
        return schedule_from_row(row, _utc, decoded=True)

    def _get_schedule(self, conn: Conn, schedule_id: str, tenant_id: str) -> Schedule:
        with conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(Q["get_schedule"], {"id": schedule_id,
                                                  "tenant_id": tenant_id}).fetchone()
        if row is None:
            raise NotFound(f"schedule {schedule_id} not found")
        return schedule_from_row(row, _utc, decoded=True)

    def get_schedule(self, schedule_id: str, *, tenant_id: str) -> Schedule:
        with self._read() as conn:
            return self._get_schedule(conn, schedule_id, tenant_id)

    def list_schedules(self, *, tenant_id: str, state: str | None = None, limit: int = 50,
                       cursor: str | None = None) -> Page[Schedule]:
        with self._read() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(Q["list_schedules"], {
                "tenant_id": tenant_id, "state": state, "cursor": id_cursor(cursor),
                "limit": limit + 1}).fetchall()
        items = [schedule_from_row(r, _utc, decoded=True) for r in rows]
        return keyset_page(items, limit, lambda s: s.id)

    def update_schedule(self, schedule: Schedule,
                        skipped: Sequence[tuple[datetime, datetime, str]] = ()) -> Schedule:
        """Replace a schedule's row (the caller recomputed cursor and next_fire_at), and
        record ``skipped`` occurrences (nominal, fire_at, reason) in its ledger.

        The row is updated (and so locked) before its ticks are written: the order a
        scheduler pass takes, so the two wait on each other instead of deadlocking."""
        with self._write() as conn:
            with conn.cursor(row_factory=dict_row) as cur:
                try:
                    row = cur.execute(Q["update_schedule"],
                                      _schedule_params(schedule)).fetchone()
                except psycopg.errors.UniqueViolation as e:
                    if _is_name_conflict(e):
                        raise Conflict(f"a schedule named {schedule.name!r} already "
                                       "exists") from None
                    raise
            if row is None:
                current = self._get_schedule(conn, schedule.id, schedule.tenant_id)  # NotFound
                raise StaleRecord(f"schedule {schedule.id} changed meanwhile (version "
                                  f"{current.version}, not {schedule.version}); read it again")
            if skipped:
                conn.execute(Q["insert_ticks"], {
                    "schedule_id": schedule.id, "now": schedule.updated_at,
                    "nominals": [s[0] for s in skipped], "fire_ats": [s[1] for s in skipped],
                    "outcomes": ["skipped"] * len(skipped),
                    "reasons": [s[2] for s in skipped], "job_ids": [None] * len(skipped)})
        return schedule_from_row(row, _utc, decoded=True)

    def delete_schedule(self, schedule_id: str, *, tenant_id: str) -> None:
        with self._write() as conn:
            if conn.execute(Q["delete_schedule"], {"id": schedule_id,
                                                   "tenant_id": tenant_id}).rowcount == 0:
                raise NotFound(f"schedule {schedule_id} not found")
            conn.execute(Q["delete_ticks"], {"id": schedule_id})
            conn.execute(Q["delete_declared_mark"], {"id": schedule_id})

    def get_schedule_by_name(self, name: str, *, tenant_id: str) -> Schedule:
        with self._read() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(Q["get_schedule_by_name"], {"name": name,
                                                          "tenant_id": tenant_id}).fetchone()
        if row is None:
            raise NotFound(f"no schedule named {name!r}")
        return schedule_from_row(row, _utc, decoded=True)

    def mark_schedules_declared(self, schedule_ids: Sequence[str], *, tenant_id: str,
                                now: datetime) -> None:
        if not schedule_ids:
            return
        with self._write() as conn, conn.cursor() as cur:
            cur.executemany(Q["mark_declared"], [
                {"schedule_id": i, "tenant_id": tenant_id, "now": now} for i in schedule_ids])

    def declared_schedules(self, *, tenant_id: str) -> list[Schedule]:
        with self._read() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(Q["declared_schedules"], {"tenant_id": tenant_id}).fetchall()
        return [schedule_from_row(r, _utc, decoded=True) for r in rows]

    def list_ticks(self, schedule_id: str, *, tenant_id: str, outcome: str | None = None,
                   limit: int = 100, cursor: datetime | None = None) -> Page[Tick]:
        with self._read(snapshot=True) as conn:
            self._get_schedule(conn, schedule_id, tenant_id)  # NotFound across tenants
            rows = conn.execute(Q["list_ticks"], {
                "schedule_id": schedule_id, "outcome": outcome, "limit": limit + 1,
                "cursor": cursor}).fetchall()
        ticks = [tick_from_row(r, _utc) for r in rows]
        return keyset_page(ticks, limit, lambda t: t.nominal.isoformat())

    @contextmanager
    def schedule_pass(self, now: datetime) -> Iterator[PostgresSchedulePass]:
        """One READ COMMITTED transaction; the queues of the jobs it fired are announced at
        commit."""
        with self._write() as conn:
            tx = PostgresSchedulePass(conn, now)
            yield tx
            if tx.queues:
                _announce(conn, tx.queues)

    def next_schedule_fire(self) -> datetime | None:
        with self._read() as conn:
            row = conn.execute(Q["next_schedule_fire"]).fetchone()
        return None if row is None or row[0] is None else _utc(row[0])

    def count_active_schedules(self, tenant_id: str, *, limit: int) -> int:
        return self._count(Q["count_active_schedules"],
                           {"tenant_id": tenant_id, "limit": limit})


# -- helpers ----------------------------------------------------------------------------


def _schedule_params(schedule: Schedule) -> dict[str, Any]:
    params = schedule_params(schedule, _utc)
    # float(): misfire_grace and timeout are double precision, whatever number type arrives.
    params["misfire_grace"] = float(schedule.misfire_grace)
    params["timeout"] = None if schedule.timeout is None else float(schedule.timeout)
    return params


def _is_name_conflict(e: psycopg.errors.UniqueViolation) -> bool:
    """A duplicate (tenant, name) is the caller's Conflict; another duplicate (an id) is not."""
    return e.diag.constraint_name == "hora_schedules_name"



class PostgresSchedulePass:
    """The SQL of one scheduler pass (see ``hora.store.SchedulePass``), a statement per step
    over parallel arrays, whatever the number of schedules."""

    def __init__(self, conn: Conn, now: datetime) -> None:
        self._conn = conn
        self._now = now
        #: Queues of the jobs inserted, announced when the pass commits.
        self.queues: set[str] = set()

    def due(self, limit: int) -> list[Schedule]:
        """``FOR UPDATE SKIP LOCKED``: the schedules another scheduler holds are left to it."""
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(Q["due_schedules"], {"now": self._now, "limit": limit}).fetchall()
        return [schedule_from_row(r, _utc, decoded=True) for r in rows]

    def task_flows(self, keys: Sequence[tuple[str, str]],
                   ) -> dict[tuple[str, str], dict[str, Any] | None]:
        out: dict[tuple[str, str], dict[str, Any] | None] = {}
        for tenant_id, name in keys:
            row = self._conn.execute(Q["task_flow"], {"tenant_id": tenant_id,
                                                      "name": name}).fetchone()
            out[(tenant_id, name)] = None if row is None else row[0]
        return out

    def active_jobs(self, schedule_ids: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
        out: dict[str, list[tuple[str, str]]] = {}
        for schedule_id, job_id, state in self._conn.execute(
                Q["unfinished_jobs_of_schedules"], {"schedule_ids": list(schedule_ids)}):
            out.setdefault(schedule_id, []).append((job_id, state))
        return out

    def insert_jobs(self, jobs: Sequence[NewJob]) -> dict[str, str]:
        if not jobs:
            return {}
        inserted = {row[0] for row in self._conn.execute(
            Q["insert_jobs"], _insert_params(_insert_order(jobs), self._now))}
        self.queues.update(j.queue for j in jobs if j.id in inserted)
        stored = {j.id: j.id for j in jobs if j.id in inserted}
        again = [j for j in jobs if j.id not in inserted]
        if again:  # fired before (another scheduler): the same job, not a new one
            existing = {(e[0], e[1]): e[2] for e in self._conn.execute(
                Q["jobs_by_idempotency_key"],
                {"tenant_ids": [j.tenant_id for j in again],
                 "keys": [j.idempotency_key for j in again]})}
            for j in again:
                found = existing.get((j.tenant_id, j.idempotency_key))
                if found is None:  # pragma: no cover - the conflict guarantees it
                    raise StoreError(f"insert of job {j.id} was ignored without a conflict")
                stored[j.id] = found
        return stored

    def record_ticks(self, ticks: Sequence[Tick]) -> None:
        if ticks:
            self._conn.execute(Q["record_ticks"], {
                "now": self._now, "schedule_ids": [t.schedule_id for t in ticks],
                "nominals": [t.nominal for t in ticks], "fire_ats": [t.fire_at for t in ticks],
                "outcomes": [t.outcome for t in ticks], "reasons": [t.reason for t in ticks],
                "job_ids": [t.job_id for t in ticks]})

    def advance(self, advances: Sequence[ScheduleAdvance]) -> None:
        if advances:
            self._conn.execute(Q["advance_schedules"], {
                "now": self._now, "ids": [a.schedule_id for a in advances],
                "cursors": [a.cursor for a in advances],
                "next_fire_ats": [a.next_fire_at for a in advances],
                "errors": [a.error for a in advances]})

    def cancel_jobs(self, cancels: Sequence[JobCancel]) -> None:
        """The jobs locked in the order given first, like every statement that locks several
        jobs (no deadlock with a worker's batched finish)."""
        if not cancels:
            return
        self._conn.execute(Q["lock_job_ids"], {"ids": [c.job_id for c in cancels]})
        for c in cancels:
            params = {"id": c.job_id, "tenant_id": c.tenant_id, "now": self._now,
                      "reason": c.reason}
            if self._conn.execute(Q["cancel_waiting"], params).rowcount == 0:
                self._conn.execute(Q["request_cancel"], params)
