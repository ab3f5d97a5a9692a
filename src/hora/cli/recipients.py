"""``hora recipients``: the people notifications go to -- list, show, upsert, delete, import
a JSON-lines file, and make an unsubscribe link."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hora.cli._common import (
    BadInput,
    DatabaseUrl,
    JsonOut,
    console,
    group,
    handled,
    open_app,
    parse_json_object,
    print_json,
    say,
)

if TYPE_CHECKING:
    from hora.notify.model import Recipient

recipients_cli = group("Notification recipients: list, get, upsert, delete, import, "
                       "unsubscribe-link.")

Tenant = Annotated[str, typer.Option("--tenant", help="The tenant whose recipients these are.")]
Id = Annotated[str, typer.Argument(help="The recipient's id (yours: a user id).")]
#: The most lines ``import`` reads from one file (written a transaction of 10,000 at a time).
MAX_IMPORT_LINES = 1_000_000


@recipients_cli.command("list")
@handled
def recipients_list(
    after: Annotated[str | None, typer.Option(
        "--after", help="Start after this id (the last one of the previous page).")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many (1-1000).")] = 100,
    tenant: Tenant = "default", json_out: JsonOut = False, database_url: DatabaseUrl = None,
) -> None:
    """The tenant's recipients by id, a page at a time."""
    from rich import box
    from rich.table import Table

    from hora.notify.recipients import recipient_dict

    with open_app(database_url, read_only=True, tenant_id=tenant) as app:
        found = app.recipients.list(after=after, limit=limit)
    if json_out:
        print_json({"items": [recipient_dict(r) for r in found],
                    "next_after": found[-1].id if len(found) == limit else None})
        return
    if not found:
        say("no recipients")
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for header in ("id", "timezone", "locale", "quiet hours", "days", "addresses"):
        table.add_column(header, overflow="fold")
    for r in found:
        table.add_row(r.id, r.timezone, r.locale, _quiet(r), _days(r),
                      ", ".join(f"{k}: {v}" for k, v in r.addresses.items()) or "-")
    console().print(table)
    if len(found) == limit:
        say(f"more: pass --after {found[-1].id}")


@recipients_cli.command("get")
@handled
def recipients_get(recipient_id: Id, tenant: Tenant = "default", json_out: JsonOut = False,
                   database_url: DatabaseUrl = None) -> None:
    """One recipient, every field."""
    from rich import box
    from rich.table import Table

    from hora.notify.recipients import recipient_dict

    with open_app(database_url, read_only=True, tenant_id=tenant) as app:
        r = app.recipients.get(recipient_id)
    doc = recipient_dict(r)
    if json_out:
        print_json(doc)
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for key in ("id", "timezone", "locale"):
        table.add_row(key, str(doc[key]))
    table.add_row("quiet hours", _quiet(r))
    table.add_row("delivery days", _days(r))
    for key in ("addresses", "preferences", "data"):
        table.add_row(key, json.dumps(doc[key], ensure_ascii=False))
    table.add_row("updated", str(doc["updated_at"]))
    console().print(table)


@recipients_cli.command("upsert")
@handled
def recipients_upsert(
    recipient_id: Id,
    timezone: Annotated[str, typer.Option("--timezone", help="IANA zone: Europe/Paris.")] = "UTC",
    locale: Annotated[str, typer.Option("--locale", help="fr-FR, en, pt_BR.")] = "en",
    quiet_hours: Annotated[str | None, typer.Option(
        "--quiet-hours", help="No delivery from START to END local time: 21:00-08:00.")] = None,
    holidays: Annotated[str | None, typer.Option(
        "--holidays", help="Country code of the holidays: FR, US-CA.")] = None,
    business_days_only: Annotated[bool, typer.Option(
        "--business-days-only", help="Deliver Monday-Friday, minus the holidays.")] = False,
    email: Annotated[str | None, typer.Option("--email", help="The e-mail address.")] = None,
    webhook: Annotated[str | None, typer.Option("--webhook", help="A webhook URL.")] = None,
    preferences: Annotated[str | None, typer.Option(
        "--preferences", help='JSON: {"channels": {"email": false}, '
                              '"categories": {"marketing": false}}.')] = None,
    data: Annotated[str | None, typer.Option(
        "--data", help='JSON the templates see as recipient.data: {"name": "Ada"}.')] = None,
    tenant: Tenant = "default", json_out: JsonOut = False, database_url: DatabaseUrl = None,
) -> None:
    """Create recipient ID or replace it whole (its unsubscribe link stays)."""
    from hora.notify.recipients import recipient_dict

    addresses = {k: v for k, v in (("email", email), ("webhook", webhook)) if v is not None}
    prefs = None if preferences is None else parse_json_object(preferences, "--preferences")
    extra = None if data is None else parse_json_object(data, "--data")
    with open_app(database_url, tenant_id=tenant) as app:
        r = app.recipients.upsert(
            recipient_id, timezone=timezone, locale=locale, quiet_hours=quiet_hours,
            holidays=holidays, business_days_only=business_days_only, addresses=addresses,
            preferences=prefs, data=extra)
    if json_out:
        print_json(recipient_dict(r))
    else:
        say(f"recipient {r.id} of tenant {tenant}: {r.timezone}, quiet hours {_quiet(r)}, "
            f"{_days(r)}")


@recipients_cli.command("delete")
@handled
def recipients_delete(recipient_id: Id, tenant: Tenant = "default", json_out: JsonOut = False,
                      database_url: DatabaseUrl = None) -> None:
    """Remove recipient ID (its unsubscribe link stops working)."""
    with open_app(database_url, tenant_id=tenant) as app:
        deleted = app.recipients.delete(recipient_id)
    if json_out:
        print_json({"id": recipient_id, "deleted": deleted})
    else:
        say(f"deleted recipient {recipient_id}" if deleted
            else f"there was no recipient {recipient_id} of tenant {tenant}")


@recipients_cli.command("import")
@handled
def recipients_import(
    file: Annotated[Path, typer.Argument(help="JSON lines: one recipient object a line, "
                                              'e.g. {"id": "u1", "timezone": "Europe/Paris"}.',
                                         exists=False)],
    tenant: Tenant = "default", json_out: JsonOut = False, database_url: DatabaseUrl = None,
) -> None:
    """Create or replace the recipients of FILE. Every line is checked before anything is
    written: a bad one is named (file:line) and nothing is imported."""
    from hora.errors import InvalidNotification
    from hora.notify.recipients import MAX_BULK, recipient_from_dict

    docs = _read_lines(file)
    for lineno, doc in docs:
        try:
            recipient_from_dict(doc, tenant)
        except InvalidNotification as e:
            raise BadInput(f"{file}:{lineno}: {e}") from None
    written = 0
    with open_app(database_url, tenant_id=tenant) as app:
        for start in range(0, len(docs), MAX_BULK):
            written += app.recipients.upsert_many(d for _, d in docs[start:start + MAX_BULK])
    if json_out:
        print_json({"imported": written})
    else:
        say(f"imported {written} recipients into tenant {tenant}")


@recipients_cli.command("unsubscribe-link")
@handled
def recipients_unsubscribe_link(
    recipient_id: Id,
    base_url: Annotated[str, typer.Option(
        "--base-url", help="The server's public URL: https://hora.example.com.")],
    tenant: Tenant = "default", json_out: JsonOut = False, database_url: DatabaseUrl = None,
) -> None:
    """A new unsubscribe link of ID that works without an API key (the old one stops
    working; the store keeps only its hash, so this is the one time it is shown)."""
    with open_app(database_url, tenant_id=tenant) as app:
        url = app.recipients.unsubscribe_url(recipient_id, base_url)
    if json_out:
        print_json({"recipient_id": recipient_id, "url": url})
    else:
        typer.echo(url)


def _read_lines(file: Path) -> list[tuple[int, Any]]:
    """(line number, JSON value) of every non-blank line, bounded."""
    try:
        handle = file.open(encoding="utf-8")
    except OSError as e:
        raise BadInput(f"cannot read {file}: {e.strerror or e}") from None
    out: list[tuple[int, Any]] = []
    with handle:
        try:
            for lineno, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                if len(out) >= MAX_IMPORT_LINES:
                    raise BadInput(f"{file}: more than {MAX_IMPORT_LINES} recipients; "
                                   "split the file")
                try:
                    out.append((lineno, json.loads(line)))
                except (json.JSONDecodeError, RecursionError) as e:
                    raise BadInput(f"{file}:{lineno}: not a JSON object: {e}") from None
        except UnicodeDecodeError:
            raise BadInput(f"{file}: not UTF-8 text") from None
    return out


def _quiet(r: Recipient) -> str:
    q = r.quiet_hours
    return "-" if q is None else f"{q.start:%H:%M}-{q.end:%H:%M}"


def _days(r: Recipient) -> str:
    if not r.business_days_only:
        return "every day"
    return f"business days ({r.holidays} holidays)" if r.holidays else "business days"
