"""``hora limits``: rate limits set by name at run time, over what the tasks declare."""

from __future__ import annotations

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

limits_cli = group("Rate limits by name: list, set at run time, delete (back to declared).")

Tenant = Annotated[str, typer.Option("--tenant", help="The tenant whose limits these are.")]
Name = Annotated[str, typer.Argument(help="The limit's name (a task's limit, or "
                                          "queue:<queue> for a whole queue).")]


@limits_cli.command("list")
@handled
def limits_list(tenant: Tenant = "default", json_out: JsonOut = False,
                database_url: DatabaseUrl = None) -> None:
    """The tenant's rate limits: those set at run time and those its registered tasks
    declare, with the rate in force and where it comes from."""
    from rich import box
    from rich.table import Table

    from hora import wire

    with open_app(database_url, read_only=True, tenant_id=tenant) as app:
        limits = app.rate_limits.list()
    if json_out:
        print_json({"items": [wire.rate_limit_dict(r) for r in limits]})
        return
    if not limits:
        say("no rate limits")
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for header in ("name", "rate", "burst", "source", "declared", "tasks"):
        table.add_column(header, overflow="fold")
    for r in limits:
        declared = "-" if r.declared_rate is None else f"{r.declared_rate} (burst " \
                   f"{r.declared_burst})"
        table.add_row(r.name, r.rate, str(r.burst), r.source, declared,
                      ",".join(r.tasks) or "-")
    console().print(table)


@limits_cli.command("set", context_settings={"ignore_unknown_options": True})
@handled
def limits_set(
    name: Name,
    rate: Annotated[str, typer.Argument(help="COUNT/PERIOD: 20/s, 3/h, 100/15m.")],
    burst: Annotated[int | None, typer.Option(
        "--burst", help="Starts admitted at once (default: 0.1 s of the rate, at least 1).",
    )] = None,
    tenant: Tenant = "default",
    json_out: JsonOut = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Limit NAME to RATE for every worker from its next claim, whatever the code declares."""
    from hora import wire

    with open_app(database_url, tenant_id=tenant) as app:
        info = app.rate_limits.set(name, rate, burst=burst)
    if json_out:
        print_json(wire.rate_limit_dict(info))
    else:
        say(f"rate limit {info.name} of tenant {tenant}: {info.rate} (burst {info.burst})")


@limits_cli.command("delete")
@handled
def limits_delete(name: Name, tenant: Tenant = "default", json_out: JsonOut = False,
                  database_url: DatabaseUrl = None) -> None:
    """Remove the run-time limit NAME: the rate its tasks declare applies again."""
    from hora import wire

    with open_app(database_url, tenant_id=tenant) as app:
        deleted = app.rate_limits.delete(name)
        left = app.rate_limits.in_force(name)
    if json_out:
        print_json({"name": name, "deleted": deleted,
                    "in_force": None if left is None else wire.rate_limit_dict(left)})
        return
    after = "no limit applies" if left is None else f"the declared {left.rate} applies"
    done = "deleted the run-time" if deleted else "there was no run-time"
    say(f"{done} rate limit {name} of tenant {tenant}; {after}")
