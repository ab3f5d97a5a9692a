"""``hora keys``: create, list and revoke API keys, straight in the database.

Like ``hora migrate`` this works before any server runs (the first key of a new tenant) and
needs database access, which is the operator's privilege, not an API key's.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from hora.cli._common import (
    BadInput,
    Cursor,
    DatabaseUrl,
    JsonOut,
    Limit,
    console,
    group,
    handled,
    id_column,
    more_hint,
    open_app,
    parse_duration,
    parse_instant,
    print_json,
    say,
)
from hora.errors import NotFound

if TYPE_CHECKING:
    from hora.models import ApiKey

#: A copy of ``hora.api.auth.SCOPES`` for the help text, so that ``hora --help`` does not
#: import the API package; tests/cli/test_cli_package.py checks that the two agree.
SCOPES = ("read", "write", "approve", "admin", "operator")

keys_cli = group("API keys: create, list, revoke.")


def _key_dict(k: ApiKey) -> dict[str, object]:
    from hora.wire import iso_z

    return {"id": k.id, "tenant_id": k.tenant_id, "name": k.name, "prefix": k.prefix,
            "scopes": list(k.scopes), "created_at": iso_z(k.created_at),
            "revoked_at": iso_z(k.revoked_at), "expires_at": iso_z(k.expires_at)}


def _expiry(expires_at: str | None, expires_in: str | None, now: datetime) -> datetime | None:
    from hora.api.auth import MAX_KEY_LIFETIME, check_expiry

    if expires_at is not None and expires_in is not None:
        raise BadInput("give either --expires-at or --expires-in, not both")
    if expires_in is not None:
        seconds = parse_duration(expires_in)
        if seconds > MAX_KEY_LIFETIME.total_seconds():
            raise BadInput(f"--expires-in {expires_in!r}: at most {MAX_KEY_LIFETIME.days} days "
                           "(leave it out for a key that does not expire)")
        return check_expiry(now + timedelta(seconds=seconds), now, "--expires-in")
    if expires_at is not None:
        try:
            at = parse_instant(expires_at, "--expires-at")
        except OverflowError:  # an offset pushing it past year 9999 or before year 1
            raise BadInput(f"--expires-at {expires_at!r} is out of range") from None
        return check_expiry(at, now, "--expires-at")
    return None


@keys_cli.command("create")
@handled
def keys_create(
    tenant: Annotated[str, typer.Option("--tenant", help="The tenant the key acts for.")
                      ] = "default",
    scope: Annotated[list[str] | None, typer.Option(
        "--scope", help=f"{', '.join(SCOPES)} (repeatable) [default: read and write]; "
        "operator manages every tenant, admin its own.")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="A label for listings.")] = None,
    expires_at: Annotated[str | None, typer.Option(
        "--expires-at", help="Refuse the key from this instant (ISO-8601 with an offset).")
    ] = None,
    expires_in: Annotated[str | None, typer.Option(
        "--expires-in", help="Refuse the key after this long: seconds or 90s, 5m, 2h, 30d.")
    ] = None,
    database_url: DatabaseUrl = None, json_out: JsonOut = False,
) -> None:
    """Create an API key and print it (once: only its hash is stored)."""
    from hora.api.auth import default_tenant, key_record, new_key

    scopes = tuple(dict.fromkeys(scope or ["read", "write"]))
    bad = [s for s in scopes if s not in SCOPES]
    if bad:
        raise BadInput(f"--scope {bad[0]!r} is not one of {', '.join(SCOPES)}")
    with open_app(database_url) as app:
        now = app.clock.now()
        until = _expiry(expires_at, expires_in, now)
        if tenant == "default":
            app.store.ensure_tenant(default_tenant("default", now))
        try:
            app.store.get_tenant(tenant)
        except NotFound:
            raise BadInput(f"no tenant {tenant!r}; create it with: hora tenants create "
                           f"{tenant}") from None
        key = new_key()
        record = app.store.insert_api_key(key_record(key, tenant_id=tenant, name=name,
                                                     scopes=scopes, now=now, expires_at=until))
    if json_out:
        print_json({**_key_dict(record), "key": key})
        return
    say(f"API key {record.id} for tenant {tenant} ({', '.join(scopes)}); shown only now:")
    typer.echo(key)


@keys_cli.command("list")
@handled
def keys_list(
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant's keys.")
                      ] = None,
    limit: Limit = 100, cursor: Cursor = None, database_url: DatabaseUrl = None,
    json_out: JsonOut = False,
) -> None:
    """List API keys (prefixes only; the keys themselves are not stored)."""
    from rich.table import Table

    from hora.wire import iso_z

    with open_app(database_url, read_only=True) as app:
        page = app.store.list_api_keys(tenant_id=tenant, limit=limit, cursor=cursor)
    if json_out:
        print_json({"items": [_key_dict(k) for k in page.items],
                    "next_cursor": page.next_cursor})
        return
    table = Table()
    id_column(table, "id", [k.id for k in page.items])
    for col in ("tenant", "name", "prefix", "scopes", "created", "expires", "revoked"):
        table.add_column(col, overflow="fold")
    for k in page.items:
        table.add_row(k.id, k.tenant_id, k.name or "", k.prefix + "…", ",".join(k.scopes),
                      iso_z(k.created_at) or "", iso_z(k.expires_at) or "never",
                      iso_z(k.revoked_at) or "")
    console().print(table)
    more_hint(page.next_cursor)


@keys_cli.command("revoke")
@handled
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (from hora keys list).")],
    force: Annotated[bool, typer.Option(
        "--force", help="Revoke even the last operator key (the API then has none; the CLI "
        "can mint another).")] = False,
    database_url: DatabaseUrl = None, json_out: JsonOut = False,
) -> None:
    """Revoke an API key; API processes stop accepting it within seconds."""
    with open_app(database_url) as app:
        k = app.store.revoke_api_key(key_id, now=app.clock.now(), allow_last_operator=force)
    if json_out:
        print_json(_key_dict(k))
        return
    say(f"revoked key {k.id} ({k.prefix}…) of tenant {k.tenant_id}")


@keys_cli.command("generate")
@handled
def keys_generate() -> None:
    """Print a new random key without storing it (for HORA_ADMIN_KEY)."""
    from hora.api.auth import new_key

    typer.echo(new_key())
