"""The shared store: PostgreSQL through a psycopg connection pool, for many workers on many nodes.

Writes run in READ COMMITTED transactions. Claiming takes rows with ``FOR UPDATE SKIP
LOCKED``, so concurrent workers split the due jobs between them instead of queueing on the
same rows; statements that touch several of one worker's rows lock them in id order first, so
a heartbeat and a batched finish from two threads of one worker never deadlock. A batch
(enqueue, finish, release, rescue) is one statement over parallel arrays, not one round trip
per job. Every session runs with ``TimeZone=UTC``, so instants come back as aware UTC
datetimes; a ``search_path`` given in the URL's ``options`` decides the schema, which is why
no query names one. How connections survive outages (timeouts, keepalives, checkout, the
one warning per outage) is ``hora.store.pg_connect``'s business.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from hora.errors import (
    Conflict,
    HoraError,
    IdempotencyConflict,
    NotFound,
    StaleRecord,
    StoreError,
    StoreUnavailable,
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
    with_current_attempt,
    workflow_cursor,
    workflow_from_row,
    workflow_is_final,
    workflow_params,
)
from hora.store.pg_connect import (
    Checkout,
    OutageLog,
    StallGuard,
    connect_params,
    open_pool,
    pool_timeout_from_env,
    store_error,
    wait_until_connected,
)
from hora.store.queries import load_migrations, load_queries

Q = load_queries("postgres")

#: The advisory lock ``migrate`` holds for its transaction: b"hora-mig" as a bigint.
MIGRATION_LOCK = int.from_bytes(b"hora-mig", "big")

Conn = psycopg.Connection[Any]


def _configure(conn: Conn) -> None:
    # The pool hands out autocommit connections; transactions are opened explicitly.
    conn.execute("SET TimeZone TO 'UTC'")


class PostgresStore:
    dialect = "postgres"
    # Row locks, not one file lock: a few threads per process keep the pool busy; more would
    # mostly wait for connections.
    max_concurrency = 4

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 8,
                 migrate: bool = True, pool_timeout: float | None = None) -> None:
        """``pool_timeout``: seconds a call waits for a pooled connection before failing
        with ``StoreUnavailable`` (default ``HORA_PG_POOL_TIMEOUT``, else 5)."""
        self._url = connect_params(url)
        if pool_timeout is None:
            pool_timeout = pool_timeout_from_env(os.environ.get("HORA_PG_POOL_TIMEOUT"))
        #: One warning when PostgreSQL becomes unreachable, one when it answers again.
        self.outage = OutageLog("PostgreSQL")
        try:
            self._pool: ConnectionPool[Conn] = open_pool(
                self._url, min_size=min_size, max_size=max_size, timeout=pool_timeout,
                configure=_configure, outage=self.outage)
        except psycopg.Error as e:
            raise StoreError(f"cannot open PostgreSQL pool: {e}") from e
        try:
            wait_until_connected(self._pool)
        except psycopg.Error as e:
            self._pool.close()
            cause = _why_not_connected(self._url) or e
            raise StoreError(f"cannot connect to PostgreSQL: {cause}") from cause
        self._guard = StallGuard(self._url)
        self._checkout = Checkout(self._pool, timeout=pool_timeout, outage=self.outage,
                                  guard=self._guard)
        if migrate:
            try:
                self.migrate()
            except BaseException:
                self.close()
                raise

    # -- connections and transactions -------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[Conn]:
        """One READ COMMITTED transaction; any failure rolls all of it back."""
        try:
            with self._checkout.connection() as conn, conn.transaction():
                yield conn
        except HoraError:
            raise
        except psycopg.errors.IntegrityError as e:
            if "illegal job state" in str(e):
                raise TransitionConflict("?", "a legal move", None) from e
            raise StoreError(f"PostgreSQL: {e}") from e
        except psycopg.Error as e:
            raise store_error(e) from e

    @contextmanager
    def _read(self, *, snapshot: bool = False) -> Iterator[Conn]:
        """A connection for reading: autocommit for one statement, or with ``snapshot`` a
        read-only REPEATABLE READ transaction, so several statements see the same data."""
        try:
            with self._checkout.connection() as conn:
                if not snapshot:
                    yield conn
                    return
                with conn.transaction():
                    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    yield conn
        except HoraError:
            raise
        except psycopg.Error as e:
            raise store_error(e) from e

    def close(self) -> None:
        self._guard.close()
        self._pool.close()

    # -- migrations ---------------------------------------------------------------------------

    def migrate(self) -> list[int]:
        """Apply pending migrations in one transaction under an advisory lock, so processes
        starting together apply each migration once."""
        applied: list[int] = []
        with self._write() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS hora_migrations (version integer PRIMARY KEY, "
                "name text NOT NULL, applied_at timestamptz NOT NULL)")
            done = {r[0] for r in conn.execute("SELECT version FROM hora_migrations")}
            for mig in load_migrations(self.dialect):
                if mig.version in done:
                    continue
                conn.execute(mig.sql.encode())  # no parameters: the whole script at once
                conn.execute("INSERT INTO hora_migrations VALUES (%s, %s, %s)",
                             (mig.version, mig.name, datetime.now(UTC)))
                applied.append(mig.version)
        return applied

    def applied_migrations(self) -> list[int]:
        with self._read(snapshot=True) as conn:
            row = conn.execute("SELECT to_regclass('hora_migrations') IS NOT NULL").fetchone()
            if row is None or not row[0]:
                return []
            return [r[0] for r in conn.execute(
                "SELECT version FROM hora_migrations ORDER BY version")]

    # -- enqueue ------------------------------------------------------------------------------

    def insert_jobs(self, jobs: Sequence[NewJob], now: datetime) -> list[tuple[str, bool]]:
        if not jobs:
            return []
        with self._write() as conn:
            return _insert_jobs(conn, jobs, now)

    # -- the worker's moves -------------------------------------------------------------------

    def claim_jobs(self, *, owner: str, queues: Sequence[str], tasks: Sequence[str] | None,
                   now: datetime, lease_until: datetime, limit: int,
                   horizon: datetime | None = None, reserve_limit: int = 0,
                   ) -> tuple[list[ClaimedJob], list[ClaimedJob]]:
        params: dict[str, Any] = {
            # each queue once: claim_due scans one index range per queue
            "owner": owner, "queues": list(dict.fromkeys(queues)),
            "tasks": None if tasks is None else list(tasks),
            "now": now, "lease_until": lease_until, "limit": limit,
        }
        reserve = horizon is not None and reserve_limit > 0
        if limit <= 0 and not reserve:
            return [], []
        with self._write() as conn:
            started = _claimed(conn.execute(Q["claim_due"], params)) if limit > 0 else []
            reserved: list[ClaimedJob] = []
            if reserve:
                params.update(horizon=horizon, limit=reserve_limit)
                reserved = _claimed(conn.execute(Q["reserve_upcoming"], params))
        # RETURNING does not promise an order; hand them out as the queries chose them.
        started.sort(key=lambda j: (j.priority, j.due_at, j.id))
        reserved.sort(key=lambda j: (j.due_at, j.priority, j.id))
        return started, reserved

    def start_reserved(self, job_ids: Sequence[str], *, owner: str, now: datetime,
                       lease_until: datetime) -> list[str]:
        if not job_ids:
            return []
        with self._write() as conn:
            started = {r[0] for r in conn.execute(Q["start_reserved"], {
                "ids": list(job_ids), "owner": owner, "now": now, "lease_until": lease_until})}
        # In the order asked for, each once, as when they are started one by one.
        return [job_id for job_id in dict.fromkeys(job_ids) if job_id in started]

    def finish_jobs(self, outcomes: Sequence[Outcome], now: datetime) -> list[str]:
        if not outcomes:
            return []
        params: dict[str, Any] = {
            "ids": [o.job_id for o in outcomes], "attempts": [o.attempt for o in outcomes],
            "owners": [o.owner for o in outcomes], "states": [o.state for o in outcomes],
            "due_ats": [o.due_at for o in outcomes],
            "results": [o.result_json for o in outcomes],
            "errors": [error_json(o.error) for o in outcomes],
            "reasons": [o.reason for o in outcomes], "now": now,
            **_attempt_params(outcomes),
        }
        with self._write() as conn:
            return [r[0] for r in conn.execute(Q["finish_jobs"], params)]

    def extend_leases(self, *, owner: str, now: datetime, lease_until: datetime) -> LeaseStatus:
        with self._write() as conn:
            rows = conn.execute(Q["extend_leases"],
                                {"owner": owner, "lease_until": lease_until}).fetchall()
        return LeaseStatus(held=frozenset(r[0] for r in rows),
                           cancel_requested=frozenset(r[0] for r in rows if r[2]))

    def rescue_expired(self, now: datetime, limit: int = 500) -> list[str]:
        with self._write() as conn:
            rows = conn.execute(Q["expired_running"], {"now": now, "limit": limit}).fetchall()
            if not rows:
                return []
            decisions = [rescue_decision(attempt, max_attempts, owner, bool(cancel))
                         for _, attempt, max_attempts, owner, cancel in rows]
            _announce(conn, {"*"})  # rescued jobs are due now, in whichever queue
            return [r[0] for r in conn.execute(Q["rescue_jobs"], {
                "ids": [r[0] for r in rows], "attempts": [r[1] for r in rows],
                "owners": [r[3] for r in rows],
                "states": [d[0] for d in decisions], "reasons": [d[1] for d in decisions],
                "errors": [dumps(d[2]) for d in decisions],
                "error_types": [d[2]["type"] for d in decisions],
                "error_messages": [d[2]["message"] for d in decisions],
                "now": now,
            })]

    def release_jobs(self, outcomes: Sequence[Outcome], *, owner: str, now: datetime) -> int:
        count = 0
        with self._write() as conn:
            if outcomes:
                row = conn.execute(Q["release_running"], {
                    "ids": [o.job_id for o in outcomes],
                    "attempts": [o.attempt for o in outcomes],
                    "owners": [o.owner for o in outcomes],
                    "reasons": [o.reason for o in outcomes], "owner": owner, "now": now,
                    **_attempt_params(outcomes),
                }).fetchone()
                count += 0 if row is None else int(row[0])
            count += conn.execute(Q["release_reserved"], {"owner": owner}).rowcount
        return count

    def next_due_at(self, *, queues: Sequence[str], tasks: Sequence[str] | None,
                    now: datetime) -> datetime | None:
        with self._read() as conn:
            row = conn.execute(Q["next_due_at"], {
                "queues": list(queues), "tasks": None if tasks is None else list(tasks),
                "now": now}).fetchone()
        return None if row is None or row[0] is None else _utc(row[0])

    # -- visibility and control ---------------------------------------------------------------

    def get_job(self, job_id: str, *, tenant_id: str, history: bool = True) -> Job:
        with self._read(snapshot=history) as conn:
            return self._get_job(conn, job_id, tenant_id, history)

    def _get_job(self, conn: Conn, job_id: str, tenant_id: str, history: bool) -> Job:
        with conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(Q["get_job"], {"id": job_id, "tenant_id": tenant_id}).fetchone()
        if row is None:
            raise NotFound(f"job {job_id} not found")
        if not history:
            return job_from_row(row, _utc, decoded=True)
        attempts = tuple(attempt_from_row(r, _utc)
                         for r in conn.execute(Q["get_attempts"], {"id": job_id}))
        attempts = with_current_attempt(row, attempts, _utc)
        events = tuple(event_from_row(r, _utc)
                       for r in conn.execute(Q["get_events"], {"id": job_id}))
        return job_from_row(row, _utc, decoded=True, attempts=attempts, events=events,
                            history=True)

    def list_jobs(self, flt: JobFilter, *, limit: int = 50, cursor: str | None = None,
                  ) -> Page[Job]:
        params = {
            "tenant_id": flt.tenant_id, "cursor": id_cursor(cursor),
            "states": None if flt.states is None else [str(s) for s in flt.states],
            "task": flt.task, "queue": flt.queue, "correlation_id": flt.correlation_id,
            "created_after": flt.created_after, "created_before": flt.created_before,
            "limit": limit + 1,
        }
        with self._read() as conn:
            jobs = _jobs(conn, Q["list_jobs"], params)
        return keyset_page(jobs, limit, lambda j: j.id)

    def cancel_job(self, job_id: str, *, tenant_id: str, now: datetime, reason: str) -> Job:
        params = {"id": job_id, "tenant_id": tenant_id, "now": now, "reason": reason}
        with self._write() as conn:
            if (conn.execute(Q["cancel_waiting"], params).rowcount == 0
                    and conn.execute(Q["request_cancel"], params).rowcount == 0):
                job = self._get_job(conn, job_id, tenant_id, history=False)
                raise TransitionConflict(job_id, ("scheduled", "retrying", "running"),
                                         job.state)
            return self._get_job(conn, job_id, tenant_id, history=False)

    def replay_jobs(self, job_ids: Sequence[str], *, tenant_id: str, now: datetime,
                    ) -> list[Job]:
        created: list[Job] = []
        with self._write() as conn:
            conn.execute(Q["lock_jobs"], {"ids": list(job_ids), "tenant_id": tenant_id})
            for job_id in job_ids:
                old = self._get_job(conn, job_id, tenant_id, history=False)
                if old.state is not JobState.DEAD:
                    raise TransitionConflict(job_id, "dead", old.state)
                new = replay_of(old, now)
                conn.execute(Q["insert_jobs"], _insert_params([new], now))
                cur = conn.execute(Q["mark_replayed"], {
                    "id": job_id, "tenant_id": tenant_id, "new_id": new.id, "now": now,
                    "reason": f"replayed as {new.id}"})
                if cur.rowcount != 1:  # pragma: no cover - the row is locked and was dead
                    raise TransitionConflict(job_id, "dead", None)
                created.append(self._get_job(conn, new.id, tenant_id, history=False))
            _announce(conn, {j.queue for j in created})
        return created

    def discard_jobs(self, job_ids: Sequence[str], *, tenant_id: str, now: datetime,
                     ) -> list[str]:
        with self._write() as conn:
            conn.execute(Q["lock_jobs"], {"ids": list(job_ids), "tenant_id": tenant_id})
            for job_id in job_ids:
                cur = conn.execute(Q["discard_dead"], {"id": job_id, "tenant_id": tenant_id,
                                                       "now": now, "reason": "discarded"})
                if cur.rowcount == 0:
                    old = self._get_job(conn, job_id, tenant_id, history=False)
                    raise TransitionConflict(job_id, "dead", old.state)
        return list(job_ids)

    # -- schedules ----------------------------------------------------------------------------

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

    def list_ticks(self, schedule_id: str, *, tenant_id: str, outcome: str | None = None,
                   limit: int = 100, cursor: datetime | None = None) -> Page[Tick]:
        with self._read(snapshot=True) as conn:
            self._get_schedule(conn, schedule_id, tenant_id)  # NotFound across tenants
            rows = conn.execute(Q["list_ticks"], {
                "schedule_id": schedule_id, "outcome": outcome, "limit": limit + 1,
                "cursor": cursor}).fetchall()
        ticks = [tick_from_row(r, _utc) for r in rows]
        return keyset_page(ticks, limit, lambda t: t.nominal.isoformat())

    def process_due_schedules(self, now: datetime, limit: int, plan: PlanFn) -> tuple[int, int]:
        """Lock up to ``limit`` due schedules (``FOR UPDATE SKIP LOCKED``: those another
        scheduler holds are left to it) and apply ``plan`` to each, in one transaction;
        returns (jobs fired, schedules processed).

        The jobs an overlap policy cancels are cancelled at the end, all locked in id order
        first, like every statement that locks several jobs (no deadlock with a worker's
        batched finish); each schedule's jobs are its own, so no later plan sees the
        difference."""
        fired = 0
        queues: set[str] = set()
        cancels: dict[str, tuple[str, str]] = {}  # job id -> (tenant, reason)
        with self._write() as conn:
            with conn.cursor(row_factory=dict_row) as cur:
                rows = cur.execute(Q["due_schedules"], {"now": now, "limit": limit}).fetchall()
            for r in rows:
                schedule = schedule_from_row(r, _utc, decoded=True)
                active = [(a, b) for a, b in conn.execute(
                    Q["unfinished_jobs_of_schedule"], {"schedule_id": schedule.id})]
                p = plan(schedule, active)
                reason = (f"cancelled by schedule {schedule.id}: "
                          "overlap policy cancel_previous")
                jobs = [t.job for t in p.ticks if t.job is not None]
                # As in SQLite, which cancels before it inserts: a cancel names only jobs
                # that existed before this plan, never one the plan itself fires.
                planned = {j.id for j in jobs}
                for cancel_id in p.cancel_job_ids:
                    if cancel_id not in planned:
                        cancels.setdefault(cancel_id, (schedule.tenant_id, reason))
                job_ids: dict[str, str] = {}  # planned id -> the id the tick records
                if jobs:
                    inserted = {row[0] for row in conn.execute(
                        Q["insert_jobs"], _insert_params(_insert_order(jobs), now))}
                    fired += len(inserted)
                    queues.update(j.queue for j in jobs if j.id in inserted)
                    job_ids = {j.id: j.id for j in jobs if j.id in inserted}
                    # Fired before (another scheduler): the same job, not a new one.
                    again = [j for j in jobs if j.id not in inserted]
                    if again:
                        existing = {(e[0], e[1]): e[2] for e in conn.execute(
                            Q["jobs_by_idempotency_key"],
                            {"tenant_ids": [j.tenant_id for j in again],
                             "keys": [j.idempotency_key for j in again]})}
                        for j in again:
                            found = existing.get((j.tenant_id, j.idempotency_key))
                            if found is None:  # pragma: no cover - the conflict guarantees it
                                raise StoreError(f"insert of job {j.id} was ignored without "
                                                 "a conflict")
                            job_ids[j.id] = found
                if p.ticks:
                    conn.execute(Q["insert_ticks"], {
                        "schedule_id": schedule.id, "now": now,
                        "nominals": [t.nominal for t in p.ticks],
                        "fire_ats": [t.fire_at for t in p.ticks],
                        "outcomes": [t.outcome for t in p.ticks],
                        "reasons": [t.reason for t in p.ticks],
                        "job_ids": [None if t.job is None else job_ids[t.job.id]
                                    for t in p.ticks]})
                conn.execute(Q["advance_schedule"], {
                    "id": schedule.id, "now": now, "cursor": p.cursor or schedule.cursor,
                    "next_fire_at": p.next_fire_at, "error": p.error})
            if cancels:
                ids = sorted(cancels)
                conn.execute(Q["lock_job_ids"], {"ids": ids})
                for cancel_id in ids:
                    tenant_id, reason = cancels[cancel_id]
                    params = {"id": cancel_id, "tenant_id": tenant_id, "now": now,
                              "reason": reason}
                    if conn.execute(Q["cancel_waiting"], params).rowcount == 0:
                        conn.execute(Q["request_cancel"], params)
            if queues:
                _announce(conn, queues)
        return fired, len(rows)

    def next_schedule_fire(self) -> datetime | None:
        with self._read() as conn:
            row = conn.execute(Q["next_schedule_fire"]).fetchone()
        return None if row is None or row[0] is None else _utc(row[0])

    def subscribe(self) -> PostgresSubscription:
        return PostgresSubscription(self._url, self.outage)

    def count_jobs(self, *, tenant_id: str) -> dict[str, int]:
        with self._read() as conn:
            rows = conn.execute(Q["count_by_state"], {"tenant_id": tenant_id}).fetchall()
        return {state: int(n) for state, n in rows}

    # -- tenants, API keys and HTTP idempotency records ---------------------------------------

    def insert_tenant(self, tenant: Tenant) -> Tenant:
        with self._write() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(Q["insert_tenant"], _tenant_params(tenant)).fetchone()
        if row is None:
            raise Conflict(f"tenant {tenant.id!r} already exists")
        return tenant_from_row(row, _utc)

    def ensure_tenant(self, tenant: Tenant) -> Tenant:
        with self._write() as conn:
            with conn.cursor(row_factory=dict_row) as cur:
                row = cur.execute(Q["insert_tenant"], _tenant_params(tenant)).fetchone()
            # Inserted, or (READ COMMITTED) this statement sees the row that stood in the way.
            return tenant_from_row(row, _utc) if row else self._get_tenant(conn, tenant.id)

    def _get_tenant(self, conn: Conn, tenant_id: str) -> Tenant:
        with conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(Q["get_tenant"], {"id": tenant_id}).fetchone()
        if row is None:
            raise NotFound(f"tenant {tenant_id!r} not found")
        return tenant_from_row(row, _utc)

    def get_tenant(self, tenant_id: str) -> Tenant:
        with self._read() as conn:
            return self._get_tenant(conn, tenant_id)

    def list_tenants(self, *, limit: int = 50, cursor: str | None = None) -> Page[Tenant]:
        with self._read() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(Q["list_tenants"], {"cursor": tenant_cursor(cursor),
                                                   "limit": limit + 1}).fetchall()
        return keyset_page([tenant_from_row(r, _utc) for r in rows], limit, lambda t: t.id)

    def update_tenant(self, tenant: Tenant) -> Tenant:
        with self._write() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(Q["update_tenant"], _tenant_params(tenant)).fetchone()
        if row is None:
            raise NotFound(f"tenant {tenant.id!r} not found")
        return tenant_from_row(row, _utc)

    def insert_api_key(self, key: ApiKey) -> ApiKey:
        with self._write() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(Q["insert_api_key"],
                              api_key_params(key, _utc, encode_json=False)).fetchone()
        if row is None:
            raise Conflict(f"API key {key.id} (or one with its hash) already exists")
        return api_key_from_row(row, _utc, decoded=True)

    def api_key_by_hash(self, key_hash: str) -> ApiKey | None:
        with self._read() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(Q["api_key_by_hash"], {"key_hash": key_hash}).fetchone()
        return None if row is None else api_key_from_row(row, _utc, decoded=True)

    def list_api_keys(self, *, tenant_id: str | None = None, limit: int = 50,
                      cursor: str | None = None) -> Page[ApiKey]:
        with self._read() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(Q["list_api_keys"], {
                "tenant_id": tenant_id, "cursor": id_cursor(cursor),
                "limit": limit + 1}).fetchall()
        return keyset_page([api_key_from_row(r, _utc, decoded=True) for r in rows], limit,
                           lambda k: k.id)

    def get_api_key(self, key_id: str) -> ApiKey:
        with self._read() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(Q["get_api_key"], {"id": key_id}).fetchone()
        if row is None:
            raise NotFound(f"API key {key_id} not found")
        return api_key_from_row(row, _utc, decoded=True)

    def revoke_api_key(self, key_id: str, *, now: datetime,
                       allow_last_operator: bool = False) -> ApiKey:
        with self._write() as conn, conn.cursor(row_factory=dict_row) as cur:
            if not allow_last_operator:
                # Lock the operator keys first, then read the key: a racing revocation of
                # another operator key is seen once its lock is released.
                operators = [api_key_from_row(r, _utc, decoded=True) for r in
                             cur.execute(Q["unrevoked_operator_keys"]).fetchall()]
                row = cur.execute(Q["get_api_key"], {"id": key_id}).fetchone()
                if row is None:
                    raise NotFound(f"API key {key_id} not found")
                refuse_last_operator(api_key_from_row(row, _utc, decoded=True), operators, now)
            row = cur.execute(Q["revoke_api_key"], {"id": key_id, "now": now}).fetchone()
        if row is None:
            raise NotFound(f"API key {key_id} not found")
        return api_key_from_row(row, _utc, decoded=True)

    def set_webhook_secret(self, tenant_id: str, secret: str, *, now: datetime) -> Tenant:
        with self._write() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(Q["set_webhook_secret"], {
                "id": tenant_id, "webhook_secret": secret, "now": now}).fetchone()
        if row is None:
            raise NotFound(f"tenant {tenant_id!r} not found")
        return tenant_from_row(row, _utc)

    def count_api_keys(self) -> int:
        return self._count(Q["count_api_keys"], {})

    def count_pending_jobs(self, tenant_id: str, *, limit: int) -> int:
        return self._count(Q["count_pending_jobs"], {"tenant_id": tenant_id, "limit": limit})

    def count_active_schedules(self, tenant_id: str, *, limit: int) -> int:
        return self._count(Q["count_active_schedules"],
                           {"tenant_id": tenant_id, "limit": limit})

    def _count(self, query: str, params: dict[str, Any]) -> int:
        with self._read() as conn:
            row = conn.execute(query, params).fetchone()
        return 0 if row is None else int(row[0])

    def begin_idempotent(self, tenant_id: str, key: str, fingerprint: str, *, now: datetime,
                         expired_before: datetime, stuck_before: datetime,
                         ) -> IdempotencyRecord | None:
        """Claim or read, in one transaction. The claim is one INSERT ... ON CONFLICT DO
        UPDATE ... WHERE: of two concurrent requests with one key, the second waits for the
        first's row and then finds it taken, so only one is told to go ahead."""
        params = {"tenant_id": tenant_id, "key": key, "fingerprint": fingerprint, "now": now,
                  "expired_before": expired_before, "stuck_before": stuck_before}
        with self._write() as conn:
            if conn.execute(Q["claim_idempotent"], params).fetchone() is not None:
                return None
            # The refused upsert locked the row that stood in the way: it is still there.
            with conn.cursor(row_factory=dict_row) as cur:
                row = cur.execute(Q["get_idempotent"], params).fetchone()
        if row is None:  # pragma: no cover - see above
            raise StoreError(f"idempotency key {key!r} was neither claimed nor found")
        return idempotency_from_row(row, _utc)

    def finish_idempotent(self, tenant_id: str, key: str, *, status: int, body: str) -> None:
        with self._write() as conn:
            conn.execute(Q["finish_idempotent"], {"tenant_id": tenant_id, "key": key,
                                                  "status": status, "body": body})

    def abort_idempotent(self, tenant_id: str, key: str) -> None:
        with self._write() as conn:
            conn.execute(Q["abort_idempotent"], {"tenant_id": tenant_id, "key": key})

    def purge_idempotent(self, before: datetime) -> int:
        with self._write() as conn:
            return conn.execute(Q["purge_idempotent"], {"before": before}).rowcount


    # -- workflows ----------------------------------------------------------------------------

    @contextmanager
    def _statement(self) -> Iterator[Conn]:
        """A connection for one writing statement, which PostgreSQL runs as a transaction of
        its own: one round trip instead of three (BEGIN, the statement, COMMIT)."""
        try:
            with self._checkout.connection() as conn:
                yield conn
        except HoraError:
            raise
        except psycopg.Error as e:
            raise store_error(e) from e

    def start_workflow(self, workflow: Workflow, job: NewJob) -> tuple[Workflow, bool]:
        with self._write() as conn:
            with conn.cursor(row_factory=dict_row) as cur:
                row = cur.execute(Q["insert_workflow"],
                                  workflow_params(workflow, _utc)).fetchone()
            if row is None:
                # READ COMMITTED: this statement sees the row that stood in the way.
                return self._get_workflow(conn, workflow.id, workflow.tenant_id), False
            _insert_jobs(conn, [job], workflow.created_at)
        return workflow_from_row(row, _utc, decoded=True), True

    def _get_workflow(self, conn: Conn, workflow_id: str, tenant_id: str) -> Workflow:
        with conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(Q["get_workflow"], {"id": workflow_id,
                                                  "tenant_id": tenant_id}).fetchone()
        if row is None:
            raise NotFound(f"workflow {workflow_id} not found")
        return workflow_from_row(row, _utc, decoded=True)

    def get_workflow(self, workflow_id: str, *, tenant_id: str) -> Workflow:
        with self._read() as conn:
            return self._get_workflow(conn, workflow_id, tenant_id)

    def list_workflows(self, *, tenant_id: str, states: Sequence[str] | None = None,
                       name: str | None = None, correlation_id: str | None = None,
                       wait_kind: str | None = None, parent_id: str | None = None,
                       limit: int = 50, cursor: str | None = None) -> Page[Workflow]:
        cursor_us, cursor_id = parse_workflow_cursor(cursor)
        with self._read() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(Q["list_workflows"], {
                "tenant_id": tenant_id,
                "cursor_at": None if cursor_us is None else from_us(cursor_us),
                "cursor_id": cursor_id, "states": None if states is None else list(states),
                "name": name, "correlation_id": correlation_id, "wait_kind": wait_kind,
                "parent_id": parent_id, "limit": limit + 1}).fetchall()
        return keyset_page([workflow_from_row(r, _utc, decoded=True) for r in rows], limit,
                           workflow_cursor)

    def acquire_workflow(self, workflow_id: str, *, tenant_id: str, owner: str,
                         now: datetime, until: datetime,
                         replaces: str | None = None) -> Workflow | None:
        """None when refused; NotFound when there is no such workflow."""
        with self._statement() as conn:
            with conn.cursor(row_factory=dict_row) as cur:
                row = cur.execute(Q["acquire_workflow"], {
                    "tenant_id": tenant_id, "id": workflow_id, "owner": owner, "now": now,
                    "until": until, "replaces": replaces}).fetchone()
            if row is None:
                self._get_workflow(conn, workflow_id, tenant_id)  # NotFound
                return None
        return workflow_from_row(row, _utc, decoded=True)

    def load_history(self, workflow_id: str, *, tenant_id: str) -> list[HistoryEntry]:
        with self._read() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(Q["load_history"], {"tenant_id": tenant_id,
                                                   "workflow_id": workflow_id}).fetchall()
        return [history_from_row(r, _utc, decoded=True) for r in rows]

    def record_history(self, entries: Sequence[HistoryEntry], *, owner: str) -> None:
        """One statement per workflow (its own transaction when there is one workflow, the
        usual case: a single round trip per journaled step)."""
        if not entries:
            return
        groups = _by_workflow(entries)
        if len(groups) == 1:
            with self._statement() as conn:
                _record_history(conn, entries, owner)
            return
        with self._write() as conn:
            for group in groups:
                _record_history(conn, group, owner)

    def consume_signal(self, entry: HistoryEntry, *, owner: str) -> Signal | None:
        params = {"tenant_id": entry.tenant_id, "workflow_id": entry.workflow_id,
                  "name": entry.name, "seq": entry.seq, "owner": owner}
        with self._write() as conn:
            with conn.cursor(row_factory=dict_row) as cur:
                row = cur.execute(Q["take_signal"], params).fetchone()
            if row is None:
                if conn.execute(Q["workflow_owned"], params).fetchone() is None:
                    raise _stale_run(entry.workflow_id, owner)
                return None
            signal = signal_from_row(row, _utc, decoded=True)
            _record_history(conn, [consumed_entry(entry, signal)], owner)
        return signal

    def finish_run(self, workflow: Workflow, *, owner: str, jobs: Sequence[NewJob] = ()
                   ) -> Workflow:
        """``workflow.updated_at`` is the instant of the write (and the created_at of
        ``jobs``); cancel_requested and cancel_reason are left as stored."""
        params = workflow_params(workflow, _utc)
        params["owner"] = owner
        with self._write() as conn:
            with conn.cursor(row_factory=dict_row) as cur:
                row = cur.execute(Q["finish_run"], params).fetchone()
            if row is None:
                self._get_workflow(conn, workflow.id, workflow.tenant_id)  # NotFound
                raise _stale_run(workflow.id, owner)
            if workflow.state in WORKFLOW_FINAL:
                conn.execute(Q["cancel_workflow_approvals"], {
                    "tenant_id": workflow.tenant_id, "workflow_id": workflow.id,
                    "now": workflow.updated_at})
            _insert_jobs(conn, jobs, workflow.updated_at, skip_existing=True)
        return workflow_from_row(row, _utc, decoded=True)

    def send_signal(self, signal: Signal, resume: NewJob) -> Signal:
        with self._write() as conn:
            found = conn.execute(Q["workflow_state_for_signal"], {
                "tenant_id": signal.tenant_id, "workflow_id": signal.workflow_id}).fetchone()
            if found is None:
                raise NotFound(f"workflow {signal.workflow_id} not found")
            if found[0] in WORKFLOW_FINAL:
                raise workflow_is_final(signal.workflow_id, found[0])
            with conn.cursor(row_factory=dict_row) as cur:
                try:
                    row = cur.execute(Q["insert_signal"],
                                      signal_params(signal, _utc)).fetchone()
                except psycopg.errors.UniqueViolation:
                    raise Conflict(f"signal {signal.id} already exists") from None
            if row is None:  # pragma: no cover - INSERT ... RETURNING always returns the row
                raise StoreError(f"insert of signal {signal.id} returned nothing")
            _insert_jobs(conn, [resume], signal.sent_at)
        return signal_from_row(row, _utc, decoded=True)

    def list_signals(self, workflow_id: str, *, tenant_id: str) -> list[Signal]:
        with self._read() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(Q["list_signals"], {"tenant_id": tenant_id,
                                                   "workflow_id": workflow_id}).fetchall()
        return [signal_from_row(r, _utc, decoded=True) for r in rows]

    def request_workflow_cancel(self, workflow_id: str, *, tenant_id: str, reason: str,
                                now: datetime, resume: NewJob) -> Workflow:
        with self._write() as conn:
            with conn.cursor(row_factory=dict_row) as cur:
                row = cur.execute(Q["request_workflow_cancel"], {
                    "tenant_id": tenant_id, "id": workflow_id, "reason": reason,
                    "now": now}).fetchone()
            if row is None:
                current = self._get_workflow(conn, workflow_id, tenant_id)  # NotFound
                raise workflow_is_final(workflow_id, current.state)
            conn.execute(Q["cancel_workflow_approvals"], {
                "tenant_id": tenant_id, "workflow_id": workflow_id, "now": now})
            _insert_jobs(conn, [resume], now)
        return workflow_from_row(row, _utc, decoded=True)

    # -- approval requests --------------------------------------------------------------------

    def open_approval(self, request: ApprovalRequest, entry: HistoryEntry, *, owner: str
                      ) -> ApprovalRequest:
        with self._write() as conn:
            _record_history(conn, [entry], owner)  # StaleRecord unless owner holds the run
            conn.execute(Q["insert_approval"], approval_params(request, _utc))
            with conn.cursor(row_factory=dict_row) as cur:
                row = cur.execute(Q["approval_at"], {
                    "tenant_id": request.tenant_id, "workflow_id": request.workflow_id,
                    "seq": request.seq}).fetchone()
        if row is None:  # pragma: no cover - inserted or found in this transaction
            raise StoreError(f"approval request at {request.workflow_id}#{request.seq} "
                             "vanished")
        return approval_from_row(row, _utc, decoded=True)

    def _get_approval(self, conn: Conn, approval_id: str, tenant_id: str) -> ApprovalRequest:
        with conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(Q["get_approval"], {"tenant_id": tenant_id,
                                                  "id": approval_id}).fetchone()
        if row is None:
            raise NotFound(f"approval request {approval_id} not found")
        return approval_from_row(row, _utc, decoded=True)

    def get_approval(self, approval_id: str, *, tenant_id: str) -> ApprovalRequest:
        with self._read() as conn:
            return self._get_approval(conn, approval_id, tenant_id)

    def list_approvals(self, *, tenant_id: str, states: Sequence[str] | None = None,
                       workflow_id: str | None = None, name: str | None = None,
                       limit: int = 50, cursor: str | None = None) -> Page[ApprovalRequest]:
        cursor_us, cursor_id = parse_workflow_cursor(cursor)
        with self._read() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(Q["list_approvals"], {
                "tenant_id": tenant_id,
                "cursor_at": None if cursor_us is None else from_us(cursor_us),
                "cursor_id": cursor_id, "states": None if states is None else list(states),
                "workflow_id": workflow_id, "name": name, "limit": limit + 1}).fetchall()
        return keyset_page([approval_from_row(r, _utc, decoded=True) for r in rows], limit,
                           approval_cursor)

    def decide_approval(self, approval_id: str, *, tenant_id: str, state: str, actor: str,
                        actor_key: str | None, comment: str | None, now: datetime,
                        resume: NewJob) -> ApprovalRequest:
        with self._write() as conn:
            with conn.cursor(row_factory=dict_row) as cur:
                row = cur.execute(Q["decide_approval"], {
                    "tenant_id": tenant_id, "id": approval_id, "state": state,
                    "decided_by": actor, "decided_by_key": actor_key, "comment": comment,
                    "now": now}).fetchone()
            if row is not None:
                _insert_jobs(conn, [resume], now, skip_existing=True)
                return approval_from_row(row, _utc, decoded=True)
            conn.execute(Q["close_approval"], {"tenant_id": tenant_id, "id": approval_id,
                                               "state": "expired", "now": now})
            return self._get_approval(conn, approval_id, tenant_id)  # NotFound

    def close_approval(self, approval_id: str, *, tenant_id: str, state: str, now: datetime
                       ) -> ApprovalRequest:
        with self._write() as conn:
            conn.execute(Q["close_approval"], {"tenant_id": tenant_id, "id": approval_id,
                                               "state": state, "now": now})
            return self._get_approval(conn, approval_id, tenant_id)


    # -- distributed locks --------------------------------------------------------------------

    def acquire_lock(self, tenant_id: str, name: str, *, owner: str, now: datetime,
                     expires_at: datetime) -> int | None:
        """One INSERT ... ON CONFLICT DO UPDATE ... WHERE, its own transaction: of concurrent
        acquirers of a free lock exactly one gets a token (see the query)."""
        params = lock_params(tenant_id, name, _utc, owner=owner, now=now,
                             expires_at=expires_at)
        with self._statement() as conn:
            row = conn.execute(Q["acquire_lock"], params).fetchone()
        return None if row is None else int(row[0])

    def renew_lock(self, tenant_id: str, name: str, *, owner: str, token: int, now: datetime,
                   expires_at: datetime) -> bool:
        params = lock_params(tenant_id, name, _utc, owner=owner, token=token, now=now,
                             expires_at=expires_at)
        with self._statement() as conn:
            return conn.execute(Q["renew_lock"], params).rowcount == 1

    def release_lock(self, tenant_id: str, name: str, *, owner: str, token: int) -> bool:
        params = lock_params(tenant_id, name, _utc, owner=owner, token=token)
        with self._statement() as conn:
            return conn.execute(Q["release_lock"], params).rowcount == 1

    def get_lock(self, tenant_id: str, name: str) -> LockRecord | None:
        with self._read() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(Q["get_lock"], lock_params(tenant_id, name, _utc)).fetchone()
        return None if row is None else lock_from_row(row, _utc)


# -- helpers shared by the methods above ------------------------------------------------------


CHANNEL = "hora_jobs"


def _announce(conn: Conn, queues: set[str]) -> None:
    """Tell listening workers (delivered at commit; PostgreSQL folds duplicates)."""
    for queue in sorted(queues):
        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, queue))


class PostgresSubscription:
    """LISTEN on a dedicated connection, so a job enqueued by any process wakes idle workers
    at once instead of at their next poll. Reconnects lazily after a failure; the worker's
    poll is the fallback meanwhile, so a lost notification costs latency, never a job. Its
    failures and recovery count in the store's outage log like any other call's."""

    def __init__(self, conninfo: str, outage: OutageLog) -> None:
        self._url = conninfo
        self._outage = outage
        self._conn: Conn | None = None

    def _connect(self) -> Conn:
        if self._conn is None or self._conn.closed:
            conn: Conn = psycopg.connect(self._url, autocommit=True)
            conn.execute(f"LISTEN {CHANNEL}")
            self._conn = conn
            self._outage.ok()
        return self._conn

    def wait(self, timeout: float) -> set[str]:
        try:
            conn = self._connect()
            got = {n.payload for n in conn.notifies(timeout=timeout, stop_after=1)}
        except psycopg.Error as e:
            self.close()
            err = store_error(e)
            if isinstance(err, StoreUnavailable):
                self._outage.fail(e)
            raise type(err)(f"notification channel: {err}") from e
        if got:  # a quiet wait proves nothing: the server may be out of reach
            self._outage.ok()
        return got

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None


def _why_not_connected(url: str) -> psycopg.Error | None:
    """The pool only says it timed out; one direct attempt says why (refused, bad password)."""
    try:
        psycopg.connect(url).close()
    except psycopg.Error as e:
        return e
    return None


def _utc(value: datetime) -> datetime:
    """Instants as aware UTC datetimes, whatever zone the session returned them in."""
    return value.astimezone(UTC)


def _insert_order(jobs: Sequence[NewJob]) -> list[NewJob]:
    """Keyless jobs first, then keyed ones by (tenant, key, position): concurrent batches then
    wait on one another's keys in one order (no deadlock), and of two jobs in a batch with one
    key the earlier is inserted, as when jobs are inserted one by one."""

    def rank(i: int) -> tuple[bool, str, str, int]:
        job = jobs[i]
        if job.idempotency_key is None:
            return False, "", "", i
        return True, job.tenant_id, job.idempotency_key, i

    return [jobs[i] for i in sorted(range(len(jobs)), key=rank)]


def _insert_params(jobs: Sequence[NewJob], now: datetime) -> dict[str, Any]:
    return {
        "ids": [j.id for j in jobs], "tenant_ids": [j.tenant_id for j in jobs],
        "tasks": [j.task for j in jobs], "payloads": [j.payload_json for j in jobs],
        "fingerprints": [j.fingerprint for j in jobs], "queues": [j.queue for j in jobs],
        "priorities": [j.priority for j in jobs], "due_ats": [j.due_at for j in jobs],
        "max_attempts": [j.max_attempts for j in jobs],
        "retry_policies": [j.retry_policy_json for j in jobs],
        # float(): an int timeout next to a float one would make a list of mixed types.
        "timeouts": [None if j.timeout is None else float(j.timeout) for j in jobs],
        "idempotency_keys": [j.idempotency_key for j in jobs],
        "correlation_ids": [j.correlation_id for j in jobs],
        "replay_ofs": [j.replay_of for j in jobs],
        "state_reasons": [f"replay of {j.replay_of}" if j.replay_of else None for j in jobs],
        "schedule_ids": [j.schedule_id for j in jobs],
        "now": now,
    }


def _insert_jobs(conn: Conn, jobs: Sequence[NewJob], now: datetime, *,
                 skip_existing: bool = False) -> list[tuple[str, bool]]:
    """Insert jobs in the caller's transaction, one statement, and announce the queues of
    those inserted; per job (id, created). An existing idempotency key with the same
    fingerprint yields that job's id and False, a different one raises IdempotencyConflict;
    with ``skip_existing`` a job whose key exists is left out, whatever its fingerprint (and
    of the output)."""
    if not jobs:
        return []
    inserted = {r[0] for r in conn.execute(
        Q["insert_jobs"], _insert_params(_insert_order(jobs), now))}
    _announce(conn, {j.queue for j in jobs if j.id in inserted})
    if len(inserted) == len(jobs):
        return [(job.id, True) for job in jobs]
    if skip_existing:
        return [(job.id, True) for job in jobs if job.id in inserted]
    keyed = [job for job in jobs if job.id not in inserted]
    existing = {(r[0], r[1]): (r[2], r[3]) for r in conn.execute(
        Q["jobs_by_idempotency_key"],
        {"tenant_ids": [j.tenant_id for j in keyed],
         "keys": [j.idempotency_key for j in keyed]})}
    out: list[tuple[str, bool]] = []
    for job in jobs:
        if job.id in inserted:
            out.append((job.id, True))
            continue
        found = existing.get((job.tenant_id, job.idempotency_key))
        if found is None:  # pragma: no cover - the conflict target guarantees a row
            raise StoreError(f"insert of job {job.id} was ignored without a conflict")
        if found[1] != job.fingerprint:
            raise IdempotencyConflict(job.idempotency_key or "", found[0])
        out.append((found[0], False))
    return out


def _stale_run(workflow_id: str, owner: str) -> StaleRecord:
    return StaleRecord(f"workflow {workflow_id}: {owner} no longer holds its run lease")


def _history_params(entries: Sequence[HistoryEntry], owner: str) -> dict[str, Any]:
    """One workflow's journal rows as parallel arrays (the last of a repeated seq wins, as
    when they are written one by one)."""
    rows = list({e.seq: history_params(e, _utc) for e in entries}.values())
    first = entries[0]
    return {
        "tenant_id": first.tenant_id, "workflow_id": first.workflow_id, "owner": owner,
        "seqs": [r["seq"] for r in rows], "kinds": [r["kind"] for r in rows],
        "names": [r["name"] for r in rows], "inputs": [r["input"] for r in rows],
        "outputs": [r["output"] for r in rows], "errors": [r["error"] for r in rows],
        "statuses": [r["status"] for r in rows], "attempts": [r["attempts"] for r in rows],
        "started_ats": [r["started_at"] for r in rows],
        "finished_ats": [r["finished_at"] for r in rows],
        "deadlines": [r["deadline"] for r in rows],
    }


def _record_history(conn: Conn, entries: Sequence[HistoryEntry], owner: str) -> None:
    """Write one workflow's entries (one statement) or raise StaleRecord having written
    none."""
    params = _history_params(entries, owner)
    if conn.execute(Q["record_history"], params).rowcount != len(params["seqs"]):
        raise _stale_run(entries[0].workflow_id, owner)


def _by_workflow(entries: Sequence[HistoryEntry]) -> list[list[HistoryEntry]]:
    groups: dict[tuple[str, str], list[HistoryEntry]] = {}
    for e in entries:
        groups.setdefault((e.tenant_id, e.workflow_id), []).append(e)
    return list(groups.values())


def _schedule_params(schedule: Schedule) -> dict[str, Any]:
    params = schedule_params(schedule, _utc)
    # float(): misfire_grace and timeout are double precision, whatever number type arrives.
    params["misfire_grace"] = float(schedule.misfire_grace)
    params["timeout"] = None if schedule.timeout is None else float(schedule.timeout)
    return params


def _tenant_params(tenant: Tenant) -> dict[str, Any]:
    return tenant_params(tenant, _utc)


def _is_name_conflict(e: psycopg.errors.UniqueViolation) -> bool:
    """A duplicate (tenant, name) is the caller's Conflict; another duplicate (an id) is not."""
    return e.diag.constraint_name == "hora_schedules_name"


def _attempt_params(outcomes: Sequence[Outcome]) -> dict[str, list[str | None]]:
    return {
        "outcomes": [o.outcome for o in outcomes],
        "error_types": [o.error.type if o.error else None for o in outcomes],
        "error_messages": [o.error.message if o.error else None for o in outcomes],
        "tracebacks": [o.error.traceback if o.error else None for o in outcomes],
    }


def _claimed(cur: psycopg.Cursor[Any]) -> list[ClaimedJob]:
    # jsonb arrives decoded; the row is already in CLAIM_COLUMNS order.
    return [ClaimedJob(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], _utc(r[9]), r[10])
            for r in cur]


def _jobs(conn: Conn, query: str, params: dict[str, Any]) -> list[Job]:
    with conn.cursor(row_factory=dict_row) as cur:
        return [job_from_row(r, _utc, decoded=True) for r in cur.execute(query, params)]


__all__ = ["MIGRATION_LOCK", "PostgresStore"]
