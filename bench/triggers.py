"""Trigger and scheduler costs. Prints one JSON line:

* preview throughput (occurrences/s) of a cron, an RRULE, and an RRULE with a US holiday
  calendar (median of --runs);
* the scheduler pass with N active schedules (default 100,000) of which only a handful are
  due: its cost must not grow with the schedules that are not due;
* next-occurrence cost (µs per ``next_after`` call, median of --runs) of FREQ=SECONDLY,
  FREQ=MINUTELY and a sparse BYSETPOS rule with DTSTART 1 day, 1 year and 10 years in the
  past: it must not grow with the distance (``--next-only`` prints just these).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

from _common import fresh_database, median, parser
from hora import FakeClock, Hora
from hora.ids import new_id
from hora.models import Schedule
from hora.triggers.spec import preview, trigger_from_spec

SPECS = {
    "cron": {"cron": "*/5 9-17 * * MON-FRI", "timezone": "America/New_York"},
    "rrule": {"rrule": "DTSTART;TZID=America/New_York:20270101T090000\n"
                       "RRULE:FREQ=WEEKLY;BYDAY=MO,WE,FR;BYHOUR=9,13,17"},
    "rrule_holidays": {"rrule": "DTSTART;TZID=America/New_York:20270101T090000\n"
                                "RRULE:FREQ=DAILY", "calendar": {"holidays": "US",
                                                                 "business_day": "next"}},
}


def preview_rate(spec: dict[str, object], count: int) -> float:
    trig = trigger_from_spec(spec)
    after, listed = datetime(2027, 1, 1, tzinfo=UTC), 0
    t0 = time.perf_counter()
    while listed < count:  # pages of at most 1000, the preview's cap
        occ = preview(trig, after, min(1000, count - listed))
        if not occ:
            break
        listed += len(occ)
        after = occ[-1].nominal
    return listed / (time.perf_counter() - t0)


NEXT_RULES = {"secondly": "FREQ=SECONDLY", "minutely": "FREQ=MINUTELY",
              "bysetpos": "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1"}
NEXT_DISTANCES = {"1d": timedelta(days=1), "1y": timedelta(days=365),
                  "10y": timedelta(days=3652)}


def next_cost_us(rule: str, back: timedelta, calls: int = 20) -> float:
    """µs per next_after call, from an instant ``back`` after DTSTART (a fresh instant each
    call, so no answer is reused)."""
    now = datetime(2030, 6, 15, 12, 0, 0, 500_000, tzinfo=UTC)
    dtstart = (now - back).strftime("%Y%m%dT%H%M%SZ")
    trig = trigger_from_spec({"rrule": f"DTSTART:{dtstart}\nRRULE:{rule}"})
    t0 = time.perf_counter()
    for i in range(calls):
        trig.next_after(now + timedelta(seconds=i * 7))
    return (time.perf_counter() - t0) / calls * 1e6


def next_costs(runs: int) -> dict[str, float]:
    return {f"next_{name}_{dist}_us": round(median([next_cost_us(rule, back)
                                                     for _ in range(runs)]), 1)
            for name, rule in NEXT_RULES.items() for dist, back in NEXT_DISTANCES.items()}


def bulk_insert(app: Hora, rows: list[Schedule]) -> None:
    """Load many schedules in one transaction (the SDK creates them one at a time)."""
    store = app.store
    if store.dialect == "sqlite":
        from hora.store.common import schedule_params, to_us
        from hora.store.sqlite import Q as SQ

        with store._write() as conn:  # type: ignore[attr-defined]
            conn.executemany(SQ["insert_schedule"], [schedule_params(s, to_us) for s in rows])
    else:
        from hora.store.postgres import Q as PQ
        from hora.store.postgres import _schedule_params

        with store._write() as conn, conn.cursor() as cur:  # type: ignore[attr-defined]
            cur.executemany(PQ["insert_schedule"].replace("RETURNING *", ""),
                            [_schedule_params(s) for s in rows])


def scheduler_pass(url: str, schedules: int, due: int) -> dict[str, float]:
    clock = FakeClock(datetime(2030, 1, 1, tzinfo=UTC))
    app = Hora(url, clock=clock)
    now = clock.now()
    spec = {"cron": "0 0 1 1 *", "timezone": "UTC"}  # yearly: not due during the bench
    rows = []
    for i in range(schedules):
        rows.append(Schedule(
            id=new_id(), tenant_id="default", name=None, task="noop", payload={}, trigger=spec,
            queue="default", priority=0, max_attempts=3, retry_policy=None, timeout=None,
            correlation_id=None, misfire_policy="skip", misfire_grace=60, catchup_limit=10,
            overlap_policy="allow", state="active",
            next_fire_at=datetime(2031, 1, 1, tzinfo=UTC) if i >= due else now,
            cursor=now - timedelta(seconds=1), created_at=now, updated_at=now))
    t0 = time.perf_counter()
    bulk_insert(app, rows)
    load = time.perf_counter() - t0
    t0 = time.perf_counter()
    fired, _ = app.schedules.process_due()
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    app.schedules.process_due()  # nothing due any more
    idle = time.perf_counter() - t0
    app.close()
    return {"first_pass_ms": first * 1000, "idle_pass_ms": idle * 1000, "fired": fired,
            "load_s": load}


def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("--count", type=int, default=20_000)
    p.add_argument("--schedules", type=int, default=100_000)
    p.add_argument("--due", type=int, default=10)
    p.add_argument("--next-only", action="store_true",
                   help="Only the next-occurrence costs (no database needed).")
    args = p.parse_args()
    out: dict[str, object] = {"bench": "triggers", "runs": args.runs}
    out.update(next_costs(args.runs))
    if args.next_only:
        print(json.dumps(out))
        return
    for name, spec in SPECS.items():
        out[f"preview_{name}_per_s"] = median([preview_rate(spec, args.count)
                                              for _ in range(args.runs)])
    with fresh_database(args.store, args.postgres_url) as url:
        small = scheduler_pass(url, args.due + 10, args.due)
    with fresh_database(args.store, args.postgres_url) as url:
        big = scheduler_pass(url, args.schedules, args.due)
    out.update({
        "store": args.store, "due": args.due,
        f"pass_ms_with_{args.due + 10}_schedules": round(small["first_pass_ms"], 2),
        f"pass_ms_with_{args.schedules}_schedules": round(big["first_pass_ms"], 2),
        f"idle_pass_ms_with_{args.schedules}_schedules": round(big["idle_pass_ms"], 2),
    })
    print(json.dumps(out))


if __name__ == "__main__":
    main()
