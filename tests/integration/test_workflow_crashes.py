"""Workflows under fire: worker processes SIGKILLed at random moments, on both stores.

Fifty workflows of five steps each, with two durable timers and a signal between the steps,
run on three worker processes (``tests/integration/workflow_proc.py``, real clock, a 2 s
lease). A seeded ``random.Random`` picks when to kill and whom: after a random number of
further step starts (plus a few random milliseconds), one worker gets SIGKILL (now and then
all three at once) and a fresh one takes its place, again and again until every workflow
has completed. Then:

* every workflow completed with the result its code computes;
* each step's side effect, keyed by ``current_step().idempotency_key``, was applied exactly
  once (``side_effects`` has one row per step, and each workflow's non-idempotent total is
  11111), though steps themselves ran more than once at times (``step_runs``);
* every journal, signal and job ended as it should: nothing left running or retrying.

Every wait is on a condition with a deadline; the only sleep is the chaos's own jitter.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hora import Hora
from hora.testing import wait_for_condition
from tests.integration.workflow_proc import (
    EXPECTED_TOTAL,
    SIGNAL,
    STEP_SEQ,
    WORKFLOW,
    build_app,
    ensure_tables,
    rows,
)

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
POLL = 0.05
SEED = 20_250_917
WORKFLOWS = 50
WORKERS = 3
DEADLINE = 90.0  # seconds for the whole run, chaos included
LEASE = 2.0
OUTAGE = 0.1  # the chance that a round of chaos kills every worker at once
AIMED = 0.3  # the chance that it kills the worker that just started a step
MAX_KILLS = 25  # then the survivors finish the work (a bound on the test's running time)
MIN_KILLS = 10  # until then half of the workflows wait for their signal, however fast the rest


class WorkflowWorker:
    """``python -m tests.integration.workflow_proc`` with its output in files under tmp_path."""

    def __init__(self, tmp_path: Path, database_url: str, worker_id: str) -> None:
        self.worker_id = worker_id
        self.stdout = tmp_path / f"{worker_id}.out"
        self.stderr = tmp_path / f"{worker_id}.err"
        argv = [sys.executable, "-m", "tests.integration.workflow_proc",
                "--database-url", database_url, "--worker-id", worker_id,
                "--lease", str(LEASE), "--heartbeat", "0.5", "--rescue-interval", "0.5",
                "--lookahead", "1.0", "--poll-interval", "0.05"]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
        env.pop("HORA_DATABASE_URL", None)
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=err)

    def log(self) -> str:
        text = self.stderr.read_text(errors="replace") if self.stderr.exists() else ""
        return f"--- {self.worker_id} stderr (last 3000 chars) ---\n{text[-3000:]}"

    def is_ready(self) -> bool:
        return "ready" in self.stdout.read_text(errors="replace").split()

    def sigkill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        assert self.proc.wait(10) == -signal.SIGKILL, self.log()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


class Chaos:
    """The test's view of the run: the workers, and what the database says so far."""

    def __init__(self, app: Hora, url: str, tmp_path: Path) -> None:
        self.app = app
        self.url = url
        self.tmp_path = tmp_path
        self.workers: list[WorkflowWorker] = []
        self.retired: list[WorkflowWorker] = []
        self.signalled: set[str] = set()
        self.hold_signals = True
        self.deadline = time.monotonic() + DEADLINE

    def spawn(self) -> WorkflowWorker:
        n = len(self.workers) + len(self.retired) + 1
        w = WorkflowWorker(self.tmp_path, self.url, f"W{n}")
        self.workers.append(w)
        return w

    def logs(self) -> str:
        return "\n".join(w.log() for w in self.workers)

    def wait_for(self, predicate: Callable[[], object], what: str,
                 timeout: float | None = None) -> None:
        """Wait (hora.testing's poll with a deadline); fail as soon as a live worker exits."""
        end = self.deadline if timeout is None else min(self.deadline,
                                                        time.monotonic() + timeout)

        def met() -> bool:
            for w in self.workers:
                if w.proc.poll() is not None:
                    pytest.fail(f"worker {w.worker_id} exited ({w.proc.returncode}) while "
                                f"waiting for {what}\n{w.log()}")
            return bool(predicate())

        try:
            wait_for_condition(met, timeout=max(0.0, end - time.monotonic()), interval=POLL)
        except TimeoutError:
            pytest.fail(f"timed out waiting for {what}: {self.states()}\n{self.logs()}")

    def states(self) -> Counter[str]:
        page = self.app.list_workflows(name=WORKFLOW, limit=WORKFLOWS)
        return Counter(w.state for w in page.items)

    def completed(self) -> int:
        """How many completed; first, the signal to each workflow now waiting for one.

        While ``hold_signals`` is set the signals wait: on a loaded machine the work could
        otherwise finish before the chaos has killed enough workers to prove anything.
        """
        if not self.hold_signals:
            waiting = self.app.list_workflows(state="waiting", name=WORKFLOW, limit=WORKFLOWS)
            for w in waiting.items:
                if w.wait_kind == "signal" and w.id not in self.signalled:
                    self.send(w.id)
        return self.states()["completed"]

    def send(self, workflow_id: str) -> None:
        self.app.signal_workflow(workflow_id, SIGNAL, {"for": workflow_id})
        self.signalled.add(workflow_id)

    def busiest(self) -> str | None:
        """The worker that started a step last (most likely still inside it)."""
        found = rows(self.url, "SELECT worker_id FROM step_runs ORDER BY started DESC LIMIT 1")
        return str(found[0][0]) if found else None

    def step_runs(self) -> int:
        return int(rows(self.url, "SELECT count(*) FROM step_runs")[0][0])


@pytest.fixture
def chaos(tmp_path: Path, database_url: str) -> Iterator[Chaos]:
    ensure_tables(database_url)
    app, effects = build_app(database_url)  # migrates before any worker starts
    c = Chaos(app, database_url, tmp_path)
    try:
        yield c
    finally:
        for w in c.workers + c.retired:
            w.kill()
        app.close()
        effects.close()


def test_sigkilled_workers_lose_no_workflow_and_repeat_no_side_effect(chaos: Chaos) -> None:
    rng = random.Random(SEED)
    app, url = chaos.app, chaos.url
    began = time.monotonic()
    for _ in range(WORKERS):
        chaos.spawn()
    for w in chaos.workers:
        chaos.wait_for(w.is_ready, f"worker {w.worker_id} to be ready", timeout=30)

    ids = [f"wf-{i:02d}" for i in range(WORKFLOWS)]
    for i, wf_id in enumerate(ids):
        app.start_workflow(WORKFLOW, {"n": i}, workflow_id=wf_id)
        if i % 2 == 0:
            chaos.send(wf_id)  # before it waits: the signal waits for the workflow
    # The others get theirs once they wait for it (chaos.completed sends them).

    kills = outages = 0
    while chaos.completed() < WORKFLOWS and kills < MAX_KILLS:
        chaos.hold_signals = kills < MIN_KILLS
        # The next kill: once a few more steps have started, or (while the runs of the
        # last victims wait out their lease) once a short while has passed.
        target = chaos.step_runs() + rng.randint(1, 6)
        patience = time.monotonic() + rng.uniform(0.3, 1.2)

        def progressed(target: int = target, patience: float = patience) -> bool:
            return (chaos.completed() == WORKFLOWS or chaos.step_runs() >= target
                    or time.monotonic() >= patience)

        chaos.wait_for(progressed, "more steps to start, or the chaos's patience to end")
        if chaos.completed() == WORKFLOWS:
            break
        ready = [w for w in chaos.workers if w.is_ready()]
        if not ready:
            continue  # the steps that start next start on a replacement
        # Mostly the worker that just started a step dies at once, in the middle of that
        # step; otherwise a random one after a jitter; now and then every worker at once.
        busy = chaos.busiest()
        aimed = [w for w in ready if w.worker_id == busy]
        everyone = rng.random() < OUTAGE
        if everyone:
            victims = list(chaos.workers)
        elif aimed and rng.random() < AIMED:
            victims = aimed
        else:  # any worker, wherever it is (between steps, in a timer, mid-step)
            victims = [ready[rng.randrange(len(ready))]]
        for victim in victims:
            victim.sigkill()
            chaos.workers.remove(victim)
            chaos.retired.append(victim)
        kills += len(victims)
        outages += everyone
        for _ in victims:
            chaos.spawn()  # not waited for: the next victim may be one still starting up
    # Enough chaos: the survivors finish (completed() also sends the signals still due).
    chaos.hold_signals = False
    chaos.wait_for(lambda: chaos.completed() == WORKFLOWS, "every workflow to complete")
    finished = time.monotonic() - began

    # Nothing left behind: every job of every run ends, on the survivors.
    def jobs_settled() -> bool:
        counts = app.count_jobs()
        return not any(counts.get(s) for s in ("scheduled", "running", "retrying"))

    chaos.wait_for(jobs_settled, "the workflows' jobs to settle", timeout=30)
    counts = app.count_jobs()
    # A run's wake-up still waiting when its workflow completed is cancelled with it.
    assert set(counts) <= {"succeeded", "cancelled"}, counts

    # Every workflow completed with the result its code computes.
    for i, wf_id in enumerate(ids):
        wf = app.get_workflow(wf_id)
        assert wf.state == "completed", (wf_id, wf.state, wf.error)
        keys = [f"default:{wf_id}:{seq}" for seq in STEP_SEQ.values()]
        assert wf.result == {"n": i, "signal": {"for": wf_id}, "keys": keys}, wf_id
        assert (wf.run_owner, wf.wait_kind) == (None, None)
        journal = [(h.seq, h.kind, h.status) for h in app.workflow_history(wf_id)]
        assert journal == [(1, "step", "done"), (2, "sleep", "done"), (3, "step", "done"),
                           (4, "step", "done"), (5, "signal", "done"), (6, "step", "done"),
                           (7, "sleep", "done"), (8, "step", "done")], wf_id
        assert [(s.name, s.consumed_seq) for s in app.workflow_signals(wf_id)] == [
            (SIGNAL, 5)], wf_id

    # Each side effect exactly once, though steps ran more than once at times.
    expected = {f"default:{wf_id}:{seq}" for wf_id in ids for seq in STEP_SEQ.values()}
    effects = [str(k) for (k,) in rows(url, "SELECT key FROM side_effects")]
    assert len(effects) == WORKFLOWS * len(STEP_SEQ)
    assert set(effects) == expected
    totals = dict(rows(url, "SELECT workflow_id, amount FROM totals"))
    assert totals == dict.fromkeys(ids, EXPECTED_TOTAL)
    runs = Counter(str(k) for (k,) in rows(url, "SELECT key FROM step_runs"))
    assert set(runs) == expected
    repeated = {k: n for k, n in runs.items() if n > 1}
    lost = int(rows(url, "SELECT count(*) FROM hora_job_attempts WHERE outcome = 'lost'"
                    )[0][0])
    print(f"\n{WORKFLOWS} workflows completed in {finished:.1f}s through {kills} SIGKILLs "
          f"({outages} outages of all workers at once; seed {SEED}); {lost} job attempts "
          "lost (lease expired); "
          f"{sum(runs.values())} step runs for {len(expected)} steps: "
          f"{sum(repeated.values()) - len(repeated)} duplicate runs over {len(repeated)} "
          "steps, each side effect applied once")
    # The chaos proved what it claims: many kills, some of them in the middle of runs.
    assert kills >= MIN_KILLS, f"only {kills} kills"
    assert lost > 0, "no kill landed while a workflow ran"

    for w in chaos.workers:
        chaos.wait_for(w.is_ready, f"worker {w.worker_id} to be ready", timeout=30)
    for w in chaos.workers:
        w.proc.send_signal(signal.SIGTERM)
    for w in chaos.workers:
        assert w.proc.wait(15) == 0, w.log()
