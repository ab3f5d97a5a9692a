"""Rich views of workflows and approval requests for ``hora workflows``.

Kept apart from the commands so that building the command tree (``hora --help``) does not
import rich: the commands import this module when they print.
"""

from __future__ import annotations

import json
from typing import Any

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from hora import render
from hora.cli._common import id_column
from hora.models import ApprovalRequest, HistoryEntry, Signal, Workflow


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def waiting_for(w: Workflow) -> str:
    """What a sleeping or waiting workflow waits for, in words ("" when it does not)."""
    if w.wait_kind is None:
        return ""
    until = f" until {render.when(w.wait_until)}" if w.wait_until else ""
    if w.wait_kind == "signal":
        return f"signal {w.wait_name!r}{until}"
    if w.wait_kind == "approval":
        return f"approval {w.wait_name!r}{until}"
    if w.wait_kind == "child":
        return f"child workflow {w.wait_name}"
    return f"{w.wait_name or 'timer'}{until}"


def workflows_table(items: list[Workflow], *, title: str | None = None) -> Table:
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    id_column(table, "id", [w.id for w in items])
    table.add_column("name", overflow="fold", min_width=8)
    table.add_column("state", no_wrap=True)
    table.add_column("waiting for", overflow="fold")
    table.add_column("created (UTC)", no_wrap=True)
    for w in items:
        state = render.state_text(w.state)
        if w.cancel_requested and not w.is_final:
            state.append(" (cancel requested)", style="dim")
        table.add_row(Text(w.id), Text(w.name), state, Text(waiting_for(w)),
                      render.when(w.created_at))
    return table


def approvals_table(items: list[ApprovalRequest]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    id_column(table, "request id", [a.id for a in items])
    table.add_column("workflow", overflow="fold")
    table.add_column("name", overflow="fold")
    table.add_column("state", no_wrap=True)
    table.add_column("context", overflow="fold")
    table.add_column("deadline (UTC)", no_wrap=True)
    table.add_column("requested (UTC)", no_wrap=True)
    for a in items:
        state = render.state_text(a.state)
        if a.decided_by:
            state.append(f" by {a.decided_by}", style="dim")
        table.add_row(Text(a.id), Text(f"{a.workflow_id} ({a.workflow_name})"), Text(a.name),
                      state, Text("" if a.context is None else _compact(a.context)),
                      render.when(a.deadline) or "no deadline", render.when(a.created_at))
    return table


def workflow_detail(w: Workflow, history: list[HistoryEntry], signals: list[Signal]) -> Group:
    """The workflow, then its history (the journal, by position), then its signals."""
    fields = Table.grid(padding=(0, 2))
    fields.add_column(style="bold")
    fields.add_column()
    err = "" if w.error is None else f"{w.error.type}: {w.error.message}"
    cancel = ""
    if w.cancel_requested:
        cancel = f"requested: {w.cancel_reason or 'cancelled on request'}"
        if not w.is_final:
            cancel += " (a worker running the workflow carries it out)"
    rows: list[tuple[str, str | Text]] = [
        ("id", w.id), ("name", w.name), ("state", render.state_text(w.state)),
        ("waiting for", waiting_for(w)), ("cancel", cancel),
        ("args", _compact(w.args)),
        ("result", "" if w.result is None else _compact(w.result)),
        ("error", err), ("compensation", w.compensation or ""),
        ("correlation id", w.correlation_id or ""), ("parent", w.parent_id or ""),
        ("run", "" if w.run_owner is None
         else f"{w.run_owner} until {render.when(w.run_until)}"),
        ("created", render.when(w.created_at)), ("updated", render.when(w.updated_at)),
        ("finished", render.when(w.finished_at)),
    ]
    for name, value in rows:
        if value:
            fields.add_row(name, value if isinstance(value, Text) else Text(value))
    parts: list[Any] = [fields]
    table = Table(title="history", title_justify="left", box=box.SIMPLE_HEAD)
    for col in ("seq", "kind"):
        table.add_column(col, no_wrap=True, justify="right" if col == "seq" else "left")
    table.add_column("name", overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("attempts", no_wrap=True, justify="right")
    for col in ("started (UTC)", "finished (UTC)", "deadline (UTC)"):
        table.add_column(col, no_wrap=True)
    table.add_column("error", overflow="fold")
    for h in history:
        herr = "" if h.error is None else f"{h.error.type}: {h.error.message}"
        table.add_row(str(h.seq), h.kind, Text(h.name), h.status, str(h.attempts or ""),
                      render.when(h.started_at), render.when(h.finished_at),
                      render.when(h.deadline), Text(herr))
    parts.append(table if history else Text("history: nothing journaled yet", style="dim"))
    if signals:
        sig = Table(title="signals", title_justify="left", box=box.SIMPLE_HEAD)
        sig.add_column("sent (UTC)", no_wrap=True)
        sig.add_column("name", overflow="fold")
        sig.add_column("actor", overflow="fold")
        sig.add_column("comment", overflow="fold")
        sig.add_column("payload", overflow="fold")
        sig.add_column("taken", no_wrap=True)
        for s in signals:
            taken = "waiting" if s.consumed_seq is None else f"by #{s.consumed_seq}"
            sig.add_row(render.when(s.sent_at), Text(s.name), Text(s.actor or ""),
                        Text(s.comment or ""), Text(_compact(s.payload)), taken)
        parts.append(sig)
    return Group(*parts)
