"""The ``hora`` command: run workers and the server, migrate, enqueue, inspect and steer jobs,
the DLQ, schedules, workflows, tenants and API keys.

The layout (each sub-module imports ``_common``, never this package, so there is no cycle)::

    hora.cli              the typer app: assembles the groups below; ``main``
    ├── _common           options, BadInput, input parsing, errors, output helpers
    ├── _lazy             LazyGroups: a group is built when used, not for every call
    ├── serve             hora serve | worker | migrate
    ├── jobs              hora enqueue, hora jobs list | show | cancel | wait
    ├── dlq               hora dlq list | show | replay | discard
    ├── schedules         hora schedules ...
    ├── workflows         hora workflows ... (rich views in _workflow_views)
    ├── tasks             hora tasks list (the registry)
    ├── tenants           hora tenants ...
    ├── keys              hora keys ...
    ├── prune             hora prune
    ├── workers           hora workers list, hora queues list | pause | resume
    ├── limits            hora limits list | set | delete (rate limits by name)
    ├── recipients        hora recipients list | get | upsert | delete | import | unsubscribe-link
    ├── templates         hora templates list | put | show | delete | preview
    ├── notify            hora notify send | list | show
    ├── demo              hora demo
    └── completion        hora completion bash|zsh|fish

Importing this package imports only typer and hora's leaf modules (errors, limits, states),
and ``hora --help`` builds the five top-level commands, not the forty in the groups, so it
stays fast; each command imports the app, the store, rich or the API server when it runs.
See ``bench/cli.py`` and ``tests/unit/test_imports.py``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from hora.cli import (
    completion,
    demo,
    dlq,
    jobs,
    keys,
    limits,
    notify,
    prune,
    recipients,
    schedules,
    serve,
    tasks,
    templates,
    tenants,
    workers,
    workflows,
)
from hora.cli._common import BadInput, parse_duration, parse_instant, parse_payload
from hora.cli._lazy import LazyGroups

__all__ = ["BadInput", "cli", "main", "parse_duration", "parse_instant", "parse_payload"]


class HoraCommand(LazyGroups):
    """``hora``: its command groups are built when used (see ``_lazy``); the order here is
    the order of ``hora --help``, after the commands registered on ``cli`` below."""

    lazy_groups = {
        "jobs": jobs.jobs_cli,
        "dlq": dlq.dlq_cli,
        "schedules": schedules.schedules_cli,
        "workflows": workflows.workflows_cli,
        "tasks": tasks.tasks_cli,
        "queues": workers.queues_cli,
        "workers": workers.workers_cli,
        "limits": limits.limits_cli,
        "recipients": recipients.recipients_cli,
        "templates": templates.templates_cli,
        "notify": notify.notify_cli,
        "keys": keys.keys_cli,
        "tenants": tenants.tenants_cli,
    }


cli = typer.Typer(name="hora", help="Durable jobs, retries and dead letters on SQLite or "
                  "PostgreSQL.", no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False, rich_markup_mode=None, cls=HoraCommand)



def show_version(value: bool) -> None:
    if value:
        from hora import __version__

        typer.echo(f"hora {__version__}")
        raise typer.Exit()


@cli.callback()
def root(version: Annotated[bool, typer.Option(
        "--version", callback=show_version, is_eager=True,
        help="Print hora's version and exit.")] = False) -> None:
    """Durable jobs, retries and dead letters on SQLite or PostgreSQL."""


cli.command("worker")(serve.worker)
cli.command("migrate")(serve.migrate)
cli.command("enqueue")(jobs.enqueue)
cli.command("demo")(demo.demo)
cli.command("serve")(serve.serve)
cli.command("completion")(completion.completion)
cli.command("prune")(prune.prune)


def main() -> None:
    """The console script ``hora`` (``[project.scripts]`` in pyproject.toml)."""
    completion.init_if_completing()
    cli()
