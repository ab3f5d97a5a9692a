"""``hora templates``: notification templates, versioned per name and channel; preview one
rendered for a recipient and data before a send uses it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

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

templates_cli = group("Notification templates: list, put a new version, show, delete, "
                      "preview.")

Tenant = Annotated[str, typer.Option("--tenant", help="The tenant whose templates these are.")]
Name = Annotated[str, typer.Argument(help="The template's name.")]
Channel = Annotated[str, typer.Option(
    "--channel", help="email, webhook, inapp, log, or * (every channel without its own).")]
Version = Annotated[int | None, typer.Option("--version", help="A version (default: latest).")]
#: A template file is read up to one byte over the limit, so an oversized one is refused
#: with the limit named instead of being read whole.
_READ_LIMIT = 64 * 1024 + 1


def _read(path: Path | None, option: str) -> str | None:
    if path is None:
        return None
    try:
        with path.open("rb") as f:
            raw = f.read(_READ_LIMIT)
    except OSError as e:
        raise BadInput(f"{option} {str(path)!r}: {e.strerror or e}") from None
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise BadInput(f"{option} {str(path)!r} is not UTF-8 text") from None


@templates_cli.command("list")
@handled
def templates_list(tenant: Tenant = "default", json_out: JsonOut = False,
                   database_url: DatabaseUrl = None) -> None:
    """The tenant's templates: the latest version of each, by name and channel."""
    from rich import box
    from rich.table import Table

    from hora.notify.templates import MAX_PAGE, template_dict

    with open_app(database_url, read_only=True, tenant_id=tenant) as app:
        found = []
        cursor: str | None = None
        while True:
            page = app.templates.list(cursor=cursor, limit=MAX_PAGE)
            found.extend(page.items)
            cursor = page.next_cursor
            if cursor is None:
                break
    if json_out:
        print_json({"items": [template_dict(t) for t in found]})
        return
    if not found:
        say("no templates")
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for header in ("name", "channel", "version", "subject", "html", "created"):
        table.add_column(header, overflow="fold")
    for t in found:
        table.add_row(t.name, t.channel, str(t.version), t.subject[:60],
                      "yes" if t.html is not None else "-", f"{t.created_at:%Y-%m-%d %H:%M}")
    console().print(table)


@templates_cli.command("put")
@handled
def templates_put(
    name: Name,
    channel: Channel = "*",
    subject: Annotated[str, typer.Option("--subject", help="The subject (Jinja2).")] = "",
    text: Annotated[str | None, typer.Option("--text", help="The text body (Jinja2).")] = None,
    text_file: Annotated[Path | None, typer.Option(
        "--text-file", help="Read the text body from this file.")] = None,
    html_file: Annotated[Path | None, typer.Option(
        "--html-file", help="Read the HTML body from this file (autoescaped).")] = None,
    tenant: Tenant = "default",
    json_out: JsonOut = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Store a new version of template NAME for --channel; prints its version."""
    if text is not None and text_file is not None:
        raise BadInput("give --text or --text-file, not both")
    body = _read(text_file, "--text-file") if text_file is not None else (text or "")
    html = _read(html_file, "--html-file")
    with open_app(database_url, tenant_id=tenant) as app:
        version = app.templates.put(name, channel=channel, subject=subject, text=body or "",
                                    html=html)
    if json_out:
        print_json({"name": name, "channel": channel, "version": version})
    else:
        say(f"template {name} ({channel}) of tenant {tenant}: version {version}")


@templates_cli.command("show")
@handled
def templates_show(name: Name, channel: Channel = "*", version: Version = None,
                   tenant: Tenant = "default", json_out: JsonOut = False,
                   database_url: DatabaseUrl = None) -> None:
    """One template of exactly --channel: the latest version, or --version."""
    from hora.notify.templates import template_dict

    with open_app(database_url, read_only=True, tenant_id=tenant) as app:
        t = app.templates.get(name, channel, version)
    if json_out:
        print_json(template_dict(t))
        return
    say(f"template {t.name} ({t.channel}) version {t.version}, {t.created_at:%Y-%m-%d %H:%M}")
    _print_parts(t.subject, t.text, t.html)


def _print_parts(subject: str, text: str, html: str | None) -> None:
    typer.echo(f"subject: {subject}")
    typer.echo("--- text")
    typer.echo(text)
    if html is not None:
        typer.echo("--- html")
        typer.echo(html)


@templates_cli.command("delete")
@handled
def templates_delete(
    name: Name,
    channel: Annotated[str | None, typer.Option(
        "--channel", help="Only this channel's versions (default: every channel).")] = None,
    tenant: Tenant = "default", json_out: JsonOut = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Delete every version of template NAME (of --channel, else of all channels)."""
    from hora.errors import NotFound

    with open_app(database_url, tenant_id=tenant) as app:
        deleted = app.templates.delete(name, channel)
    if not deleted:
        raise NotFound(f"no template {name!r}" + (f" for channel {channel!r}" if channel
                                                 else ""))
    if json_out:
        print_json({"name": name, "channel": channel, "deleted_versions": deleted})
    else:
        say(f"deleted {deleted} version(s) of template {name}")


@templates_cli.command("preview")
@handled
def templates_preview(
    name: Name,
    channel: Annotated[str, typer.Option(
        "--channel", help="The channel a send would use (its own template, else *).")] = "*",
    data: Annotated[str, typer.Option("--data", help="The notification's data (JSON).")] = "{}",
    recipient: Annotated[str, typer.Option(
        "--recipient", help="The recipient (JSON: id, timezone, locale, addresses, data).",
    )] = "{}",
    version: Version = None,
    tenant: Tenant = "default",
    json_out: JsonOut = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Render template NAME as a send on --channel would; a missing variable is named."""
    from hora.notify.templates import preview_recipient, rendered_dict

    values: dict[str, Any] = parse_json_object(data, "--data", example="'{\"report\": \"Q3\"}'")
    person = preview_recipient(parse_json_object(recipient, "--recipient",
                                                 example="'{\"id\": \"u42\"}'"), tenant)
    with open_app(database_url, read_only=True, tenant_id=tenant) as app:
        used, rendered = app.templates.preview(name, channel, recipient=person, data=values,
                                               version=version)
    if json_out:
        print_json({**rendered_dict(rendered), "template": {
            "name": used.name, "channel": used.channel, "version": used.version}})
        return
    say(f"template {used.name} ({used.channel}) version {used.version}")
    _print_parts(rendered.subject, rendered.text, rendered.html)
