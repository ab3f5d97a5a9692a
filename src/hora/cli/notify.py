"""``hora notify``: send a notification, list what was sent, show one with its deliveries."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from hora.cli._common import (
    DatabaseUrl,
    JsonOut,
    console,
    group,
    handled,
    open_app,
    print_json,
    say,
)

notify_cli = group("Notifications: send one, list them, show one with its deliveries.")

Tenant = Annotated[str, typer.Option("--tenant", help="The tenant sending.")]


@notify_cli.command("send")
@handled
def notify_send(
    recipient: Annotated[str, typer.Argument(help="The recipient's id.")],
    category: Annotated[str, typer.Option("--category", help="What it is about.")],
    template: Annotated[str, typer.Option("--template", help="The template's name.")],
    data: Annotated[str, typer.Option("--data", help="A JSON object for the template.")] = "{}",
    at: Annotated[str, typer.Option("--at", help="now, local:09:00, or an ISO instant "
                                                 "with a zone.")] = "now",
    channel: Annotated[list[str] | None, typer.Option(
        "--channel", help="email, webhook, inapp, log (repeat for several).")] = None,
    dedup_key: Annotated[str | None, typer.Option("--dedup-key")] = None,
    correlation_id: Annotated[str | None, typer.Option("--correlation-id")] = None,
    tenant: Tenant = "default", json_out: JsonOut = False, database_url: DatabaseUrl = None,
) -> None:
    """Send a notification: one delivery job per channel at the recipient's local time."""
    from hora.api.routes.notifications import notification_dict
    from hora.errors import InvalidNotification

    try:
        body = json.loads(data)
    except ValueError as e:
        raise InvalidNotification(f"is not JSON: {e}", field="data") from None
    if not isinstance(body, dict):
        raise InvalidNotification("must be a JSON object", field="data")
    with open_app(database_url, tenant_id=tenant) as app:
        n = app.notify(recipient, category=category, template=template, data=body, at=at,
                       channels=channel or ["email"], dedup_key=dedup_key,
                       correlation_id=correlation_id)
    if json_out:
        print_json(notification_dict(n))
        return
    say(f"{'sent' if n.created else 'already sent (dedup key)'}: {n.id} at "
        f"{n.deliver_at.isoformat()}" + (f" ({n.note})" if n.note else ""))
    for d in n.deliveries:
        say(f"  {d.channel}: {d.state.value}" + (f" ({d.reason})" if d.reason else ""))


@notify_cli.command("list")
@handled
def notify_list(
    recipient: Annotated[str | None, typer.Option("--recipient")] = None,
    correlation_id: Annotated[str | None, typer.Option("--correlation-id")] = None,
    category: Annotated[str | None, typer.Option("--category")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 50,
    tenant: Tenant = "default", json_out: JsonOut = False, database_url: DatabaseUrl = None,
) -> None:
    """Notifications, newest first, with the state of each channel."""
    from rich import box
    from rich.table import Table

    from hora.api.routes.notifications import notification_dict

    with open_app(database_url, read_only=True, tenant_id=tenant) as app:
        items = app.notifications.list(recipient=recipient, correlation_id=correlation_id,
                                       category=category, limit=limit)
    if json_out:
        print_json({"items": [notification_dict(n) for n in items]})
        return
    if not items:
        say("no notifications")
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for header in ("id", "recipient", "category", "deliver at", "deliveries"):
        table.add_column(header, overflow="fold")
    for n in items:
        table.add_row(n.id, n.recipient_id, n.category, n.deliver_at.isoformat(),
                      ", ".join(f"{d.channel}={d.state.value}" for d in n.deliveries))
    console().print(table)


@notify_cli.command("show")
@handled
def notify_show(notification_id: Annotated[str, typer.Argument()], tenant: Tenant = "default",
                json_out: JsonOut = False, database_url: DatabaseUrl = None) -> None:
    """One notification and its deliveries, as JSON (with or without ``--json``)."""
    from hora.api.routes.notifications import notification_dict

    with open_app(database_url, read_only=True, tenant_id=tenant) as app:
        print_json(notification_dict(app.notifications.get(notification_id)))
