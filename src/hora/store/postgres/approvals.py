"""Approval requests: one per wait_for_approval (by journal position), decided by id."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from psycopg.rows import dict_row

from hora.errors import NotFound, StoreError
from hora.models import ApprovalRequest, HistoryEntry, NewJob, Page
from hora.store.common import (
    approval_cursor,
    approval_from_row,
    approval_params,
    from_us,
    keyset_page,
    parse_workflow_cursor,
)
from hora.store.postgres.connection import Conn, PostgresConnection, Q, _utc
from hora.store.postgres.jobs import _insert_jobs
from hora.store.postgres.workflows import _record_history


class PostgresApprovals(PostgresConnection):
    """Approval requests (hora_approvals); deciding one enqueues the workflow's resume."""

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


