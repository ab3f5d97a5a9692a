"""``hora serve`` and the operator's commands for tenants and API keys.

``keys`` and ``tenants`` talk to the database directly, like ``hora migrate``: they work
before any server runs (the first key of a new tenant) and need database access, which is
the operator's privilege, not an API key's.
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import replace
from typing import Annotated

import typer
from rich.table import Table

from hora.api.auth import default_tenant, key_record, new_key
from hora.cli import (
    BadInput,
    DatabaseUrl,
    JsonOut,
    Limit,
    LogFormat,
    LogLevel,
    cli,
    console,
    handled,
    load_app,
    open_app,
    print_json,
    say,
    setup_logging,
)
from hora.errors import NotFound
from hora.models import ApiKey, Tenant
from hora.render import iso_z

keys_cli = typer.Typer(help="API keys: create, list, revoke.", no_args_is_help=True,
                       rich_markup_mode=None)
tenants_cli = typer.Typer(help="Tenants: create, list, show, set quotas.", no_args_is_help=True,
                          rich_markup_mode=None)
cli.add_typer(keys_cli, name="keys")
cli.add_typer(tenants_cli, name="tenants")


@cli.command()
@handled
def serve(
    host: Annotated[str, typer.Option(envvar="HORA_HOST", help="Address to listen on.")
                    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="HORA_PORT", help="Port (0: any free one).")
                    ] = 8000,
    role: Annotated[str, typer.Option(
        "--role", envvar="HORA_ROLE",
        help="Comma-separated roles of this process: api, scheduler, worker.")
    ] = "api,scheduler,worker",
    app_ref: Annotated[str | None, typer.Option(
        "--app", envvar="HORA_APP",
        help="Your Hora app as module:attr, so this process's worker runs your Python tasks "
             "(HTTP targets need none).")] = None,
    queue: Annotated[list[str] | None, typer.Option(
        "--queue", "-q", envvar="HORA_QUEUES", help="Queue the worker takes (repeatable).")
    ] = None,
    concurrency: Annotated[int, typer.Option(envvar="HORA_CONCURRENCY",
                                             help="Jobs in flight.")] = 100,
    grace_period: Annotated[float, typer.Option(
        envvar="HORA_GRACE_PERIOD", help="Seconds requests and jobs get at shutdown.")] = 30.0,
    demo: Annotated[bool, typer.Option(
        "--demo", help="Add the demo tasks and a schedule that greets every 10 seconds.")
    ] = False,
    database_url: DatabaseUrl = None,
    log_level: LogLevel = "INFO",
    log_format: LogFormat = "text",
) -> None:
    """Serve the HTTP API and run the scheduler and a worker (all three by default).

    On a store without API keys the first start prints a new admin key, once; set
    HORA_ADMIN_KEY to choose it instead.
    """
    from hora.app import Hora
    from hora.serve import ServeOptions, parse_roles, prepare
    from hora.serve import serve as run

    setup_logging(log_level, log_format)
    if not 0 <= port <= 65535:
        raise BadInput(f"--port {port} must be between 0 and 65535")
    app = load_app(app_ref) if app_ref else Hora()
    if database_url:
        app.use_database(database_url)
    options = ServeOptions(host=host, port=port, roles=parse_roles(role),
                           queues=tuple(queue or ("default",)), concurrency=concurrency,
                           grace_period=grace_period,
                           admin_key=os.environ.get("HORA_ADMIN_KEY") or None, demo=demo,
                           log_level=log_level.lower())

    def announce(line: str) -> None:
        typer.echo(line)

    def ready(bound: int) -> None:
        roles = ",".join(sorted(options.roles))
        if "api" in options.roles:
            typer.echo(f"hora is serving on http://{host}:{bound} (roles: {roles}); "
                       "OpenAPI at /docs", err=True)
        else:
            typer.echo(f"hora is running (roles: {roles})", err=True)
        sys.stdout.flush()

    options.on_ready = ready
    try:
        targets = prepare(app, options, announce)
        sys.stdout.flush()
        asyncio.run(run(app, options, targets))
    finally:
        app.close()


# -- keys -------------------------------------------------------------------------------------

SCOPES = ("read", "write", "admin")


def _key_dict(k: ApiKey) -> dict[str, object]:
    return {"id": k.id, "tenant_id": k.tenant_id, "name": k.name, "prefix": k.prefix,
            "scopes": list(k.scopes), "created_at": iso_z(k.created_at),
            "revoked_at": iso_z(k.revoked_at)}


@keys_cli.command("create")
@handled
def keys_create(
    tenant: Annotated[str, typer.Option("--tenant", help="The tenant the key acts for.")
                      ] = "default",
    scope: Annotated[list[str] | None, typer.Option(
        "--scope", help="read, write or admin (repeatable) [default: read and write].")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="A label for listings.")] = None,
    database_url: DatabaseUrl = None, json_out: JsonOut = False,
) -> None:
    """Create an API key and print it (once: only its hash is stored)."""
    scopes = tuple(dict.fromkeys(scope or ["read", "write"]))
    bad = [s for s in scopes if s not in SCOPES]
    if bad:
        raise BadInput(f"--scope {bad[0]!r} is not one of read, write, admin")
    with open_app(database_url) as app:
        now = app.clock.now()
        if tenant == "default":
            app.store.ensure_tenant(default_tenant("default", now))
        try:
            app.store.get_tenant(tenant)
        except NotFound:
            raise BadInput(f"no tenant {tenant!r}; create it with: hora tenants create "
                           f"{tenant}") from None
        key = new_key()
        record = app.store.insert_api_key(key_record(key, tenant_id=tenant, name=name,
                                                     scopes=scopes, now=now))
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
    limit: Limit = 100, database_url: DatabaseUrl = None, json_out: JsonOut = False,
) -> None:
    """List API keys (prefixes only; the keys themselves are not stored)."""
    with open_app(database_url) as app:
        page = app.store.list_api_keys(tenant_id=tenant, limit=limit)
    if json_out:
        print_json({"items": [_key_dict(k) for k in page.items],
                    "next_cursor": page.next_cursor})
        return
    table = Table("id", "tenant", "name", "prefix", "scopes", "created", "revoked")
    for k in page.items:
        table.add_row(k.id, k.tenant_id, k.name or "", k.prefix + "…", ",".join(k.scopes),
                      iso_z(k.created_at) or "", iso_z(k.revoked_at) or "")
    console().print(table)


@keys_cli.command("revoke")
@handled
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (from hora keys list).")],
    database_url: DatabaseUrl = None, json_out: JsonOut = False,
) -> None:
    """Revoke an API key; API processes stop accepting it within seconds."""
    with open_app(database_url) as app:
        k = app.store.revoke_api_key(key_id, now=app.clock.now())
    if json_out:
        print_json(_key_dict(k))
        return
    say(f"revoked key {k.id} ({k.prefix}…) of tenant {k.tenant_id}")


@keys_cli.command("generate")
@handled
def keys_generate() -> None:
    """Print a new random key without storing it (for HORA_ADMIN_KEY)."""
    typer.echo(new_key())


# -- tenants ----------------------------------------------------------------------------------


def _tenant_dict(t: Tenant, *, secret: bool = False) -> dict[str, object]:
    return {"id": t.id, "name": t.name, "max_pending_jobs": t.max_pending_jobs,
            "max_active_schedules": t.max_active_schedules, "rate_limit": t.rate_limit,
            "created_at": iso_z(t.created_at), "updated_at": iso_z(t.updated_at),
            **({"webhook_secret": t.webhook_secret} if secret else {})}


_TENANT_ID = "lower-case letters, digits, - and _ (1-63, starting with a letter or digit)"


def _check_tenant_id(tenant_id: str) -> None:
    import re

    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,62}", tenant_id):
        raise BadInput(f"tenant id {tenant_id!r}: use {_TENANT_ID}")


def _check_quotas(max_jobs: int | None, max_schedules: int | None,
                  rate_limit: float | None) -> None:
    if (max_jobs is not None and max_jobs < 1) or (max_schedules is not None
                                                   and max_schedules < 1):
        raise BadInput("quotas must be at least 1 (leave them out for unlimited)")
    if rate_limit is not None and not rate_limit > 0:
        raise BadInput("--rate-limit must be > 0 requests per second")


MaxJobs = Annotated[int | None, typer.Option("--max-pending-jobs",
                                             help="Quota of unfinished jobs.")]
MaxSchedules = Annotated[int | None, typer.Option("--max-active-schedules",
                                                  help="Quota of active schedules.")]
RateLimit = Annotated[float | None, typer.Option("--rate-limit",
                                                 help="API requests per second.")]


@tenants_cli.command("create")
@handled
def tenants_create(
    tenant_id: Annotated[str, typer.Argument(help=f"The tenant's id: {_TENANT_ID}.")],
    name: Annotated[str | None, typer.Option("--name")] = None,
    max_pending_jobs: MaxJobs = None, max_active_schedules: MaxSchedules = None,
    rate_limit: RateLimit = None, database_url: DatabaseUrl = None, json_out: JsonOut = False,
) -> None:
    """Create a tenant (then give it a key: hora keys create --tenant ID)."""
    _check_tenant_id(tenant_id)
    _check_quotas(max_pending_jobs, max_active_schedules, rate_limit)
    with open_app(database_url) as app:
        t = replace(default_tenant(tenant_id, app.clock.now()), name=name or tenant_id,
                    max_pending_jobs=max_pending_jobs,
                    max_active_schedules=max_active_schedules, rate_limit=rate_limit)
        t = app.store.insert_tenant(t)
    if json_out:
        print_json(_tenant_dict(t, secret=True))
        return
    say(f"created tenant {t.id}; its webhook signing secret: {t.webhook_secret}")


@tenants_cli.command("list")
@handled
def tenants_list(limit: Limit = 100, database_url: DatabaseUrl = None,
                 json_out: JsonOut = False) -> None:
    """List tenants with their quotas."""
    with open_app(database_url) as app:
        page = app.store.list_tenants(limit=limit)
    if json_out:
        print_json({"items": [_tenant_dict(t) for t in page.items],
                    "next_cursor": page.next_cursor})
        return
    table = Table("id", "name", "max pending jobs", "max active schedules", "rate limit/s")
    for t in page.items:
        table.add_row(t.id, t.name, _opt(t.max_pending_jobs), _opt(t.max_active_schedules),
                      _opt(t.rate_limit))
    console().print(table)


@tenants_cli.command("update")
@handled
def tenants_update(
    tenant_id: Annotated[str, typer.Argument(help="The tenant's id.")],
    name: Annotated[str | None, typer.Option("--name")] = None,
    max_pending_jobs: MaxJobs = None, max_active_schedules: MaxSchedules = None,
    rate_limit: RateLimit = None, database_url: DatabaseUrl = None, json_out: JsonOut = False,
) -> None:
    """Change a tenant's name, quotas or rate limit."""
    _check_quotas(max_pending_jobs, max_active_schedules, rate_limit)
    with open_app(database_url) as app:
        t = app.store.get_tenant(tenant_id)
        changes: dict[str, object] = {"name": name, "max_pending_jobs": max_pending_jobs,
                                      "max_active_schedules": max_active_schedules,
                                      "rate_limit": rate_limit}
        t = app.store.update_tenant(replace(
            t, **{k: v for k, v in changes.items() if v is not None},  # type: ignore[arg-type]
            updated_at=app.clock.now()))
    if json_out:
        print_json(_tenant_dict(t))
        return
    say(f"updated tenant {t.id}")


def _opt(value: object) -> str:
    return "unlimited" if value is None else str(value)

