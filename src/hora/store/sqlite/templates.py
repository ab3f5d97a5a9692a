"""Notification templates, a version per put (see ``hora.store.TemplateStore``)."""

from __future__ import annotations

from datetime import datetime

from hora.store.common import from_us, to_us
from hora.store.notify_rows import (
    StoredTemplate,
    template_from_row,
)
from hora.store.sqlite.connection import Q, SQLiteConnection, _rows


class SQLiteTemplates(SQLiteConnection):
    """Templates (hora_templates), a version per put."""

    def put_template(self, tenant_id: str, name: str, channel: str, subject: str, text: str,
                     html: str | None, now: datetime) -> int:
        with self._write() as conn:  # the one writer: max + 1 is this put's alone
            row = conn.execute(Q["put_template"], {
                "tenant_id": tenant_id, "name": name, "channel": channel, "subject": subject,
                "text_body": text, "html_body": html, "created_at": to_us(now)}).fetchone()
        return int(row[0])

    def get_template(self, tenant_id: str, name: str, channel: str,
                     version: int | None = None) -> StoredTemplate | None:
        params = {"tenant_id": tenant_id, "name": name, "channel": channel, "version": version}
        with self._read() as conn:
            rows = _rows(conn.execute(Q["get_template_latest" if version is None
                                        else "get_template_version"], params))
        return template_from_row(rows[0], from_us) if rows else None

    def list_templates(self, tenant_id: str, *, after: tuple[str, str] | None = None,
                       limit: int = 100) -> list[StoredTemplate]:
        name, channel = after or ("", "")
        with self._read() as conn:
            rows = _rows(conn.execute(Q["list_templates"], {
                "tenant_id": tenant_id, "after_name": name, "after_channel": channel,
                "limit": limit}))
        return [template_from_row(r, from_us) for r in rows]

    def count_templates(self, tenant_id: str, name: str | None = None,
                        channel: str | None = None) -> int:
        with self._read() as conn:
            if name is None or channel is None:
                row = conn.execute(Q["count_template_keys"], {"tenant_id": tenant_id}).fetchone()
            else:
                row = conn.execute(Q["count_template_versions"], {
                    "tenant_id": tenant_id, "name": name, "channel": channel}).fetchone()
        return int(row[0])

    def delete_template(self, tenant_id: str, name: str, channel: str | None = None) -> int:
        with self._write() as conn:
            return conn.execute(Q["delete_template"], {
                "tenant_id": tenant_id, "name": name, "channel": channel}).rowcount
