"""Notification templates, a version per put (see ``hora.store.TemplateStore``)."""

from __future__ import annotations

from datetime import datetime

from psycopg.rows import dict_row

from hora.store.notify_rows import (
    StoredTemplate,
    template_from_row,
)
from hora.store.postgres.connection import PostgresConnection, Q, _utc


class PostgresTemplates(PostgresConnection):
    """Templates (hora_templates), a version per put."""

    def put_template(self, tenant_id: str, name: str, channel: str, subject: str, text: str,
                     html: str | None, now: datetime) -> int:
        key = {"tenant_id": tenant_id, "name": name, "channel": channel}
        with self._write() as conn:
            # Two puts of one key would both read the same max: the second waits here.
            conn.execute(Q["lock_template_key"], key)
            row = conn.execute(Q["put_template"], {
                **key, "subject": subject, "text_body": text, "html_body": html,
                "created_at": _utc(now)}).fetchone()
        assert row is not None
        return int(row[0])

    def get_template(self, tenant_id: str, name: str, channel: str,
                     version: int | None = None) -> StoredTemplate | None:
        params = {"tenant_id": tenant_id, "name": name, "channel": channel, "version": version}
        with self._read() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(Q["get_template_latest" if version is None
                                else "get_template_version"], params).fetchone()
        return None if row is None else template_from_row(row, _utc)

    def list_templates(self, tenant_id: str, *, after: tuple[str, str] | None = None,
                       limit: int = 100) -> list[StoredTemplate]:
        name, channel = after or ("", "")
        with self._read() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(Q["list_templates"], {
                "tenant_id": tenant_id, "after_name": name, "after_channel": channel,
                "limit": limit}).fetchall()
        return [template_from_row(r, _utc) for r in rows]

    def count_templates(self, tenant_id: str, name: str | None = None,
                        channel: str | None = None) -> int:
        with self._read() as conn:
            if name is None or channel is None:
                row = conn.execute(Q["count_template_keys"], {"tenant_id": tenant_id}).fetchone()
            else:
                row = conn.execute(Q["count_template_versions"], {
                    "tenant_id": tenant_id, "name": name, "channel": channel}).fetchone()
        assert row is not None
        return int(row[0])

    def delete_template(self, tenant_id: str, name: str, channel: str | None = None) -> int:
        with self._write() as conn:
            return conn.execute(Q["delete_template"], {
                "tenant_id": tenant_id, "name": name, "channel": channel}).rowcount
