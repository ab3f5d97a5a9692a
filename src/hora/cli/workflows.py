"""``hora workflows``: start, list and inspect durable workflows; signal, approve, reject and
cancel them; the approvals inbox.

Registered on the main ``hora`` command by ``hora.cli``; the same conventions apply
(``--database-url``, ``--json``, one-line errors with exit code 2). The CLI does not import
your code: it reads and writes the store, and your workers advance the workflows.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

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
    open_app,
    print_json,
    say,
)
from hora.limits import MAX_JSON_DEPTH

if TYPE_CHECKING:
    from rich.table import Table

    from hora.models import ApprovalRequest, Page, Signal, Workflow

T = TypeVar("T")

workflows_cli = group("Durable workflows: start, list, show (with the full history), signal, "
                      "approve, reject, cancel, and the approvals inbox.")

WorkflowId = Annotated[str, typer.Argument(help="Workflow id.")]
RequestId = Annotated[str, typer.Argument(
    help="Approval request id (from `hora workflows approvals`), or a workflow id: its "
    "single pending request.")]
Actor = Annotated[str, typer.Option("--actor", help="Who decides (kept for the audit trail).")]
Comment = Annotated[str | None, typer.Option("--comment", help="Why (kept with the decision).")]
ApprovalName = Annotated[str | None, typer.Option(
    "--name", help="By workflow id: only its requests of this name.")]


def parse_json_value(text: str, option: str) -> Any:
    """Any JSON value (a signal's payload need not be an object)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise BadInput(f"{option} is not valid JSON: {e}") from None
    except RecursionError:
        raise BadInput(f"{option}: JSON nested deeper than {MAX_JSON_DEPTH} levels") from None


def check_limit(limit: int) -> int:
    if not 1 <= limit <= 1000:
        raise BadInput(f"--limit {limit} must be between 1 and 1000")
    return limit


def _print_page(page: Page[T], json_out: bool, what: str, as_dict: Callable[[T], Any],
                table: Callable[[list[T]], Table]) -> None:
    if json_out:
        print_json({"items": [as_dict(item) for item in page.items],
                    "next_cursor": page.next_cursor})
        return
    c = console()
    if not page.items:
        c.print(f"no {what}")
        return
    c.print(table(page.items))
    if page.next_cursor:
        c.print(f"more: pass --cursor {page.next_cursor}")


def _print_workflow(w: Workflow, json_out: bool, message: str) -> None:
    from hora import wire

    if json_out:
        print_json(wire.workflow_dict(w))
    else:
        say(message)


def _print_signal(s: Signal, json_out: bool, message: str) -> None:
    from hora import wire

    if json_out:
        print_json(wire.signal_dict(s))
    else:
        say(message)


def _print_decision(a: ApprovalRequest, json_out: bool) -> None:
    from hora import wire

    if json_out:
        print_json(wire.approval_dict(a))
    else:
        say(f"{a.state} approval request {a.id} ({a.name!r} of workflow {a.workflow_id}) "
            f"as {a.decided_by}")


@workflows_cli.command("start")
@handled
def workflows_start(
    name: Annotated[str, typer.Argument(help="The workflow's registered name.")],
    args: Annotated[str, typer.Option("--args", "-a", help="JSON object: its arguments.")] = "{}",
    workflow_id: Annotated[str | None, typer.Option(
        "--id", help="Your id for it: starting again with it returns the same workflow.")
    ] = None,
    correlation_id: Annotated[str | None, typer.Option(
        "--correlation-id", help="Default: the workflow id.")] = None,
    allow_unregistered: Annotated[bool, typer.Option(
        "--allow-unregistered",
        help="Start NAME although no worker registered it (hora tasks list).")] = False,
    database_url: DatabaseUrl = None, json_out: JsonOut = False,
) -> None:
    """Start a workflow by name (your code is not imported: a worker that knows NAME runs it).
    A name no worker registered, or args that do not fit its parameters, are refused."""
    data = parse_json_value(args, "--args")
    if not isinstance(data, dict):
        raise BadInput("--args must be a JSON object of the workflow's arguments, "
                       "e.g. '{\"invoice_id\": \"inv-1\"}'")
    with open_app(database_url) as app:
        w = app.start_workflow(name, data, workflow_id=workflow_id,
                               correlation_id=correlation_id,
                               allow_unregistered=allow_unregistered)
    _print_workflow(w, json_out, f"workflow {w.id} ({w.name}) is {w.state}")


@workflows_cli.command("list")
@handled
def workflows_list(
    state: Annotated[list[str] | None, typer.Option(
        "--state", "-s", help="Only workflows in this state (repeat for several).")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Only this workflow.")] = None,
    correlation_id: Annotated[str | None, typer.Option(
        "--correlation-id", help="Only this correlation id.")] = None,
    limit: Limit = 50, cursor: Cursor = None, database_url: DatabaseUrl = None,
    json_out: JsonOut = False,
) -> None:
    """Workflows, newest first."""
    from hora import wire
    from hora.cli._workflow_views import workflows_table

    with open_app(database_url, read_only=True) as app:
        page = app.list_workflows(state=state or None, name=name,
                                  correlation_id=correlation_id, limit=check_limit(limit),
                                  cursor=cursor)
    _print_page(page, json_out, "workflows", wire.workflow_dict, workflows_table)


@workflows_cli.command("show")
@handled
def workflows_show(workflow_id: WorkflowId, database_url: DatabaseUrl = None,
                   json_out: JsonOut = False) -> None:
    """One workflow: its state, what it waits for and until when, its result or error, its
    compensation, then its full history and the signals sent to it."""
    from hora import wire
    from hora.cli._workflow_views import workflow_detail

    with open_app(database_url, read_only=True) as app:
        w = app.get_workflow(workflow_id)
        history = app.workflow_history(workflow_id)
        signals = app.workflow_signals(workflow_id)
    if json_out:
        print_json(wire.workflow_dict(w, history=history, signals=signals))
    else:
        console().print(workflow_detail(w, history, signals))


@workflows_cli.command("wait")
@handled
def workflows_wait(
    workflow_id: WorkflowId,
    timeout: Annotated[float, typer.Option(
        "--timeout", "-t", help="Seconds to wait at most (0: just look).")] = 30.0,
    database_url: DatabaseUrl = None, json_out: JsonOut = False,
) -> None:
    """Wait until a workflow ends, then show it. Exit codes as ``hora jobs wait``: 0 it
    completed, 1 it failed or was cancelled, 2 bad input, 3 it had not ended after
    --timeout seconds."""
    from hora import wire
    from hora.cli._workflow_views import workflow_detail
    from hora.waiting import MAX_WAIT

    if not 0 <= timeout <= MAX_WAIT:
        raise BadInput(f"--timeout must be between 0 and {MAX_WAIT:g} seconds")
    with open_app(database_url, read_only=True) as app:
        w, done = app.workflows.poll(workflow_id, timeout)
        history = app.workflow_history(workflow_id)
        signals = app.workflow_signals(workflow_id)
    if json_out:
        print_json({**wire.workflow_dict(w, history=history, signals=signals), "done": done})
    else:
        console().print(workflow_detail(w, history, signals))
        if not done:
            say(f"workflow {w.id} is still {w.state} after {timeout:g}s", "yellow")
    if not done:
        raise typer.Exit(3)
    if w.state != "completed":
        raise typer.Exit(1)


@workflows_cli.command("signal")
@handled
def workflows_signal(
    workflow_id: WorkflowId,
    name: Annotated[str, typer.Argument(help="Signal name, as the workflow waits for it.")],
    payload: Annotated[str | None, typer.Option(
        "--payload", "-p", help="Any JSON value [default: null].")] = None,
    actor: Annotated[str | None, typer.Option("--actor", help="Who sends it.")] = None,
    comment: Comment = None, database_url: DatabaseUrl = None, json_out: JsonOut = False,
) -> None:
    """Send a signal; it waits, in order, until the workflow asks for it."""
    data = None if payload is None else parse_json_value(payload, "--payload")
    with open_app(database_url) as app:
        s = app.signal_workflow(workflow_id, name, data, actor=actor, comment=comment)
    _print_signal(s, json_out, f"sent signal {s.name!r} to workflow {workflow_id} ({s.id})")


@workflows_cli.command("approve")
@handled
def workflows_approve(request: RequestId, actor: Actor, comment: Comment = None,
                      name: ApprovalName = None, database_url: DatabaseUrl = None,
                      json_out: JsonOut = False) -> None:
    """Approve an approval request: its wait_for_approval gets approved=True, with actor and
    comment. Approving it again is the same decision; rejecting it after is refused."""
    with open_app(database_url) as app:
        decided = app.approve(request, actor=actor, comment=comment, name=name)
    _print_decision(decided, json_out)


@workflows_cli.command("reject")
@handled
def workflows_reject(request: RequestId, actor: Actor, comment: Comment = None,
                     name: ApprovalName = None, database_url: DatabaseUrl = None,
                     json_out: JsonOut = False) -> None:
    """Reject an approval request: its wait_for_approval gets approved=False."""
    with open_app(database_url) as app:
        decided = app.reject(request, actor=actor, comment=comment, name=name)
    _print_decision(decided, json_out)


@workflows_cli.command("cancel")
@handled
def workflows_cancel(
    workflow_id: WorkflowId,
    reason: Annotated[str, typer.Option("--reason", help="Why, kept on the workflow.")
                      ] = "cancelled on request",
    database_url: DatabaseUrl = None, json_out: JsonOut = False,
) -> None:
    """Ask a workflow to stop: its wait ends, its compensations run, it ends cancelled."""
    with open_app(database_url) as app:
        w = app.cancel_workflow(workflow_id, reason)
    _print_workflow(w, json_out, f"cancellation of workflow {w.id} requested (it is "
                    f"{w.state}; a worker running it stops it and runs its compensations)")


@workflows_cli.command("terminate")
@handled
def workflows_terminate(
    workflow_id: WorkflowId,
    reason: Annotated[str, typer.Option("--reason", help="Why, kept on the workflow.")
                      ] = "terminated on request",
    database_url: DatabaseUrl = None, json_out: JsonOut = False,
) -> None:
    """End a workflow now: no compensation runs, its approvals and timers are cancelled
    (works when no worker knows its name, unlike cancel)."""
    with open_app(database_url) as app:
        w = app.terminate_workflow(workflow_id, reason)
    _print_workflow(w, json_out, f"workflow {w.id} terminated (it is {w.state})")


@workflows_cli.command("approvals")
@handled
def workflows_approvals(
    state: Annotated[list[str] | None, typer.Option(
        "--state", "-s", help="Requests in this state (repeat for several) "
        "[default: pending].")] = None,
    workflow_id: Annotated[str | None, typer.Option(
        "--workflow", help="Only this workflow's requests.")] = None,
    limit: Limit = 50, cursor: Cursor = None, database_url: DatabaseUrl = None,
    json_out: JsonOut = False,
) -> None:
    """The inbox: approval requests (pending ones unless --state), newest first, with their
    workflow, context and deadline. Decide one with `approve`/`reject` and its id."""
    from hora import wire
    from hora.cli._workflow_views import approvals_table

    with open_app(database_url, read_only=True) as app:
        page = app.approvals(state=state or "pending", workflow_id=workflow_id,
                             limit=check_limit(limit), cursor=cursor)
    _print_page(page, json_out, "pending approval requests" if not state
                else "approval requests", wire.approval_dict, approvals_table)
