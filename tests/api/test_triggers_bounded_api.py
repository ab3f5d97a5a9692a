"""Bounded trigger evaluation and extreme values over HTTP, on both stores (issue 9): the
expensive rules answer quickly, extreme values answer 422 naming the field, never a 500."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.api.conftest import Api
from tests.api.test_api import assert_problem

SECONDLY_10Y = "DTSTART:20160101T000000Z\nRRULE:FREQ=SECONDLY"
COUNT_HUGE = "DTSTART:20260101T000000Z\nRRULE:FREQ=SECONDLY;COUNT=1000000000"
SPARSE = ("DTSTART:20260101T000000Z\nRRULE:FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO;"
          "BYHOUR=23;BYMINUTE=59;BYSECOND=59")
#: Seconds an answer may take: generous (they take milliseconds), a deadline, not a sleep.
DEADLINE = 2.0


def test_expensive_rules_answer_within_a_deadline(api: Api) -> None:
    _, _, c = api.tenant()
    cases: list[tuple[str, dict[str, Any], int, str]] = [
        ("/v1/triggers/preview", {"trigger": SECONDLY_10Y, "count": 1000}, 200, ""),
        ("/v1/triggers/preview", {"trigger": COUNT_HUGE}, 422, "COUNT=1000000000"),
        ("/v1/triggers/preview", {"trigger": SPARSE}, 422, "too sparse"),
        ("/v1/schedules", {"task": "t", "trigger": SECONDLY_10Y}, 201, ""),
        ("/v1/schedules", {"task": "t", "trigger": COUNT_HUGE}, 422, "COUNT=1000000000"),
        ("/v1/schedules", {"task": "t", "trigger": SPARSE}, 422, "too sparse"),
    ]
    for path, body, status, says in cases:
        t0 = time.monotonic()
        r = c.post(path, json=body)
        assert time.monotonic() - t0 < DEADLINE, (path, body)
        if status == 422:
            assert_problem(r, 422, "invalid-trigger", says=says)
        else:
            assert r.status_code == status, r.text
    preview = c.post("/v1/triggers/preview", json={"trigger": SECONDLY_10Y, "count": 3}).json()
    assert len(preview["occurrences"]) == 3
    created = c.post("/v1/schedules", json={"task": "t", "trigger": SECONDLY_10Y}).json()
    assert created["error"] is None and created["next_fire_at"] is not None
    assert_problem(c.post("/v1/triggers/preview", json={"trigger": SECONDLY_10Y,
                                                        "count": 1001}), 422, "invalid-request",
                   says="count")


EXTREMES: list[tuple[dict[str, Any], str]] = [
    ({"at": "9999-12-31T23:59:59-01:00"}, "trigger.at"),
    ({"at": "0001-01-01T00:00:00+14:00"}, "trigger.at"),
    ({"every": "PT1S", "start": "9999-12-31T23:59:59Z"}, "trigger.start"),
    ({"every": "P1000000000D", "start": "2026-01-01T00:00:00Z"}, "trigger.every"),
    ({"rrule": "DTSTART:00010101T000000Z\nRRULE:FREQ=YEARLY"}, "DTSTART"),
    ({"rrule": "DTSTART:20260101T000000Z\nRRULE:FREQ=YEARLY;UNTIL=00010101T000000Z"}, "UNTIL"),
    ({"cron": "0 9 * * *", "jitter": 1e308}, "trigger.jitter"),
    ({"cron": "0 9 * * *", "calendar": {"extra_holidays": ["0001-01-01"]}},
     "trigger.calendar.extra_holidays"),
    ({"cron": "0 9 * * *", "window": {"start": "09:00", "end": "10:00", "days": [10**30]}},
     "trigger.window.days"),
]


@pytest.mark.parametrize("trigger,field", EXTREMES)
def test_extreme_values_answer_422_naming_the_field(api: Api, trigger: dict[str, Any],
                                                    field: str) -> None:
    _, _, c = api.tenant()
    for path, body in (("/v1/triggers/preview", {"trigger": trigger}),
                       ("/v1/schedules", {"task": "t", "trigger": trigger})):
        assert_problem(c.post(path, json=body), 422, "invalid-trigger", says=field)
    assert c.get("/v1/schedules").json()["items"] == []  # nothing half-written


def test_a_preview_after_outside_the_range_is_refused(api: Api) -> None:
    _, _, c = api.tenant()
    r = c.post("/v1/triggers/preview", json={"trigger": {"cron": "0 9 * * *"},
                                             "after": "9999-12-31T23:59:59-01:00"})
    assert_problem(r, 422, "invalid-request", says="after")
