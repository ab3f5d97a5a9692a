"""``hora workflows``: start, list, show, signal, approve, reject, cancel and the approvals
inbox, in-process against a temp SQLite file. The workflows of ``tests.cli.workflow_app`` run
on an app pointed at the same file (``run_until_idle``), as a separate worker would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hora.testing import run_until_idle
from tests.cli.test_cli import Hora as Cli
from tests.cli.test_cli import assert_one_line_error
from tests.cli.workflow_app import build


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def run_workflows(cli: Cli) -> None:
    app = build(cli.url)
    try:
        run_until_idle(app, poll_interval=0.01)
    finally:
        app.close()


def started(cli: Cli, workflow_id: str, amount: int = 42) -> dict[str, Any]:
    wf: dict[str, Any] = cli.json("workflows", "start", "cli.expense", "--args",
                                  f'{{"amount": {amount}}}', "--id", workflow_id)
    run_workflows(cli)
    return wf


def test_start_approve_and_show_the_whole_story(cli: Cli) -> None:
    wf = cli.json("workflows", "start", "cli.expense", "--args", '{"amount": 42}', "--id",
                  "e1", "--correlation-id", "trip-9")
    assert wf["id"] == "e1" and wf["state"] == "running" and wf["args"] == {"amount": 42}
    assert wf["correlation_id"] == "trip-9"
    said = cli.ok("workflows", "start", "cli.expense", "--args", '{"amount": 42}', "--id",
                  "e1").stdout
    assert "workflow e1 (cli.expense) is running" in said  # the same id: the same workflow
    run_workflows(cli)

    inbox = cli.json("workflows", "approvals")
    (request,) = inbox["items"]
    assert request["workflow_id"] == "e1" and inbox["next_cursor"] is None
    assert (request["name"], request["state"], request["context"]) == (
        "approval", "pending", {"amount": 42})
    assert request["deadline"] and request["workflow_name"] == "cli.expense"
    table = cli.ok("workflows", "approvals").stdout
    for needle in (request["id"], "e1 (cli.expense)", "approval", '{"amount": 42}', "pending"):
        assert needle in table, needle
    assert [w["id"] for w in cli.json("workflows", "list", "--state", "waiting")["items"]] == [
        "e1"]
    assert cli.json("workflows", "list", "--name", "other.flow")["items"] == []
    assert [w["id"] for w in cli.json("workflows", "list", "--correlation-id", "trip-9")[
        "items"]] == ["e1"]
    shown = cli.ok("workflows", "show", "e1").stdout
    assert "waiting" in shown and "approval 'approval' until" in shown
    assert "tests.cli.workflow_app.book" in shown and "pending" in shown

    said = cli.ok("workflows", "approve", request["id"], "--actor", "ann", "--comment",
                  "within budget").stdout
    assert f"approved approval request {request['id']} ('approval' of workflow e1) as ann" in (
        " ".join(said.split()))
    # Decided, it leaves the inbox at once; approving it again is the same decision.
    assert cli.json("workflows", "approvals")["items"] == []
    again = cli.json("workflows", "approve", request["id"], "--actor", "bob")
    assert (again["state"], again["decided_by"], again["comment"]) == (
        "approved", "ann", "within budget")
    assert_one_line_error(cli("workflows", "reject", request["id"], "--actor", "bob"),
                          "is approved, expected pending")
    decided = cli.json("workflows", "approvals", "--state", "approved")["items"]
    assert [a["id"] for a in decided] == [request["id"]]
    assert "approved by ann" in cli.ok("workflows", "approvals", "--state", "approved").stdout
    run_workflows(cli)

    done = cli.json("workflows", "show", "e1")
    assert done["state"] == "completed"
    assert done["result"] == {"booked": 42, "by": "ann", "comment": "within budget"}
    assert [(h["seq"], h["kind"], h["status"]) for h in done["history"]] == [
        (1, "step", "done"), (2, "rollback", "done"), (3, "approval", "done")]
    assert done["signals"] == []
    text = cli.ok("workflows", "show", "e1").stdout
    for needle in ("completed", "history", "seq", "kind", "attempts", "deadline (UTC)",
                   "approval", '"by": "ann"'):
        assert needle in text, needle
    assert "no pending approval requests" in cli.ok("workflows", "approvals").stdout
    # A finished workflow takes no more decisions: one line, exit 2.
    assert_one_line_error(cli("workflows", "approve", "e1", "--actor", "ann"),
                          "workflow e1 is completed")
    assert_one_line_error(cli("workflows", "cancel", "e1"), "is completed")


def test_a_rejection_fails_it_and_show_says_why_and_what_was_undone(cli: Cli) -> None:
    started(cli, "e2", amount=5)
    # By workflow id: its single pending request.
    rejected = cli.json("workflows", "reject", "e2", "--actor", "bob", "--comment",
                        "no receipt")
    assert (rejected["workflow_id"], rejected["state"], rejected["decided_by"]) == (
        "e2", "rejected", "bob")
    assert rejected["comment"] == "no receipt"
    run_workflows(cli)
    text = cli.ok("workflows", "show", "e2").stdout
    assert "failed" in text and "RuntimeError: expense of 5 rejected" in text
    assert "compensation" in text and "compensate" in text
    failed = cli.json("workflows", "show", "e2")
    assert failed["compensation"] == "completed"
    assert failed["history"][-1]["output"] == "unbooked 5"


def test_cancel_then_a_worker_compensates(cli: Cli) -> None:
    started(cli, "e3")
    said = cli.ok("workflows", "cancel", "e3", "--reason", "trip cancelled").stdout
    assert "cancellation of workflow e3 requested" in said
    asked = cli.json("workflows", "show", "e3")
    assert asked["cancel_requested"] is True and asked["state"] == "waiting"
    assert "requested: trip cancelled" in cli.ok("workflows", "show", "e3").stdout
    assert "cancel requested" in cli.ok("workflows", "list").stdout
    run_workflows(cli)
    cancelled = cli.json("workflows", "show", "e3")
    assert cancelled["state"] == "cancelled" and cancelled["compensation"] == "completed"
    assert [w["id"] for w in cli.json("workflows", "list", "--state", "cancelled")[
        "items"]] == ["e3"]
    assert_one_line_error(cli("workflows", "cancel", "e3"), "workflow e3 is cancelled")


def test_signals_wait_in_order_with_their_payload(cli: Cli) -> None:
    started(cli, "e5")
    sig = cli.json("workflows", "signal", "e5", "nudge", "--payload", '[1, "two"]',
                   "--actor", "ops", "--comment", "ping")
    assert sig["name"] == "nudge" and sig["payload"] == [1, "two"]
    assert sig["actor"] == "ops" and sig["comment"] == "ping" and sig["consumed_seq"] is None
    said = cli.ok("workflows", "signal", "e5", "nudge").stdout
    assert "sent signal 'nudge' to workflow e5" in said
    run_workflows(cli)
    shown = cli.json("workflows", "show", "e5")
    assert [(s["name"], s["payload"]) for s in shown["signals"]] == [
        ("nudge", [1, "two"]), ("nudge", None)]
    assert shown["state"] == "waiting"  # it waits for an approval, not "nudge"
    assert shown["wait_kind"] == "approval"
    assert "waiting" in cli.ok("workflows", "show", "e5").stdout


def test_lists_page_with_a_cursor(cli: Cli) -> None:
    for n in range(3):
        cli.ok("workflows", "start", "cli.expense", "--id", f"p{n}")
    first = cli.json("workflows", "list", "--limit", "2")
    assert [w["id"] for w in first["items"]] == ["p2", "p1"] and first["next_cursor"]
    rest = cli.json("workflows", "list", "--limit", "2", "--cursor", first["next_cursor"])
    assert [w["id"] for w in rest["items"]] == ["p0"] and rest["next_cursor"] is None
    assert "more: pass --cursor" in cli.ok("workflows", "list", "--limit", "2").stdout
    assert "no workflows" in cli.ok("workflows", "list", "--state", "failed").stdout


def test_bad_input_is_one_line_and_exit_2(cli: Cli) -> None:
    cli.ok("workflows", "start", "cli.expense", "--id", "e6")
    assert_one_line_error(cli("workflows", "show", "nope"), "workflow nope not found")
    assert_one_line_error(cli("workflows", "list", "--state", "sleepy"), "state 'sleepy'")
    assert_one_line_error(cli("workflows", "start", "cli.expense", "--args", "[1]"),
                          "--args must be a JSON object")
    assert_one_line_error(cli("workflows", "start", "cli.expense", "--args", "{bad"),
                          "--args is not valid JSON")
    assert_one_line_error(cli("workflows", "start", "cli.expense", "--id", "x" * 201),
                          "workflow_id must be 1-200 characters")
    assert_one_line_error(cli("workflows", "signal", "e6", "go", "--payload", "{bad"),
                          "--payload is not valid JSON")
    assert_one_line_error(cli("workflows", "signal", "nope", "go"), "not found")
    assert_one_line_error(cli("workflows", "approve", "nope", "--actor", "a"), "not found")
    assert_one_line_error(cli("workflows", "reject", "nope", "--actor", "a"), "not found")
    assert_one_line_error(cli("workflows", "cancel", "nope"), "not found")
    assert_one_line_error(cli("workflows", "list", "--cursor", "nonsense"), "cursor")
    assert_one_line_error(cli("workflows", "list", "--limit", "0"), "--limit 0")
    assert_one_line_error(cli("workflows", "approvals", "--limit", "1001"), "--limit 1001")
    assert_one_line_error(cli("workflows", "approvals", "--state", "waiting"),
                          "state 'waiting'")
    missing_actor = cli("workflows", "approve", "e6")
    assert missing_actor.code == 2 and "--actor" in missing_actor.stderr
    # No worker ran e6: it asks for no approval yet, and a decision says so.
    assert_one_line_error(cli("workflows", "approve", "e6", "--actor", "ann"),
                          "workflow e6 has no pending approval request")
    assert cli.json("workflows", "approvals", "--state", "approved")["items"] == []


def test_the_worker_command_runs_workflows(cli: Cli) -> None:
    cli.ok("workflows", "start", "cli.expense", "--args", '{"amount": 7}', "--id", "e7")
    cli.ok("worker", "--app", "tests.cli.workflow_app:app", "--until-idle",
           "--log-level", "WARNING")
    assert cli.json("workflows", "show", "e7")["state"] == "waiting"
    cli.ok("workflows", "approve", "e7", "--actor", "ann")
    cli.ok("worker", "--app", "tests.cli.workflow_app:app", "--until-idle",
           "--log-level", "WARNING")
    done = cli.json("workflows", "show", "e7")
    assert done["state"] == "completed" and done["result"]["by"] == "ann"
