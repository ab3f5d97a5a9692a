"""Differential tests: hora's cron against croniter and cronsim (issue 11, item 9).

A few hundred expressions are generated from a seeded grammar over the features all three
accept (numbers, names, ranges, wrapping ranges, lists, steps, steps larger than the range,
``L``, ``#``, 7 as Sunday, macros) in 5 fields and in 6 fields with the seconds first. For
each, the next fire times from several instants are compared, in UTC and in a DST zone.

Where croniter and cronsim disagree with each other, hora follows the one named in
docs/cron.md:

* day-of-month *and* day-of-week both restricted but one starts with ``*`` (``*/2`` and
  ``MON``): cronie and cronsim AND them (Vixie's rule), croniter ORs them. hora: AND.
* around DST in a zone: cronsim (and cronie) fire a fixed-time job once in the repeated
  hour and at the first valid time in the gap; croniter differs. hora: as cronsim (its
  default dst_gap/dst_fold policies), so the DST comparison is against cronsim only.
* L or # in one day field with the other restricted: cronsim ORs them (Vixie's rule);
  croniter ANDs them. hora: OR.
* Australia/Lord_Howe (a 30-minute DST shift): cronsim misses the half hour after the
  autumn change; hora is checked against brute force there.
* 6 fields: croniter reads the seconds *last* unless ``second_at_beginning=True``; cronsim
  and Quartz read them first. hora: first. The comparison uses croniter's option.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from itertools import islice, pairwise
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from cronsim import CronSim

from hora.errors import InvalidTrigger
from hora.triggers.cron import CronTrigger

N = 8
SEED = 20261203
COUNT = 300
STARTS = [datetime(2027, 3, 13, 22, 17, 5, tzinfo=UTC),
          datetime(2027, 10, 31, 3, 59, 59, tzinfo=UTC), datetime(2028, 2, 28, 12, tzinfo=UTC)]
MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]


def _term(rng: random.Random, lo: int, hi: int, names: list[str] | None = None,
          name_base: int = 0) -> str:
    def val(v: int) -> str:
        if names is not None and rng.random() < 0.3 and 0 <= v - name_base < len(names):
            return names[v - name_base]
        return str(v)

    kind = rng.choice(["num", "range", "step", "rangestep", "bigstep", "wrap", "list"])
    a, b = sorted(rng.sample(range(lo, hi + 1), 2))
    if kind == "num":
        return val(a)
    if kind == "range":
        return f"{val(a)}-{val(b)}"
    if kind == "step":
        return f"*/{rng.randint(1, hi - lo + 1)}"
    if kind == "rangestep":
        return f"{a}-{b}/{rng.randint(1, b - a + 1)}"
    if kind == "bigstep":
        return f"*/{rng.randint(hi - lo + 2, 3 * (hi - lo + 2))}"
    if kind == "wrap":
        return f"{val(b)}-{val(a)}"
    return ",".join(val(v) for v in sorted(rng.sample(range(lo, hi + 1), rng.randint(2, 4))))


def _expression(rng: random.Random, seconds: bool) -> str:
    minute = rng.choice(["*", "0", _term(rng, 0, 59)])
    hour = rng.choice(["*", _term(rng, 0, 23)])
    dom = rng.choice(["*", "*", _term(rng, 1, 28), "L", "1,L", "15"])
    month = rng.choice(["*", "*", _term(rng, 1, 12, MONTHS, 1)])
    dow = rng.choice(["*", "*", _term(rng, 0, 6, DAYS), "7", "5-7", f"{rng.randint(0, 6)}#"
                      f"{rng.randint(1, 4)}", "MON-FRI"])
    if dom.startswith("*") and dom != "*" and dow != "*":
        dom = "*"  # the AND/OR split: covered on its own below
    if dow.startswith("*") and dow != "*" and dom != "*":
        dow = "*"
    fields = [minute, hour, dom, month, dow]
    if seconds:
        fields.insert(0, rng.choice(["0", "*/15", _term(rng, 0, 59)]))
    return " ".join(fields)


def _expressions(seconds: bool) -> list[str]:
    rng = random.Random(SEED + seconds)
    return [_expression(rng, seconds) for _ in range(COUNT)]


def _hora(expr: str, tz: str, start: datetime) -> list[datetime] | None:
    try:
        trigger = CronTrigger(expr, tz)
    except InvalidTrigger:
        return None
    out: list[datetime] = []
    for occ in trigger.occurrences(start):
        if occ.skipped is None:
            out.append(occ.at.astimezone(UTC))
        if len(out) == N:
            break
    return out


def _croniter(expr: str, tz: str, start: datetime, seconds: bool) -> list[datetime] | None:
    try:
        it = croniter(expr, start.astimezone(ZoneInfo(tz)), second_at_beginning=seconds)
        return [it.get_next(datetime).astimezone(UTC) for _ in range(N)]
    except Exception:  # croniter's errors have no common base
        return None


def _cronsim(expr: str, tz: str, start: datetime) -> list[datetime] | None:
    try:
        it = CronSim(expr, start.astimezone(ZoneInfo(tz)))
        return [next(it).astimezone(UTC) for _ in range(N)]
    except Exception:  # CronSimError is not a ValueError
        return None


def _hora_refusal(expr: str) -> str | None:
    try:
        CronTrigger(expr)
    except InvalidTrigger as e:
        return str(e)
    return None


@pytest.mark.parametrize("seconds", [False, True], ids=["5-fields", "6-fields"])
def test_hora_agrees_with_croniter_and_cronsim_in_utc(seconds: bool) -> None:
    compared = 0
    # Expressions on which croniter and cronsim split: hora gives cronsim's answer (Vixie's,
    # as cronie) -- see docs/cron.md.
    splits: set[str] = set()
    for expr in _expressions(seconds):
        for start in STARTS:
            a = _croniter(expr, "UTC", start, seconds)
            b = _cronsim(expr, "UTC", start)
            if a is None and b is None:
                continue
            hora = _hora(expr, "UTC", start)
            assert hora is not None, (expr, _hora_refusal(expr))
            if b is None and _day_split(expr):
                splits.add(expr)  # croniter alone accepts it, and reads it its own way
                continue
            if a is not None and b is not None and a != b:
                # Only the day fields split them: L or # in one with the other restricted
                # (croniter ANDs, cronsim and cronie OR).
                splits.add(expr)
                assert any(c in expr for c in "L#"), expr
                assert hora == b, expr
                continue
            assert hora == (a if a is not None else b), expr
            compared += 1
    assert compared > COUNT  # most expressions are accepted by at least one of them
    assert len(splits) < COUNT // 5


def _day_split(expr: str) -> bool:
    """Both day fields restricted, one with L or #: croniter ANDs them, Vixie/cronsim OR."""
    dom, dow = expr.split()[-3], expr.split()[-1]
    return dom != "*" and dow != "*" and ("#" in dow or "L" in dom or "L" in dow)


def test_hora_agrees_with_cronsim_across_dst() -> None:
    """5 fields in America/New_York from instants near the transitions: hora's default
    policies (first_valid, first) are cronsim's (and cronie's) for fixed-time expressions."""
    starts = [datetime(2027, 3, 14, 5, tzinfo=UTC), datetime(2027, 11, 7, 4, 30, tzinfo=UTC),
              datetime(2027, 3, 13, 22, tzinfo=UTC), datetime(2027, 11, 6, 20, tzinfo=UTC)]
    compared = 0
    tz = "America/New_York"
    for expr in _expressions(False)[:150]:
        for start in starts:
            b = _cronsim(expr, tz, start)
            if b is None:
                continue
            hora = _hora(expr, tz, start)
            assert hora is not None, (expr, _hora_refusal(expr))
            assert hora == b, (expr, start)
            compared += 1
    assert compared > 300


def test_real_time_expressions_in_lord_howe_fire_at_each_matching_real_minute() -> None:
    """Australia/Lord_Howe shifts by 30 minutes. cronsim misses the half hour after the
    autumn change there (it fires from 14:30, not 14:00, on 2027-04-04), so hora is checked
    against brute force: every UTC minute whose wall time matches fires, once."""
    tz = ZoneInfo("Australia/Lord_Howe")
    starts = [datetime(2027, 4, 3, 13, tzinfo=UTC), datetime(2027, 10, 2, 14, tzinfo=UTC)]
    exprs = [e for e in _expressions(False) if e.split()[0].startswith("*")
             and "*" in (e.split()[2], e.split()[4]) and not any(c in e for c in "L#")][:60]
    for expr in exprs:
        for start in starts:
            hora = _hora(expr, "Australia/Lord_Howe", start)
            assert hora is not None
            end = min(hora[-1], start + timedelta(hours=30))
            assert [t for t in hora if t <= end] == _brute(expr, tz, start, end), expr


def _brute(expr: str, tz: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """The UTC minutes in (start, end] whose wall time matches (one day field is ``*``, and
    neither has L or #, so matching is a plain AND of the fields croniter expands)."""
    spans = (range(60), range(24), range(1, 32), range(1, 13), range(7))
    minute, hour, dom, month, dow = (
        set(span) if "*" in f else {int(v) % 7 if span == spans[4] else int(v) for v in f}
        for f, span in zip(croniter(expr).expanded[:5], spans, strict=True))
    out = []
    t = start.replace(second=0) + timedelta(minutes=1)
    while t <= end:
        w = t.astimezone(tz)
        if (w.minute in minute and w.hour in hour and w.month in month
                and w.day in dom and (w.isoweekday() % 7) in dow):
            out.append(t)
        t += timedelta(minutes=1)
    return out


# -- the split on the two day fields, and features only some accept ---------------------------

def test_day_fields_follow_vixie_and_cronsim_not_croniter() -> None:
    expr = "0 0 */2 * MON"
    start = datetime(2027, 1, 1, tzinfo=UTC)
    assert _hora(expr, "UTC", start) == _cronsim(expr, "UTC", start)
    assert _hora(expr, "UTC", start) != _croniter(expr, "UTC", start, False)
    # Both restricted, neither starting with '*': OR everywhere.
    expr = "0 0 1,15 * MON"
    assert (_hora(expr, "UTC", start) == _cronsim(expr, "UTC", start)
            == _croniter(expr, "UTC", start, False))


@pytest.mark.parametrize(("expr", "same_as"), [
    ("*/90 * * * *", "0 * * * *"),
    ("0 */30 * * *", "0 0 * * *"),
    ("0 0 */40 * *", "0 0 1 * *"),
    ("0 0 1 */13 *", "0 0 1 1 *"),
    ("0 0 * * */8", "0 0 * * 0"),
    ("0 0 * * FRI-MON", "0 0 * * 5,6,0,1"),
    ("0 0 * * 7-1", "0 0 * * 0,1"),
    ("0 22-2 * * *", "0 22,23,0,1,2 * * *"),
    ("0 0 28-3 * *", "0 0 28,29,30,31,1,2,3 * *"),
    ("0 0 1 NOV-FEB *", "0 0 1 11,12,1,2 *"),
    ("@hourly", "0 * * * *"),
    ("@daily", "0 0 * * *"),
    ("0 0 ? * MON", "0 0 * * 1"),
    ("0 0 * * 7", "0 0 * * 0"),
    ("0 0 1 jan-mar mon", "0 0 1 1-3 1"),
])
def test_equivalent_forms(expr: str, same_as: str) -> None:
    start = datetime(2027, 1, 1, tzinfo=UTC)
    assert _hora(expr, "UTC", start) == _hora(same_as, "UTC", start)
    accepted = _croniter(expr, "UTC", start, False)
    if accepted is not None:
        assert _hora(expr, "UTC", start) == accepted


@pytest.mark.parametrize(("expr", "says"), [
    ("@reboot", "run the task when your process starts instead"),
    ("@every 5m", '{"every": "PT5M"}'),
    ("0 0 0 1 * * 2027", "hora has no year field"),
    ("H * * * *", "jitter"),
    ("50-10/5 * * * *", "write the two parts, e.g. 50-59/5,0-10/5"),
    ("0 0 * * L", "write 5L or FRIL"),
    ("0 0 * * 1#6", "must be 1-5"),
])
def test_refusals_say_why_and_what_to_write(expr: str, says: str) -> None:
    refusal = _hora_refusal(expr)
    assert refusal is not None and says in refusal, refusal


# -- a zone whose DST shift is 30 minutes ------------------------------------------------------

LORD_HOWE = ZoneInfo("Australia/Lord_Howe")


def _fired_and_skipped(expr: str, start: datetime, hours: int) -> tuple[list[str], list[str]]:
    fired: list[str] = []
    skipped: list[str] = []
    end = start + timedelta(hours=hours)
    for occ in CronTrigger(expr, "Australia/Lord_Howe").occurrences(start):
        if occ.nominal > end:
            break
        if occ.skipped is None:
            fired.append(occ.at.astimezone(LORD_HOWE).strftime("%H:%M%z"))
        else:
            skipped.append(occ.nominal.astimezone(LORD_HOWE).strftime("%H:%M%z"))
    return fired, skipped


def test_lord_howe_spring_forward_every_quarter_hour_and_hourly() -> None:
    """2027-10-03 02:00 +1030 -> 02:30 +11: wall times 02:00-02:29 do not exist and do not
    fire; every other quarter hour fires once, no instant twice."""
    start = datetime(2027, 10, 3, 0, 0, tzinfo=LORD_HOWE).astimezone(UTC)
    fired, skipped = _fired_and_skipped("*/15 * * * *", start, 3)
    assert fired == ["00:15+1030", "00:30+1030", "00:45+1030", "01:00+1030", "01:15+1030",
                     "01:30+1030", "01:45+1030", "02:30+1100", "02:45+1100", "03:00+1100",
                     "03:15+1100", "03:30+1100"]
    # The wall times 02:00 and 02:15 do not exist; their nominal instants (the offset from
    # before the gap) are those of 02:30 and 02:45, which fire, so nothing is reported.
    assert skipped == []
    fired, skipped = _fired_and_skipped("0 * * * *", start, 4)
    assert fired == ["01:00+1030", "03:00+1100", "04:00+1100"]
    assert len(skipped) == 1  # 02:00


def test_lord_howe_fall_back_every_quarter_hour_and_hourly() -> None:
    """2027-04-04 02:00 +11 -> 01:30 +1030: wall times 01:30-01:59 happen twice; a real-time
    expression fires at both (distinct instants, 30 minutes apart), none twice at one
    instant, and no quarter hour is missing."""
    start = datetime(2027, 4, 4, 0, 0, tzinfo=LORD_HOWE).astimezone(UTC)
    fired, skipped = _fired_and_skipped("*/15 * * * *", start, 3)
    assert fired == ["00:15+1100", "00:30+1100", "00:45+1100", "01:00+1100", "01:15+1100",
                     "01:30+1100", "01:45+1100", "01:30+1030", "01:45+1030", "02:00+1030",
                     "02:15+1030", "02:30+1030"]
    assert skipped == []
    instants = [o.at for o in islice(CronTrigger("*/15 * * * *", "Australia/Lord_Howe")
                                     .occurrences(start), 12)]
    assert all(b - a == timedelta(minutes=15) for a, b in pairwise(instants))
    fired, skipped = _fired_and_skipped("0 * * * *", start, 4)
    assert fired == ["01:00+1100", "02:00+1030", "03:00+1030"]
    assert skipped == []
