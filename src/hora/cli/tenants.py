"""``hora tenants``: create tenants, set their quotas, rotate their webhook secrets.

Straight in the database, like ``hora keys``: creating a tenant is the operator's job.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated

import typer

from hora.cli._common import (
    BadInput,
    Cursor,
    DatabaseUrl,
    JsonOut,
    Limit,
    console,
    fail,
    group,
    handled,
    more_hint,
    open_app,
    print_json,
    say,
)
from hora.limits import MAX_QUOTA, MAX_RATE_LIMIT, MIN_RATE_LIMIT, check_int, check_number

if TYPE_CHECKING:
    from hora.models import Tenant

tenants_cli = group("Tenants: create, list, show, set quotas, rotate secrets.")


def _tenant_dict(t: Tenant, *, secret: bool = False) -> dict[str, object]:
    from hora.wire import iso_z

    return {"id": t.id, "name": t.name, "max_pending_jobs": t.max_pending_jobs,
            "max_active_schedules": t.max_active_schedules, "rate_limit": t.rate_limit,
            "created_at": iso_z(t.created_at), "updated_at": iso_z(t.updated_at),
            **({"webhook_secret": t.webhook_secret} if secret else {})}


_TENANT_ID = "lower-case letters, digits, - and _ (1-63, starting with a letter or digit)"


def _check_tenant_id(tenant_id: str) -> None:
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,62}", tenant_id):
        raise BadInput(f"tenant id {tenant_id!r}: use {_TENANT_ID}")


def _check_quotas(max_jobs: int | None, max_schedules: int | None,
                  rate_limit: float | None) -> None:
    """The documented ranges (hora.limits); leave a quota out for unlimited."""
    if max_jobs is not None:
        check_int(max_jobs, "--max-pending-jobs", least=1, most=MAX_QUOTA)
    if max_schedules is not None:
        check_int(max_schedules, "--max-active-schedules", least=1, most=MAX_QUOTA)
    if rate_limit is not None:
        check_number(rate_limit, "--rate-limit", least=MIN_RATE_LIMIT, most=MAX_RATE_LIMIT)


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
    from hora.api.auth import default_tenant

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


@tenants_cli.command("rotate-webhook-secret")
@handled
def tenants_rotate_webhook_secret(
    tenant_id: Annotated[str, typer.Argument(help="The tenant's id.")],
    database_url: DatabaseUrl = None, json_out: JsonOut = False,
) -> None:
    """Replace a tenant's webhook signing secret and print the new one (once)."""
    from hora.http_target import new_secret

    with open_app(database_url) as app:
        t = app.store.set_webhook_secret(tenant_id, new_secret(), now=app.clock.now())
    if json_out:
        print_json(_tenant_dict(t, secret=True))
        return
    say(f"rotated the webhook secret of tenant {t.id}; workers sign with it within a minute. "
        "The new secret, shown only now:")
    typer.echo(t.webhook_secret)


@tenants_cli.command("list")
@handled
def tenants_list(limit: Limit = 100, cursor: Cursor = None, database_url: DatabaseUrl = None,
                 json_out: JsonOut = False) -> None:
    """List tenants with their quotas."""
    from rich.table import Table

    with open_app(database_url, read_only=True) as app:
        page = app.store.list_tenants(limit=limit, cursor=cursor)
    if json_out:
        print_json({"items": [_tenant_dict(t) for t in page.items],
                    "next_cursor": page.next_cursor})
        return
    table = Table("id", "name", "max pending jobs", "max active schedules", "rate limit/s")
    for t in page.items:
        table.add_row(t.id, t.name, _opt(t.max_pending_jobs), _opt(t.max_active_schedules),
                      _opt(t.rate_limit))
    console().print(table)
    more_hint(page.next_cursor)


@tenants_cli.command("show")
@handled
def tenants_show(tenant_id: Annotated[str, typer.Argument(help="The tenant's id.")],
                 database_url: DatabaseUrl = None, json_out: JsonOut = False) -> None:
    """One tenant: its name, quotas and rate limit (not its webhook secret)."""
    from rich.table import Table

    from hora.wire import iso_z

    with open_app(database_url, read_only=True) as app:
        t = app.store.get_tenant(tenant_id)
    if json_out:
        print_json(_tenant_dict(t))
        return
    table = Table(box=None, show_header=False)
    for label, value in (("id", t.id), ("name", t.name),
                         ("max pending jobs", _opt(t.max_pending_jobs)),
                         ("max active schedules", _opt(t.max_active_schedules)),
                         ("rate limit/s", _opt(t.rate_limit)),
                         ("created", iso_z(t.created_at) or ""),
                         ("updated", iso_z(t.updated_at) or "")):
        table.add_row(label, value)
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
    if name is None and max_pending_jobs is None and max_active_schedules is None \
            and rate_limit is None:
        fail("nothing to change: give --name, --max-pending-jobs, --max-active-schedules "
             "or --rate-limit")
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

