"""``hora prune``: delete old finished records now, by the retention policy (what the
scheduler role does every minute), or show what would go with ``--dry-run``."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import typer

from hora.cli._common import (
    BadInput,
    DatabaseUrl,
    JsonOut,
    handled,
    open_app,
    print_json,
    say,
)

#: Counting what a prune would delete stops at this many per kind and tenant.
COUNT_LIMIT = 10_000_000


def stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


@handled
def prune(
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Count what would be pruned; delete nothing.")] = False,
    older_than: Annotated[str | None, typer.Option(
        "--older-than", help="One age for every kind and tenant (e.g. 14d, 12h), instead of "
        "the retention policy ($HORA_RETENTION over the defaults, tenants' overrides).")
    ] = None,
    kind: Annotated[str, typer.Option(
        "--kind", help="What to prune: jobs, dead, ticks, workflows, idempotency, a "
        "comma-separated list, or all.")] = "all",
    tenant: Annotated[str | None, typer.Option(
        "--tenant", help="Only this tenant's records (by its own retention).")] = None,
    batch_size: Annotated[int, typer.Option(
        "--batch-size", help="Records deleted per transaction.")] = 1000,
    duty: Annotated[float, typer.Option(
        "--duty", help="Share of the time the prune may hold the store (0-1]: it rests "
        "between batches so the workers' writes come first (the scheduler role uses "
        "0.1).")] = 1.0,
    yes: Annotated[bool, typer.Option(
        "--yes", "-y", help="Do not ask before deleting.")] = False,
    json_out: JsonOut = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Prune old finished jobs (with attempts and events), dead letters, schedule ticks,
    finished workflows and idempotency records, in batches.

    Asks before deleting; --yes skips the question (required without a terminal)."""
    from hora.retention import Retention, parse_age, policy_from_env, resolve_kinds

    if not 1 <= batch_size <= 100_000:
        raise BadInput(f"--batch-size {batch_size} must be between 1 and 100000")
    if not 0 < duty <= 1:
        raise BadInput(f"--duty {duty} must be more than 0 and at most 1")
    kinds = resolve_kinds(kind)
    age = None if older_than is None else parse_age(older_than, allow_off=False)
    if tenant is not None and not tenant.strip():
        raise BadInput("--tenant must not be empty")
    policy = policy_from_env(os.environ)
    with open_app(database_url, read_only=True) as app:  # never creates a database
        retention = Retention(app.store, app.clock, policy=policy, batch_size=batch_size,
                              duty=duty)
        counted = retention.count(kinds, tenant_id=tenant, older_than=age,
                                  limit=COUNT_LIMIT)
        if dry_run:
            _report(counted.counts, json_out, dry_run=True)
            return
        total = counted.total
        if total == 0:
            _report(counted.counts, json_out, dry_run=False)
            return
        _confirm(counted.counts, yes)
        done = _prune(retention, kinds, tenant, age, total)
    _report(done.counts, json_out, dry_run=False, seconds=done.seconds)


def _confirm(counts: dict[str, int], yes: bool) -> None:
    if yes:
        return
    what = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    if not stdin_is_terminal():
        raise BadInput(f"prune would delete {what}; add --yes to confirm (stdin is not a "
                       "terminal, so hora cannot ask)")
    if not typer.confirm(f"delete {what}?", default=False):
        typer.echo("aborted", err=True)
        raise typer.Exit(1)


def _prune(retention: Any, kinds: list[str], tenant: str | None, age: float | None,
           total: int) -> Any:
    if not sys.stdout.isatty():
        return retention.prune(kinds, tenant_id=tenant, older_than=age)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress("[progress.description]{task.description}", BarColumn(),
                  MofNCompleteColumn(), TimeRemainingColumn(), transient=True) as bar:
        task = bar.add_task("pruning", total=total)

        def advance(kind: str, rows: int) -> None:
            bar.update(task, advance=rows, description=f"pruning {kind}")

        return retention.prune(kinds, tenant_id=tenant, older_than=age, on_batch=advance)


def _report(counts: dict[str, int], json_out: bool, *, dry_run: bool,
            seconds: float | None = None) -> None:
    if json_out:
        doc: dict[str, Any] = {"dry_run": dry_run, "counts": counts,
                               "total": sum(counts.values())}
        if seconds is not None:
            doc["seconds"] = round(seconds, 3)
        print_json(doc)
        return
    verb = "would prune" if dry_run else "pruned"
    if not any(counts.values()):
        say("nothing to prune" if dry_run or seconds is None else "pruned nothing")
        return
    for k, n in counts.items():
        say(f"{verb} {n} {k}")
