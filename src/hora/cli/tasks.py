"""``hora tasks``: the tasks and workflows workers registered (``hora.registry``)."""

from __future__ import annotations

from typing import Annotated

import typer

from hora.cli._common import (
    BadInput,
    DatabaseUrl,
    JsonOut,
    console,
    group,
    handled,
    open_app,
    print_json,
    say,
)

tasks_cli = group("The tasks and workflows workers registered, with defaults and payloads.")


@tasks_cli.command("list")
@handled
def tasks_list(
    kind: Annotated[str | None, typer.Option(
        "--kind", help="Only tasks or only workflows: task | workflow.")] = None,
    database_url: DatabaseUrl = None,
    json_out: JsonOut = False,
) -> None:
    """Registered tasks and workflows, by kind then name: their queue, priority, max
    attempts, timeout and parameters (--json: with the full JSON Schema of the payload)."""
    from rich.table import Table

    from hora import wire

    if kind is not None and kind not in ("task", "workflow"):
        raise BadInput(f"--kind must be task or workflow, not {kind!r}")
    with open_app(database_url, read_only=True) as app:
        items = app.registered_tasks(kind=kind)
    if json_out:
        print_json({"items": [wire.registered_task_dict(t) for t in items]})
        return
    if not items:
        say("no registered tasks (a worker registers its app's tasks as it starts)")
        return
    table = Table("kind", "name", "queue", "priority", "max attempts", "timeout",
                  "parameters", "updated")
    for t in items:
        props = t.payload_schema.get("properties", {})
        required = set(t.payload_schema.get("required", ()))
        params = ", ".join(p + ("" if p in required else "?") for p in props)
        if t.payload_schema.get("additionalProperties"):
            params = f"{params}, **" if params else "**"
        table.add_row(t.kind, t.name, t.queue, str(t.priority), str(t.max_attempts),
                      "-" if t.timeout is None else f"{t.timeout:g}s", params,
                      wire.iso_z(t.updated_at) or "")
    console().print(table)
