"""The embedded store: one SQLite file, WAL, every write in ``BEGIN IMMEDIATE``.

``BEGIN IMMEDIATE`` takes the write lock up front, so two writers queue on ``busy_timeout``
instead of deadlocking on a read-to-write upgrade; WAL lets readers go on meanwhile. With
``synchronous=FULL`` (the default) a committed enqueue survives a power cut; ``NORMAL`` is an
opt-in that can lose the last transactions on a crash of the machine (not of the process).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from hora.errors import (
    Conflict,
    HoraError,
    IdempotencyConflict,
    NotFound,
    StaleRecord,
    StoreError,
    TransitionConflict,
)
from hora.models import (
    WORKFLOW_FINAL,
    ApiKey,
    ApprovalRequest,
    ClaimedJob,
    HistoryEntry,
    IdempotencyRecord,
    Job,
    JobFilter,
    LockRecord,
    NewJob,
    Page,
    Schedule,
    Signal,
    Tenant,
    Tick,
    Workflow,
)
from hora.states import JobState
from hora.store import LeaseStatus, Outcome, PlanFn
from hora.store.common import (
    api_key_from_row,
    api_key_params,
    approval_cursor,
    approval_from_row,
    approval_params,
    attempt_from_row,
    consumed_entry,
    dumps,
    error_json,
    event_from_row,
    from_us,
    history_from_row,
    history_params,
    id_cursor,
    idempotency_from_row,
    job_from_row,
    keyset_page,
    lock_from_row,
    lock_params,
    parse_workflow_cursor,
    refuse_last_operator,
    replay_of,
    rescue_decision,
    schedule_from_row,
    schedule_params,
    signal_from_row,
    signal_params,
    tenant_cursor,
    tenant_from_row,
    tenant_params,
    tick_from_row,
    to_us,
    with_current_attempt,
    workflow_cursor,
    workflow_from_row,
    workflow_is_final,
    workflow_params,
)
from hora.store.queries import load_migrations, load_queries

Q = load_queries("sqlite")


class SQLiteStore:
    dialect = "sqlite"
    # One writer at a time is all SQLite allows; more threads would only wait on the lock.
    max_concurrency = 1

    def __init__(self, path: str, *, synchronous: str = "FULL", busy_timeout_ms: int = 30_000,
                 migrate: bool = True) -> None:
        if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError("synchronous must be FULL, NORMAL or EXTRA")
        if path == ":memory:":
            raise ValueError("use a file path (a temporary file is fast): every thread opens "
                             "its own connection and :memory: would give each its own database")
        self.path = os.path.abspath(path)
        self._synchronous = synchronous.upper()
        self._busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._write_lock = threading.RLock()
        self._closed = False
        if migrate:
            self.migrate()

    # -- connections and transactions -------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise StoreError("store is closed")
            try:
                conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                       timeout=self._busy_timeout_ms / 1000)
                conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
                self._enable_wal(conn)
                conn.execute(f"PRAGMA synchronous = {self._synchronous}")
                conn.execute("PRAGMA foreign_keys = ON")
                conn.execute("PRAGMA cache_size = -32000")
            except sqlite3.Error as e:
                raise StoreError(f"cannot open SQLite database {self.path}: {e}") from e
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    def _enable_wal(self, conn: sqlite3.Connection) -> None:
        """Switch to WAL, waiting out a concurrent first start: changing the journal mode
        needs the file to itself and SQLite answers "locked" at once instead of invoking the
        busy handler, so the wait is ours (bounded by busy_timeout)."""
        deadline = time.monotonic() + self._busy_timeout_ms / 1000
        pause = 0.005
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() >= deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.1)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        # Writers of this process queue on a lock first: SQLite's own busy handler waits in
        # coarse sleeps (up to 100 ms), which put a 100 ms tail on API writes under load;
        # the lock hands over at once. Other processes still meet on busy_timeout.
        with self._write_lock:
            conn = self._conn()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as e:
                raise StoreError(f"SQLite: cannot begin a write: {e}") from e
            try:
                yield conn
            except BaseException as e:
                conn.execute("ROLLBACK")
                if isinstance(e, sqlite3.Error):
                    raise StoreError(f"SQLite: {e}") from e
                raise
            else:
                try:
                    conn.execute("COMMIT")
                except sqlite3.Error as e:
                    conn.execute("ROLLBACK")
                    raise StoreError(f"SQLite: commit failed: {e}") from e

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        try:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")
        except HoraError:
            raise
        except sqlite3.Error as e:
            raise StoreError(f"SQLite: {e}") from e

    def close(self) -> None:
        self._closed = True
        with self._all_lock:
            conns, self._all = self._all, []
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()

    # -- migrations ---------------------------------------------------------------------------

    def migrate(self) -> list[int]:
        """Apply pending migrations in one transaction under SQLite's write lock."""
        applied: list[int] = []
        with self._write() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS hora_migrations (version INTEGER PRIMARY KEY, "
                "name TEXT NOT NULL, applied_at INTEGER NOT NULL)")
            done = {r[0] for r in conn.execute("SELECT version FROM hora_migrations")}
            for mig in load_migrations(self.dialect):
                if mig.version in done:
                    continue
                for stmt in _statements(mig.sql):
                    conn.execute(stmt)
                conn.execute("INSERT INTO hora_migrations VALUES (?, ?, ?)",
                             (mig.version, mig.name, to_us(datetime.now().astimezone())))
                applied.append(mig.version)
        return applied

    def applied_migrations(self) -> list[int]:
        with self._read() as conn:
            try:
                return [r[0] for r in conn.execute(
                    "SELECT version FROM hora_migrations ORDER BY version")]
            except sqlite3.OperationalError:
                return []

    # -- enqueue ------------------------------------------------------------------------------

    def insert_jobs(self, jobs: Sequence[NewJob], now: datetime) -> list[tuple[str, bool]]:
        with self._write() as conn:
            return _insert_jobs(conn, jobs, to_us(now))

    # -- the worker's moves -------------------------------------------------------------------

    def claim_jobs(self, *, owner: str, queues: Sequence[str], tasks: Sequence[str] | None,
                   now: datetime, lease_until: datetime, limit: int,
                   horizon: datetime | None = None, reserve_limit: int = 0,
                   ) -> tuple[list[ClaimedJob], list[ClaimedJob]]:
        queue_list = list(dict.fromkeys(queues))
        params: dict[str, Any] = {
            "owner": owner, "queues": json.dumps(queue_list),
            "tasks": None if tasks is None else json.dumps(list(tasks)),
            "now": to_us(now), "lease_until": to_us(lease_until), "limit": limit,
        }
        with self._write() as conn:
            started: list[ClaimedJob] = []
            if limit > 0 and queue_list:
                params.update({f"q{i}": q for i, q in enumerate(queue_list)})
                started = _claimed(conn.execute(_claim_sql(len(queue_list)), params).fetchall())
            reserved: list[ClaimedJob] = []
            if horizon is not None and reserve_limit > 0:
                params.update(horizon=to_us(horizon), limit=reserve_limit)
                reserved = _claimed(conn.execute(Q["reserve_upcoming"], params).fetchall())
        # RETURNING does not promise an order; hand them out as the queries chose them.
        started.sort(key=lambda j: (j.priority, j.due_at, j.id))
        reserved.sort(key=lambda j: (j.due_at, j.priority, j.id))
        return started, reserved

    def start_reserved(self, job_ids: Sequence[str], *, owner: str, now: datetime,
                       lease_until: datetime) -> list[str]:
        params = {"owner": owner, "now": to_us(now), "lease_until": to_us(lease_until)}
        out: list[str] = []
        with self._write() as conn:
            for job_id in job_ids:
                out.extend(r[0] for r in conn.execute(Q["start_reserved"],
                                                      {**params, "id": job_id}))
        return out

    def finish_jobs(self, outcomes: Sequence[Outcome], now: datetime) -> list[str]:
        if not outcomes:
            return []
        n = to_us(now)
        batch = json.dumps([_outcome_dict(o) for o in outcomes], separators=(",", ":"))
        with self._write() as conn:
            applied = [r[0] for r in conn.execute(Q["finish_jobs"], {"batch": batch, "now": n})]
            if applied:
                every = len(applied) == len(outcomes)
                conn.execute(Q["record_attempts"], {
                    "batch": batch, "now": n,
                    "applied": None if every else json.dumps(applied)})
        return applied

    def extend_leases(self, *, owner: str, now: datetime, lease_until: datetime) -> LeaseStatus:
        with self._write() as conn:
            rows = conn.execute(Q["extend_leases"],
                                {"owner": owner, "lease_until": to_us(lease_until)}).fetchall()
        return LeaseStatus(held=frozenset(r[0] for r in rows),
                           cancel_requested=frozenset(r[0] for r in rows if r[2]))

    def rescue_expired(self, now: datetime, limit: int = 500) -> list[str]:
        n = to_us(now)
        rescued: list[str] = []
        with self._write() as conn:
            rows = conn.execute(Q["expired_running"], {"now": n, "limit": limit}).fetchall()
            for job_id, attempt, max_attempts, owner, cancel in rows:
                state, reason, err = rescue_decision(attempt, max_attempts, owner,
                                                     bool(cancel))
                cur = conn.execute(Q["rescue_job"], {
                    "id": job_id, "attempt": attempt, "state": state, "now": n,
                    "error": dumps(err), "reason": reason})
                if cur.rowcount == 1:
                    rescued.append(job_id)
                    conn.execute(Q["record_attempt"], {
                        "id": job_id, "attempt": attempt, "worker_id": owner, "now": n,
                        "outcome": "lost", "error_type": err["type"],
                        "error_message": err["message"], "traceback": None})
        return rescued

    def release_jobs(self, outcomes: Sequence[Outcome], *, owner: str, now: datetime) -> int:
        n = to_us(now)
        count = 0
        with self._write() as conn:
            for o in outcomes:
                cur = conn.execute(Q["release_running"], {
                    "id": o.job_id, "owner": owner, "attempt": o.attempt, "now": n,
                    "reason": o.reason})
                if cur.rowcount == 1:
                    count += 1
                    conn.execute(Q["record_attempt"], _attempt_params(o, n))
            count += conn.execute(Q["release_reserved"], {"owner": owner}).rowcount
        return count

    def next_due_at(self, *, queues: Sequence[str], tasks: Sequence[str] | None,
                    now: datetime) -> datetime | None:
        with self._read() as conn:
            row = conn.execute(Q["next_due_at"], {
                "queues": json.dumps(list(queues)),
                "tasks": None if tasks is None else json.dumps(list(tasks)),
                "now": to_us(now)}).fetchone()
        return None if row is None or row[0] is None else from_us(row[0])

    # -- visibility and control ---------------------------------------------------------------

    def get_job(self, job_id: str, *, tenant_id: str, history: bool = True) -> Job:
        with self._read() as conn:
            return self._get_job(conn, job_id, tenant_id, history)

    def _get_job(self, conn: sqlite3.Connection, job_id: str, tenant_id: str,
                 history: bool) -> Job:
        rows = _rows(conn.execute(Q["get_job"], {"id": job_id, "tenant_id": tenant_id}))
        if not rows:
            raise NotFound(f"job {job_id} not found")
        if not history:
            return job_from_row(rows[0], from_us)
        attempts = tuple(attempt_from_row(r, from_us)
                         for r in conn.execute(Q["get_attempts"], {"id": job_id}))
        attempts = with_current_attempt(rows[0], attempts, from_us)
        events = tuple(event_from_row(r, from_us)
                       for r in conn.execute(Q["get_events"], {"id": job_id}))
        return job_from_row(rows[0], from_us, attempts=attempts, events=events, history=True)

    def list_jobs(self, flt: JobFilter, *, limit: int = 50, cursor: str | None = None,
                  ) -> Page[Job]:
        params = {
            "tenant_id": flt.tenant_id, "cursor": id_cursor(cursor),
            "states": None if flt.states is None else json.dumps([str(s) for s in flt.states]),
            "task": flt.task, "queue": flt.queue, "correlation_id": flt.correlation_id,
            "created_after": None if flt.created_after is None else to_us(flt.created_after),
            "created_before": None if flt.created_before is None else to_us(flt.created_before),
            "limit": limit + 1,
        }
        with self._read() as conn:
            jobs = [job_from_row(r, from_us) for r in _rows(conn.execute(Q["list_jobs"], params))]
        return keyset_page(jobs, limit, lambda j: j.id)

    def cancel_job(self, job_id: str, *, tenant_id: str, now: datetime, reason: str) -> Job:
        params = {"id": job_id, "tenant_id": tenant_id, "now": to_us(now), "reason": reason}
        with self._write() as conn:
            if (conn.execute(Q["cancel_waiting"], params).rowcount == 0
                    and conn.execute(Q["request_cancel"], params).rowcount == 0):
                job = self._get_job(conn, job_id, tenant_id, history=False)
                raise TransitionConflict(job_id, ("scheduled", "retrying", "running"),
                                         job.state)
            return self._get_job(conn, job_id, tenant_id, history=False)

    def replay_jobs(self, job_ids: Sequence[str], *, tenant_id: str, now: datetime,
                    ) -> list[Job]:
        n = to_us(now)
        created: list[Job] = []
        with self._write() as conn:
            for job_id in job_ids:
                old = self._get_job(conn, job_id, tenant_id, history=False)
                if old.state is not JobState.DEAD:
                    raise TransitionConflict(job_id, "dead", old.state)
                new = replay_of(old, now)
                conn.execute(Q["insert_job"], _insert_params(new, n))
                conn.execute(Q["mark_replayed"], {"id": job_id, "tenant_id": tenant_id,
                                                  "new_id": new.id, "now": n,
                                                  "reason": f"replayed as {new.id}"})
                created.append(self._get_job(conn, new.id, tenant_id, history=False))
        return created

    def discard_jobs(self, job_ids: Sequence[str], *, tenant_id: str, now: datetime,
                     ) -> list[str]:
        n = to_us(now)
        with self._write() as conn:
            for job_id in job_ids:
                cur = conn.execute(Q["discard_dead"], {"id": job_id, "tenant_id": tenant_id,
                                                       "now": n, "reason": "discarded"})
                if cur.rowcount == 0:
                    old = self._get_job(conn, job_id, tenant_id, history=False)
                    raise TransitionConflict(job_id, "dead", old.state)
        return list(job_ids)

    # -- schedules ----------------------------------------------------------------------------

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

    def subscribe(self) -> None:
        """SQLite has no channel between processes; workers elsewhere poll."""
        return None

    def count_jobs(self, *, tenant_id: str) -> dict[str, int]:
        with self._read() as conn:
            return dict(conn.execute(Q["count_by_state"], {"tenant_id": tenant_id}).fetchall())

    # -- tenants, API keys and HTTP idempotency records ---------------------------------------

    def insert_tenant(self, tenant: Tenant) -> Tenant:
        with self._write() as conn:
            if conn.execute(Q["insert_tenant"], tenant_params(tenant, to_us)).rowcount == 0:
                raise Conflict(f"tenant {tenant.id!r} already exists")
            return self._get_tenant(conn, tenant.id)

    def ensure_tenant(self, tenant: Tenant) -> Tenant:
        with self._write() as conn:
            conn.execute(Q["insert_tenant"], tenant_params(tenant, to_us))
            return self._get_tenant(conn, tenant.id)

    def _get_tenant(self, conn: sqlite3.Connection, tenant_id: str) -> Tenant:
        rows = _rows(conn.execute(Q["get_tenant"], {"id": tenant_id}))
        if not rows:
            raise NotFound(f"tenant {tenant_id!r} not found")
        return tenant_from_row(rows[0], from_us)

    def get_tenant(self, tenant_id: str) -> Tenant:
        with self._read() as conn:
            return self._get_tenant(conn, tenant_id)

    def list_tenants(self, *, limit: int = 50, cursor: str | None = None) -> Page[Tenant]:
        with self._read() as conn:
            rows = _rows(conn.execute(Q["list_tenants"], {"cursor": tenant_cursor(cursor),
                                                          "limit": limit + 1}))
        return keyset_page([tenant_from_row(r, from_us) for r in rows], limit, lambda t: t.id)

    def update_tenant(self, tenant: Tenant) -> Tenant:
        with self._write() as conn:
            if conn.execute(Q["update_tenant"], tenant_params(tenant, to_us)).rowcount == 0:
                raise NotFound(f"tenant {tenant.id!r} not found")
            return self._get_tenant(conn, tenant.id)

    def insert_api_key(self, key: ApiKey) -> ApiKey:
        with self._write() as conn:
            if conn.execute(Q["insert_api_key"], api_key_params(key, to_us)).rowcount == 0:
                raise Conflict(f"API key {key.id} (or one with its hash) already exists")
            return self._get_api_key(conn, key.id)

    def _get_api_key(self, conn: sqlite3.Connection, key_id: str) -> ApiKey:
        rows = _rows(conn.execute(Q["get_api_key"], {"id": key_id}))
        if not rows:
            raise NotFound(f"API key {key_id} not found")
        return api_key_from_row(rows[0], from_us)

    def api_key_by_hash(self, key_hash: str) -> ApiKey | None:
        with self._read() as conn:
            rows = _rows(conn.execute(Q["api_key_by_hash"], {"key_hash": key_hash}))
        return api_key_from_row(rows[0], from_us) if rows else None

    def list_api_keys(self, *, tenant_id: str | None = None, limit: int = 50,
                      cursor: str | None = None) -> Page[ApiKey]:
        with self._read() as conn:
            rows = _rows(conn.execute(Q["list_api_keys"], {
                "tenant_id": tenant_id, "cursor": id_cursor(cursor), "limit": limit + 1}))
        return keyset_page([api_key_from_row(r, from_us) for r in rows], limit,
                           lambda k: k.id)

    def get_api_key(self, key_id: str) -> ApiKey:
        with self._read() as conn:
            return self._get_api_key(conn, key_id)

    def revoke_api_key(self, key_id: str, *, now: datetime,
                       allow_last_operator: bool = False) -> ApiKey:
        with self._write() as conn:  # BEGIN IMMEDIATE: the check and the write are one step
            key = self._get_api_key(conn, key_id)
            if not allow_last_operator:
                others = _rows(conn.execute(Q["unrevoked_operator_keys"]))
                refuse_last_operator(key, (api_key_from_row(r, from_us) for r in others), now)
            conn.execute(Q["revoke_api_key"], {"id": key_id, "now": to_us(now)})
            return self._get_api_key(conn, key_id)

    def set_webhook_secret(self, tenant_id: str, secret: str, *, now: datetime) -> Tenant:
        with self._write() as conn:
            if conn.execute(Q["set_webhook_secret"], {
                    "id": tenant_id, "webhook_secret": secret, "now": to_us(now)}).rowcount == 0:
                raise NotFound(f"tenant {tenant_id!r} not found")
            return self._get_tenant(conn, tenant_id)

    def count_api_keys(self) -> int:
        with self._read() as conn:
            return int(conn.execute(Q["count_api_keys"]).fetchone()[0])

    def count_pending_jobs(self, tenant_id: str, *, limit: int) -> int:
        with self._read() as conn:
            return int(conn.execute(Q["count_pending_jobs"], {
                "tenant_id": tenant_id, "limit": limit}).fetchone()[0])

    def count_active_schedules(self, tenant_id: str, *, limit: int) -> int:
        with self._read() as conn:
            return int(conn.execute(Q["count_active_schedules"], {
                "tenant_id": tenant_id, "limit": limit}).fetchone()[0])

    def begin_idempotent(self, tenant_id: str, key: str, fingerprint: str, *, now: datetime,
                         expired_before: datetime, stuck_before: datetime,
                         ) -> IdempotencyRecord | None:
        """Claim or read, in one write transaction (BEGIN IMMEDIATE: one writer at a time)."""
        params = {"tenant_id": tenant_id, "key": key, "fingerprint": fingerprint,
                  "now": to_us(now), "expired_before": to_us(expired_before),
                  "stuck_before": to_us(stuck_before)}
        with self._write() as conn:
            if conn.execute(Q["claim_idempotent"], params).fetchall():
                return None
            rows = _rows(conn.execute(Q["get_idempotent"], params))
        if not rows:  # pragma: no cover - the conflict that refused the claim is this row
            raise StoreError(f"idempotency key {key!r} was neither claimed nor found")
        return idempotency_from_row(rows[0], from_us)

    def finish_idempotent(self, tenant_id: str, key: str, *, status: int, body: str) -> None:
        with self._write() as conn:
            conn.execute(Q["finish_idempotent"], {"tenant_id": tenant_id, "key": key,
                                                  "status": status, "body": body})

    def abort_idempotent(self, tenant_id: str, key: str) -> None:
        with self._write() as conn:
            conn.execute(Q["abort_idempotent"], {"tenant_id": tenant_id, "key": key})

    def purge_idempotent(self, before: datetime) -> int:
        with self._write() as conn:
            return conn.execute(Q["purge_idempotent"], {"before": to_us(before)}).rowcount


    # -- workflows ----------------------------------------------------------------------------

    def start_workflow(self, workflow: Workflow, job: NewJob) -> tuple[Workflow, bool]:
        with self._write() as conn:
            created = conn.execute(Q["insert_workflow"],
                                   workflow_params(workflow, to_us)).rowcount == 1
            if created:
                _insert_jobs(conn, [job], to_us(workflow.created_at))
            return self._get_workflow(conn, workflow.id, workflow.tenant_id), created

    def _get_workflow(self, conn: sqlite3.Connection, workflow_id: str,
                      tenant_id: str) -> Workflow:
        rows = _rows(conn.execute(Q["get_workflow"], {"id": workflow_id,
                                                      "tenant_id": tenant_id}))
        if not rows:
            raise NotFound(f"workflow {workflow_id} not found")
        return workflow_from_row(rows[0], from_us)

    def get_workflow(self, workflow_id: str, *, tenant_id: str) -> Workflow:
        with self._read() as conn:
            return self._get_workflow(conn, workflow_id, tenant_id)

    def list_workflows(self, *, tenant_id: str, states: Sequence[str] | None = None,
                       name: str | None = None, correlation_id: str | None = None,
                       wait_kind: str | None = None, parent_id: str | None = None,
                       limit: int = 50, cursor: str | None = None) -> Page[Workflow]:
        cursor_at, cursor_id = parse_workflow_cursor(cursor)
        with self._read() as conn:
            rows = _rows(conn.execute(Q["list_workflows"], {
                "tenant_id": tenant_id, "cursor_at": cursor_at, "cursor_id": cursor_id,
                "states": None if states is None else json.dumps(list(states)),
                "name": name, "correlation_id": correlation_id, "wait_kind": wait_kind,
                "parent_id": parent_id, "limit": limit + 1}))
        return keyset_page([workflow_from_row(r, from_us) for r in rows], limit,
                           workflow_cursor)

    def acquire_workflow(self, workflow_id: str, *, tenant_id: str, owner: str,
                         now: datetime, until: datetime,
                         replaces: str | None = None) -> Workflow | None:
        """None when refused; NotFound when there is no such workflow."""
        with self._write() as conn:
            rows = _rows(conn.execute(Q["acquire_workflow"], {
                "tenant_id": tenant_id, "id": workflow_id, "owner": owner,
                "now": to_us(now), "until": to_us(until), "replaces": replaces}))
            if not rows:
                self._get_workflow(conn, workflow_id, tenant_id)  # NotFound
                return None
        return workflow_from_row(rows[0], from_us)

    def load_history(self, workflow_id: str, *, tenant_id: str) -> list[HistoryEntry]:
        with self._read() as conn:
            rows = _rows(conn.execute(Q["load_history"], {"tenant_id": tenant_id,
                                                          "workflow_id": workflow_id}))
        return [history_from_row(r, from_us) for r in rows]

    def record_history(self, entries: Sequence[HistoryEntry], *, owner: str) -> None:
        """One statement per entry, each checking the lease (which cannot move while this
        transaction holds the write lock): the first refused raises and rolls back all."""
        if not entries:
            return
        with self._write() as conn:
            for e in entries:
                params = history_params(e, to_us)
                params["owner"] = owner
                if conn.execute(Q["record_history"], params).rowcount != 1:
                    raise _stale_run(e.workflow_id, owner)

    def consume_signal(self, entry: HistoryEntry, *, owner: str) -> Signal | None:
        params = {"tenant_id": entry.tenant_id, "workflow_id": entry.workflow_id,
                  "name": entry.name, "seq": entry.seq, "owner": owner}
        with self._write() as conn:
            rows = _rows(conn.execute(Q["take_signal"], params))
            if not rows:
                if conn.execute(Q["workflow_owned"], params).fetchone() is None:
                    raise _stale_run(entry.workflow_id, owner)
                return None
            signal = signal_from_row(rows[0], from_us)
            done = history_params(consumed_entry(entry, signal), to_us)
            done["owner"] = owner
            conn.execute(Q["record_history"], done)
        return signal

    def finish_run(self, workflow: Workflow, *, owner: str, jobs: Sequence[NewJob] = ()
                   ) -> Workflow:
        """``workflow.updated_at`` is the instant of the write (and the created_at of
        ``jobs``); cancel_requested and cancel_reason are left as stored."""
        params = workflow_params(workflow, to_us)
        params["owner"] = owner
        with self._write() as conn:
            rows = _rows(conn.execute(Q["finish_run"], params))
            if not rows:
                self._get_workflow(conn, workflow.id, workflow.tenant_id)  # NotFound
                raise _stale_run(workflow.id, owner)
            if workflow.state in WORKFLOW_FINAL:
                conn.execute(Q["cancel_workflow_approvals"], {
                    "tenant_id": workflow.tenant_id, "workflow_id": workflow.id,
                    "now": params["updated_at"]})
            _insert_jobs(conn, jobs, to_us(workflow.updated_at), skip_existing=True)
        return workflow_from_row(rows[0], from_us)

    def send_signal(self, signal: Signal, resume: NewJob) -> Signal:
        with self._write() as conn:
            current = self._get_workflow(conn, signal.workflow_id, signal.tenant_id)
            if current.is_final:
                raise workflow_is_final(current.id, current.state)
            try:
                rows = _rows(conn.execute(Q["insert_signal"], signal_params(signal, to_us)))
            except sqlite3.IntegrityError as e:
                if "hora_workflow_signals.id" in str(e):
                    raise Conflict(f"signal {signal.id} already exists") from None
                raise
            _insert_jobs(conn, [resume], to_us(signal.sent_at))
        return signal_from_row(rows[0], from_us)

    def list_signals(self, workflow_id: str, *, tenant_id: str) -> list[Signal]:
        with self._read() as conn:
            rows = _rows(conn.execute(Q["list_signals"], {"tenant_id": tenant_id,
                                                          "workflow_id": workflow_id}))
        return [signal_from_row(r, from_us) for r in rows]

    def request_workflow_cancel(self, workflow_id: str, *, tenant_id: str, reason: str,
                                now: datetime, resume: NewJob) -> Workflow:
        n = to_us(now)
        with self._write() as conn:
            rows = _rows(conn.execute(Q["request_workflow_cancel"], {
                "tenant_id": tenant_id, "id": workflow_id, "reason": reason, "now": n}))
            if not rows:
                current = self._get_workflow(conn, workflow_id, tenant_id)  # NotFound
                raise workflow_is_final(workflow_id, current.state)
            conn.execute(Q["cancel_workflow_approvals"], {
                "tenant_id": tenant_id, "workflow_id": workflow_id, "now": n})
            _insert_jobs(conn, [resume], n)
        return workflow_from_row(rows[0], from_us)

    # -- approval requests --------------------------------------------------------------------

    def open_approval(self, request: ApprovalRequest, entry: HistoryEntry, *, owner: str
                      ) -> ApprovalRequest:
        params = history_params(entry, to_us)
        params["owner"] = owner
        with self._write() as conn:
            if conn.execute(Q["record_history"], params).rowcount != 1:
                raise _stale_run(entry.workflow_id, owner)
            conn.execute(Q["insert_approval"], approval_params(request, to_us))
            rows = _rows(conn.execute(Q["approval_at"], {
                "tenant_id": request.tenant_id, "workflow_id": request.workflow_id,
                "seq": request.seq}))
        return approval_from_row(rows[0], from_us)

    def _get_approval(self, conn: sqlite3.Connection, approval_id: str,
                      tenant_id: str) -> ApprovalRequest:
        rows = _rows(conn.execute(Q["get_approval"], {"tenant_id": tenant_id,
                                                      "id": approval_id}))
        if not rows:
            raise NotFound(f"approval request {approval_id} not found")
        return approval_from_row(rows[0], from_us)

    def get_approval(self, approval_id: str, *, tenant_id: str) -> ApprovalRequest:
        with self._read() as conn:
            return self._get_approval(conn, approval_id, tenant_id)

    def list_approvals(self, *, tenant_id: str, states: Sequence[str] | None = None,
                       workflow_id: str | None = None, name: str | None = None,
                       limit: int = 50, cursor: str | None = None) -> Page[ApprovalRequest]:
        cursor_at, cursor_id = parse_workflow_cursor(cursor)
        with self._read() as conn:
            rows = _rows(conn.execute(Q["list_approvals"], {
                "tenant_id": tenant_id, "cursor_at": cursor_at, "cursor_id": cursor_id,
                "states": None if states is None else json.dumps(list(states)),
                "workflow_id": workflow_id, "name": name, "limit": limit + 1}))
        return keyset_page([approval_from_row(r, from_us) for r in rows], limit,
                           approval_cursor)

    def decide_approval(self, approval_id: str, *, tenant_id: str, state: str, actor: str,
                        actor_key: str | None, comment: str | None, now: datetime,
                        resume: NewJob) -> ApprovalRequest:
        n = to_us(now)
        with self._write() as conn:
            rows = _rows(conn.execute(Q["decide_approval"], {
                "tenant_id": tenant_id, "id": approval_id, "state": state,
                "decided_by": actor, "decided_by_key": actor_key, "comment": comment,
                "now": n}))
            if rows:
                _insert_jobs(conn, [resume], n, skip_existing=True)
                return approval_from_row(rows[0], from_us)
            conn.execute(Q["close_approval"], {"tenant_id": tenant_id, "id": approval_id,
                                               "state": "expired", "now": n})
            return self._get_approval(conn, approval_id, tenant_id)  # NotFound

    def close_approval(self, approval_id: str, *, tenant_id: str, state: str, now: datetime
                       ) -> ApprovalRequest:
        with self._write() as conn:
            conn.execute(Q["close_approval"], {"tenant_id": tenant_id, "id": approval_id,
                                               "state": state, "now": to_us(now)})
            return self._get_approval(conn, approval_id, tenant_id)


    # -- distributed locks --------------------------------------------------------------------

    def acquire_lock(self, tenant_id: str, name: str, *, owner: str, now: datetime,
                     expires_at: datetime) -> int | None:
        params = lock_params(tenant_id, name, to_us, owner=owner, now=now,
                             expires_at=expires_at)
        with self._write() as conn:
            row = conn.execute(Q["acquire_lock"], params).fetchone()
        return None if row is None else int(row[0])

    def renew_lock(self, tenant_id: str, name: str, *, owner: str, token: int, now: datetime,
                   expires_at: datetime) -> bool:
        params = lock_params(tenant_id, name, to_us, owner=owner, token=token, now=now,
                             expires_at=expires_at)
        with self._write() as conn:
            return conn.execute(Q["renew_lock"], params).rowcount == 1

    def release_lock(self, tenant_id: str, name: str, *, owner: str, token: int) -> bool:
        params = lock_params(tenant_id, name, to_us, owner=owner, token=token)
        with self._write() as conn:
            return conn.execute(Q["release_lock"], params).rowcount == 1

    def get_lock(self, tenant_id: str, name: str) -> LockRecord | None:
        with self._read() as conn:
            rows = _rows(conn.execute(Q["get_lock"], lock_params(tenant_id, name, to_us)))
        return lock_from_row(rows[0], from_us) if rows else None


# -- helpers shared by the methods above ------------------------------------------------------


def _insert_jobs(conn: sqlite3.Connection, jobs: Sequence[NewJob], now_us: int, *,
                 skip_existing: bool = False) -> list[tuple[str, bool]]:
    """Insert jobs in the caller's write transaction; per job (id, created). An existing
    idempotency key with the same fingerprint yields that job's id and False, a different one
    raises IdempotencyConflict; with ``skip_existing`` a job whose key exists is left out,
    whatever its fingerprint (and of the output)."""
    out: list[tuple[str, bool]] = []
    for job in jobs:
        cur = conn.execute(Q["insert_job"], _insert_params(job, now_us))
        if cur.rowcount == 1:
            out.append((job.id, True))
            continue
        if skip_existing:
            continue
        row = conn.execute(Q["job_by_idempotency_key"],
                           {"tenant_id": job.tenant_id, "key": job.idempotency_key},
                           ).fetchone()
        if row is None:  # pragma: no cover - the conflict target guarantees a row
            raise StoreError(f"insert of job {job.id} was ignored without a conflict")
        if row[1] != job.fingerprint:
            raise IdempotencyConflict(job.idempotency_key or "", row[0])
        out.append((row[0], False))
    return out


def _insert_params(job: NewJob, now_us: int) -> dict[str, Any]:
    return {
        "id": job.id, "tenant_id": job.tenant_id, "task": job.task, "payload": job.payload_json,
        "fingerprint": job.fingerprint, "queue": job.queue, "priority": job.priority,
        "due_at": to_us(job.due_at), "max_attempts": job.max_attempts,
        "retry_policy": job.retry_policy_json, "timeout": job.timeout,
        "idempotency_key": job.idempotency_key, "correlation_id": job.correlation_id,
        "replay_of": job.replay_of,
        "state_reason": f"replay of {job.replay_of}" if job.replay_of else None,
        "now": now_us, "schedule_id": job.schedule_id,
    }


def _stale_run(workflow_id: str, owner: str) -> StaleRecord:
    return StaleRecord(f"workflow {workflow_id}: {owner} no longer holds its run lease")


def _attempt_params(o: Outcome, now_us: int) -> dict[str, Any]:
    e = o.error
    return {"id": o.job_id, "attempt": o.attempt, "worker_id": o.owner, "now": now_us,
            "outcome": o.outcome,
            "error_type": e.type if e else None, "error_message": e.message if e else None,
            "traceback": e.traceback if e else None}


@functools.cache
def _claim_sql(queues: int) -> str:
    heads = " UNION ALL ".join(
        f"SELECT * FROM ({Q['due_in_queue'].replace(':queue', f':q{i}')})"
        for i in range(queues))
    return Q["claim_due"].replace("/*HEADS*/", heads)


def _outcome_dict(o: Outcome) -> dict[str, Any]:
    e = o.error
    return {"id": o.job_id, "attempt": o.attempt, "owner": o.owner, "state": o.state,
            "outcome": o.outcome, "due_at": None if o.due_at is None else to_us(o.due_at),
            "started_at": to_us(o.started_at),
            "result": o.result_json, "error": error_json(e), "reason": o.reason,
            "error_type": e.type if e else None, "error_message": e.message if e else None,
            "traceback": e.traceback if e else None}


def _claimed(rows: list[tuple[Any, ...]]) -> list[ClaimedJob]:
    loads = json.loads
    return [ClaimedJob(r[0], r[1], loads(r[2]), r[3], r[4],
                       None if r[5] is None else loads(r[5]), r[6], r[7], r[8], from_us(r[9]),
                       r[10]) for r in rows]


def _rows(cur: sqlite3.Cursor) -> list[dict[str, Any]]:
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _statements(script: str) -> Iterator[str]:
    """Split a migration into statements (``executescript`` would commit mid-transaction)."""
    buf: list[str] = []
    for line in script.splitlines(keepends=True):
        if not buf and (not line.strip() or line.lstrip().startswith("--")):
            continue
        buf.append(line)
        text = "".join(buf)
        if sqlite3.complete_statement(text):
            yield text.strip()
            buf = []
    if "".join(buf).strip():
        raise ValueError("migration ends in an incomplete statement")


__all__ = ["JobState", "SQLiteStore"]
