"""``hora prune`` and ``hora jobs list --include-internal``: each runs the real command."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hora import FakeClock
from hora import Hora as App
from hora.testing import run_until_idle
from tests.cli.test_cli import Hora, assert_one_line_error


@pytest.fixture
def hora(tmp_path: Path) -> Hora:
    return Hora(tmp_path)


def finished_long_ago(hora: Hora, n: int, *, days_ago: float = 30) -> list[str]:
    """``n`` jobs that succeeded ``days_ago`` days before now (the CLI's system clock)."""
    clock = FakeClock(datetime.now(UTC) - timedelta(days=days_ago))
    app = App(hora.url, clock=clock)
    try:
        @app.task(name="cli.ok")
        def ok(n: int) -> int:
            return n

        ids = [app.enqueue("cli.ok", {"n": i}).id for i in range(n)]
        run_until_idle(app)
        return ids
    finally:
        app.close()


def test_dry_run_counts_and_writes_nothing(hora: Hora) -> None:
    finished_long_ago(hora, 3)
    finished_long_ago(hora, 2, days_ago=1)
    out = hora.json("prune", "--dry-run")
    assert out["dry_run"] is True
    assert out["counts"]["jobs"] == 3 and out["total"] == 3
    assert len(hora.jobs()) == 5
    text = hora.ok("prune", "--dry-run").stdout
    assert "would prune 3 jobs" in text
    assert hora.json("prune", "--dry-run", "--older-than", "12h", "--kind", "jobs")[
        "counts"] == {"jobs": 5}


def test_prune_asks_unless_yes_then_deletes_in_batches(hora: Hora) -> None:
    finished_long_ago(hora, 5)
    young = finished_long_ago(hora, 1, days_ago=1)
    assert_one_line_error(hora("prune"), "--yes")  # no terminal to ask on
    assert len(hora.jobs()) == 6
    out = hora.json("prune", "--yes", "--batch-size", "2")
    assert out["counts"]["jobs"] == 5 and out["dry_run"] is False
    assert [j["id"] for j in hora.jobs()] == young
    assert "nothing to prune" in hora.ok("prune", "--yes").stdout


def test_tenant_and_kind_narrow_the_prune(hora: Hora) -> None:
    finished_long_ago(hora, 2)
    out = hora.json("prune", "--yes", "--tenant", "other", "--kind", "jobs,dead")
    assert out["counts"] == {"jobs": 0, "dead": 0}
    assert len(hora.jobs()) == 2


@pytest.mark.parametrize(("args", "needle"), [
    (["--kind", "everything"], "unknown retention kind"),
    (["--older-than", "soon"], "not a duration"),
    (["--older-than", "0"], "more than zero"),
    (["--older-than", "off"], "not a duration"),
    (["--batch-size", "0"], "--batch-size"),
    (["--duty", "0"], "--duty"),
    (["--duty", "1.5"], "--duty"),
    (["--tenant", " "], "--tenant"),
])
def test_bad_input_is_one_line_and_exit_2(hora: Hora, args: list[str], needle: str) -> None:
    finished_long_ago(hora, 1)
    assert_one_line_error(hora("prune", "--dry-run", *args), needle)
    assert len(hora.jobs()) == 1


@pytest.mark.parametrize("args", [["--dry-run"], ["--yes"]])
def test_prune_on_a_missing_database_creates_none(hora: Hora, args: list[str]) -> None:
    assert_one_line_error(hora("prune", *args), str(hora.path))
    assert not hora.path.exists()


def test_jobs_list_hides_internal_jobs_unless_asked(hora: Hora) -> None:
    app = App(hora.url)
    try:
        user = app.enqueue("cli.ok", {"n": 1}).id
        internal = app.enqueue("hora.workflow:order", {"workflow_id": "w1"}).id
    finally:
        app.close()
    assert [j["id"] for j in hora.jobs()] == [user]
    assert {j["id"] for j in hora.jobs("--include-internal")} == {user, internal}
    assert [j["id"] for j in hora.jobs("--task", "hora.workflow:order")] == [internal]


def test_serve_refuses_a_bad_retention_before_it_starts(hora: Hora) -> None:
    assert_one_line_error(hora("serve", "--port", "0", "--retention", "jobs=soon"),
                          "retention")
    assert_one_line_error(hora("serve", "--port", "0", "--retention", "forever=1d"),
                          "retention")
    assert not hora.path.exists()
