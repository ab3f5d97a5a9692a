"""Trigger evaluation is bounded (issue 9): expensive rules answer fast, one tenant's rules
cannot slow another tenant's schedules, and a schedule whose trigger cannot be evaluated is
marked with the reason while the others keep firing. Every test runs on both stores."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from hora import FakeClock, Hora, InvalidTrigger

SECONDLY_10Y = "DTSTART:20200101T000000Z\nRRULE:FREQ=SECONDLY"
COUNT_HUGE = "DTSTART:20200101T000000Z\nRRULE:FREQ=SECONDLY;COUNT=1000000000"
SPARSE = ("DTSTART:20291201T000000Z\nRRULE:FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO;"
          "BYHOUR=23;BYMINUTE=59;BYSECOND=59")
#: CPU seconds any of these may take: generous (they take milliseconds), a deadline on the
#: answer, not a sleep.
BUDGET = 2.0


def _cpu(call: Callable[[], Any]) -> tuple[float, Any]:
    """(CPU seconds the call took in this thread, its result or the exception it raised)."""
    t0 = time.thread_time()
    try:
        result: Any = call()
    except InvalidTrigger as e:
        result = e
    return time.thread_time() - t0, result


def _fired(app: Hora, schedule_id: str) -> int:
    return len(app.schedule_ticks(schedule_id, outcome="fired", limit=1000).items)


def test_expensive_rules_answer_fast_and_another_tenant_keeps_firing(
        app: Hora, clock: FakeClock) -> None:
    a, b = app.for_tenant("tenant-a"), app.for_tenant("tenant-b")
    threads = threading.active_count()
    every_second = b.create_schedule("tick", trigger={"every": "PT1S",
                                                      "start": clock.now().isoformat()})
    spent, secondly = _cpu(lambda: a.create_schedule("burn", trigger=SECONDLY_10Y))
    assert spent < BUDGET and not isinstance(secondly, Exception)
    assert secondly.next_fire_at == clock.now() + timedelta(seconds=1)
    spent, refused = _cpu(lambda: a.create_schedule("burn", trigger=COUNT_HUGE))
    assert spent < BUDGET and "COUNT=1000000000 is more than the maximum" in str(refused)
    spent, refused = _cpu(lambda: a.create_schedule("burn", trigger=SPARSE))
    assert spent < BUDGET and "too sparse" in str(refused)
    spent, preview = _cpu(lambda: a.preview(SECONDLY_10Y, count=1000))
    assert spent < BUDGET and len(preview) == 1000
    assert threading.active_count() == threads  # nothing left running in the background
    for _ in range(10):
        clock.advance(timedelta(seconds=1))
        spent, _passed = _cpu(app.schedules.process_due)
        assert spent < BUDGET
    # B's every-second schedule fired each second, on time; A's rule too.
    assert _fired(b, every_second.id) == 10
    assert _fired(a, secondly.id) == 10
    jobs = b.list_jobs(limit=100).items
    assert sorted(j.due_at for j in jobs) == [clock.now() - timedelta(seconds=k)
                                              for k in range(9, -1, -1)]


def test_an_unevaluable_schedule_is_marked_and_the_others_keep_firing(
        app: Hora, clock: FakeClock) -> None:
    good = app.create_schedule("good", trigger={"every": "PT1S",
                                                "start": clock.now().isoformat()})
    bad = app.create_schedule("bad", trigger={"every": "PT1S",
                                              "start": clock.now().isoformat()})
    # A trigger stored before today's checks (or by an older hora): it no longer evaluates.
    app.store.update_schedule(replace(app.get_schedule(bad.id), trigger={"rrule": SPARSE}))
    clock.advance(timedelta(seconds=1))
    _fired_jobs, processed = app.schedules.process_due()
    assert processed == 2
    marked = app.get_schedule(bad.id)
    assert marked.error is not None and "too sparse" in marked.error
    assert marked.next_fire_at is None and marked.state == "active"
    for _ in range(3):
        clock.advance(timedelta(seconds=1))
        _fired_jobs, processed = app.schedules.process_due()
        assert processed == 1  # the marked schedule costs nothing on later passes
    assert _fired(app, good.id) == 4
    assert _fired(app, bad.id) == 0
    # Resuming with the same trigger still fails and says why; editing clears the mark.
    with pytest.raises(InvalidTrigger, match="too sparse"):
        app.resume_schedule(bad.id)
    fixed = app.update_schedule(bad.id, trigger={"every": "PT1S",
                                                 "start": clock.now().isoformat()})
    assert fixed.error is None and fixed.next_fire_at == clock.now() + timedelta(seconds=1)
    clock.advance(timedelta(seconds=1))
    app.schedules.process_due()
    assert _fired(app, bad.id) == 1 and _fired(app, good.id) == 5
