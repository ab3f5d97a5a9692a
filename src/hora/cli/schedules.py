"""``hora schedules``: preview triggers, create and steer schedules, read the tick ledger.

Registered on the main ``hora`` command by ``hora.cli``; the same conventions apply
(``--database-url``, ``--json``, one-line errors with exit code 2). The trigger machinery,
rich and the app are imported inside the commands that use them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING, Annotated, Any

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
    id_column,
    more_hint,
    open_app,
    parse_payload,
    print_json,
    say,
)
from hora.limits import check_instant

if TYPE_CHECKING:
    from rich.table import Table

    from hora.app import Hora
    from hora.models import Schedule
    from hora.triggers import Occurrence

schedules_cli = group("Recurring schedules: preview, create, list, pause, resume, trigger, "
                      "delete, and the tick ledger.")

Cron = Annotated[str | None, typer.Option("--cron", help="Cron expression (5 or 6 fields).")]
RRule = Annotated[str | None, typer.Option(
    "--rrule", help="iCalendar text (DTSTART;TZID=...:...\\nRRULE:...), or an RRULE with "
                    "--dtstart.")]
At = Annotated[str | None, typer.Option("--at", help="One instant, ISO-8601 with offset.")]
Every = Annotated[str | None, typer.Option("--every", help="ISO-8601 duration, e.g. PT15M.")]
Start = Annotated[str | None, typer.Option("--start", help="Anchor of --every (ISO-8601).")]
DtStart = Annotated[str | None, typer.Option("--dtstart", help="Local DTSTART for --rrule.")]
Tz = Annotated[str | None, typer.Option("--tz", "--timezone", help="IANA time zone.")]
CalendarOpt = Annotated[str | None, typer.Option(
    "--calendar", help="Holiday calendar: a country code (US, GB, DE...).")]
Subdivision = Annotated[str | None, typer.Option("--subdivision", help="e.g. ENG, CA.")]
BusinessDay = Annotated[str | None, typer.Option(
    "--business-day", help="skip | next | previous (with --calendar).")]
DstGapOpt = Annotated[str | None, typer.Option("--dst-gap", help="first_valid | shift | skip")]
DstFoldOpt = Annotated[str | None, typer.Option("--dst-fold", help="first | last | both")]


def trigger_spec(cron: str | None, rrule: str | None, at: str | None, every: str | None,
                 start: str | None, dtstart: str | None, tz: str | None,
                 calendar: str | None, subdivision: str | None, business_day: str | None,
                 dst_gap: str | None, dst_fold: str | None) -> dict[str, Any]:
    kinds = [k for k, v in (("--cron", cron), ("--rrule", rrule), ("--at", at),
                            ("--every", every)) if v]
    if len(kinds) != 1:
        raise BadInput("give exactly one of --cron, --rrule, --at, --every"
                       + (f" (got {', '.join(kinds)})" if kinds else ""))
    spec: dict[str, Any]
    if cron:
        spec = {"cron": cron, "timezone": tz or "UTC"}
    elif rrule:
        spec = {"rrule": rrule.replace("\\n", "\n")}
        if dtstart:
            spec["dtstart"] = dtstart
        if tz:
            spec["timezone"] = tz
    elif at:
        spec = {"at": at}
    else:
        spec = {"every": every, "start": start or datetime.now(UTC).isoformat()}
    if calendar or business_day or subdivision:
        spec["calendar"] = {"holidays": calendar, "subdivision": subdivision,
                            "business_day": business_day or "skip"}
    if dst_gap:
        spec["dst_gap"] = dst_gap
    if dst_fold:
        spec["dst_fold"] = dst_fold
    return spec


def parse_after(value: str | None, tz: str) -> datetime:
    """``--after``: an instant with offset, or a local date/datetime in the trigger's zone."""
    from hora.triggers.dst import zone

    if value is None:
        return datetime.now(UTC)
    text = value.strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(0), zone(tz))
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise BadInput(f"--after {value!r} is not an ISO-8601 date or datetime") from None
    return check_instant(dt if dt.tzinfo else dt.replace(tzinfo=zone(tz)), "--after")


def occurrences_table(occs: list[Occurrence], tz: str) -> Table:
    from rich.table import Table

    from hora.triggers.dst import zone

    table = Table(box=None, header_style="bold")
    for col in ("at (UTC)", f"local ({tz})", "note"):
        table.add_column(col)
    zi = zone(tz)
    for o in occs:
        note = f"skipped: {o.skipped}" if o.skipped else "; ".join(o.notes)
        table.add_row(o.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
                      o.at.astimezone(zi).isoformat(), note)
    return table


@schedules_cli.command("preview")
@handled
def schedules_preview(cron: Cron = None, rrule: RRule = None, at: At = None,
                      every: Every = None, start: Start = None, dtstart: DtStart = None,
                      tz: Tz = None, calendar: CalendarOpt = None,
                      subdivision: Subdivision = None, business_day: BusinessDay = None,
                      dst_gap: DstGapOpt = None, dst_fold: DstFoldOpt = None,
                      after: Annotated[str | None, typer.Option(
                          "--after", help="List occurrences strictly after this (a date is "
                                          "midnight in --tz) [default: now].")] = None,
                      count: Annotated[int, typer.Option("-n", "--count",
                                                         help="How many.")] = 10,
                      json_out: JsonOut = False) -> None:
    """The next occurrences of a trigger, without saving anything."""
    from hora.triggers.spec import (
        occurrence_to_json,
        preview,
        trigger_from_spec,
        trigger_timezone,
    )

    spec = trigger_spec(cron, rrule, at, every, start, dtstart, tz, calendar, subdivision,
                        business_day, dst_gap, dst_fold)
    trig = trigger_from_spec(spec)
    timezone = trigger_timezone(trig)
    occs = preview(trig, parse_after(after, timezone), count)
    if json_out:
        print_json({"occurrences": [occurrence_to_json(o, timezone) for o in occs]})
    else:
        console().print(occurrences_table(occs, timezone))


def print_schedule(s: Schedule, json_out: bool) -> None:
    from rich.table import Table

    from hora.wire import schedule_dict

    if json_out:
        print_json(schedule_dict(s))
        return
    table = Table(box=None, show_header=False)
    for key, value in schedule_dict(s).items():
        table.add_row(key, plain(value))
    console().print(table)


def plain(value: object) -> str:
    """A schedule field for people: text as is, nothing for None, JSON (never Python's repr)
    for the rest, so a trigger shown can be pasted back."""
    import json

    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@schedules_cli.command("create")
@handled
def schedules_create(task: Annotated[str, typer.Argument(help="Task name.")],
                     cron: Cron = None, rrule: RRule = None, at: At = None,
                     every: Every = None, start: Start = None, dtstart: DtStart = None,
                     tz: Tz = None, calendar: CalendarOpt = None,
                     subdivision: Subdivision = None, business_day: BusinessDay = None,
                     dst_gap: DstGapOpt = None, dst_fold: DstFoldOpt = None,
                     payload: Annotated[str, typer.Option("--payload", "-p",
                                                          help="JSON object.")] = "{}",
                     name: Annotated[str | None, typer.Option("--name")] = None,
                     misfire: Annotated[str, typer.Option(
                         "--misfire", help="skip | run_once | run_all")] = "skip",
                     overlap: Annotated[str, typer.Option(
                         "--overlap", help="allow | skip | queue | cancel_previous")] = "allow",
                     allow_unregistered: Annotated[bool, typer.Option(
                         "--allow-unregistered",
                         help="Schedule TASK although no worker registered it.")] = False,
                     database_url: DatabaseUrl = None, json_out: JsonOut = False) -> None:
    """Store a schedule: each occurrence of the trigger becomes a job of TASK."""
    from hora.app import check_public_task

    check_public_task(task)
    spec = trigger_spec(cron, rrule, at, every, start, dtstart, tz, calendar, subdivision,
                        business_day, dst_gap, dst_fold)
    data = parse_payload(payload)
    with open_app(database_url) as app:
        s = app.create_schedule(task, data, trigger=spec, name=name, misfire=misfire,
                                overlap=overlap, allow_unregistered=allow_unregistered)
    print_schedule(s, json_out)


@schedules_cli.command("update")
@handled
def schedules_update(schedule_id: Annotated[str, typer.Argument(
                         help="Schedule id, or its name.")],
                     cron: Cron = None, rrule: RRule = None, at: At = None,
                     every: Every = None, start: Start = None, dtstart: DtStart = None,
                     tz: Tz = None, calendar: CalendarOpt = None,
                     subdivision: Subdivision = None, business_day: BusinessDay = None,
                     dst_gap: DstGapOpt = None, dst_fold: DstFoldOpt = None,
                     payload: Annotated[str | None, typer.Option(
                         "--payload", "-p", help="JSON object.")] = None,
                     misfire: Annotated[str | None, typer.Option("--misfire")] = None,
                     overlap: Annotated[str | None, typer.Option("--overlap")] = None,
                     database_url: DatabaseUrl = None, json_out: JsonOut = False) -> None:
    """Change a schedule; its next occurrences are recomputed from now."""
    changes: dict[str, Any] = {}
    if any((cron, rrule, at, every)):
        changes["trigger"] = trigger_spec(cron, rrule, at, every, start, dtstart, tz,
                                          calendar, subdivision, business_day, dst_gap,
                                          dst_fold)
    if payload is not None:
        changes["payload"] = parse_payload(payload)
    if misfire is not None:
        changes["misfire"] = misfire
    if overlap is not None:
        changes["overlap"] = overlap
    if not changes:
        raise BadInput("nothing to change: give a trigger (--cron, --rrule, --at, --every), "
                       "--payload, --misfire or --overlap")
    with open_app(database_url) as app:
        s = app.update_schedule(schedule_ref(app, schedule_id), **changes)
    print_schedule(s, json_out)


@schedules_cli.command("list")
@handled
def schedules_list(state: Annotated[str | None, typer.Option("--state")] = None,
                   limit: Limit = 50, cursor: Cursor = None,
                   database_url: DatabaseUrl = None, json_out: JsonOut = False) -> None:
    """Schedules, newest first."""
    from rich.table import Table

    from hora.wire import iso_z, schedule_dict

    with open_app(database_url, read_only=True) as app:
        page = app.list_schedules(state=state, limit=limit, cursor=cursor)
    if json_out:
        print_json({"items": [schedule_dict(s) for s in page.items],
                    "next_cursor": page.next_cursor})
        return
    table = Table(box=None, header_style="bold")
    id_column(table, "id", [s.id for s in page.items])
    for col in ("name", "task", "state", "next fire (UTC)", "trigger"):
        table.add_column(col, overflow="fold")
    for s in page.items:
        table.add_row(s.id, s.name or "", s.task, s.state, iso_z(s.next_fire_at) or "never",
                      plain(s.trigger))
    console().print(table)
    more_hint(page.next_cursor)


ScheduleId = Annotated[str, typer.Argument(help="Schedule id, or its name.")]


def schedule_ref(app: Hora, ref: str) -> str:
    """The id of the schedule ``ref`` names: an id, else the name of exactly one schedule
    (names are what people remember; ids are what ``list`` prints)."""
    from hora.errors import NotFound

    try:
        return app.get_schedule(ref).id
    except NotFound:
        pass
    matches: list[str] = []
    cursor: str | None = None
    while True:
        page = app.list_schedules(limit=1000, cursor=cursor)
        matches.extend(s.id for s in page.items if s.name == ref)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise BadInput(f"{len(matches)} schedules are named {ref!r}: give one of their ids "
                       f"({', '.join(matches)})")
    raise NotFound(f"schedule {ref!r} not found: no schedule has that id or name")


@schedules_cli.command("show")
@handled
def schedules_show(schedule_id: ScheduleId, count: Annotated[int, typer.Option(
        "-n", "--count", help="Upcoming occurrences to show.")] = 5,
        database_url: DatabaseUrl = None, json_out: JsonOut = False) -> None:
    """One schedule and its next occurrences."""
    from hora.triggers.spec import occurrence_to_json, trigger_from_spec, trigger_timezone
    from hora.wire import schedule_dict

    with open_app(database_url, read_only=True) as app:
        schedule_id = schedule_ref(app, schedule_id)
        s = app.get_schedule(schedule_id)
        # A schedule the scheduler could not evaluate shows its error, not a failed preview.
        occs = [] if s.error is not None else app.preview_schedule(schedule_id, count)
    tz = "UTC" if s.error is not None else trigger_timezone(trigger_from_spec(s.trigger))
    if json_out:
        print_json({**schedule_dict(s),
                    "occurrences": [occurrence_to_json(o, tz) for o in occs]})
        return
    print_schedule(s, False)
    console().print(occurrences_table(occs, tz))


def _control(action: str, schedule_id: str, database_url: str | None, json_out: bool) -> None:
    with open_app(database_url) as app:
        s = getattr(app, f"{action}_schedule")(schedule_ref(app, schedule_id))
    print_schedule(s, json_out)


@schedules_cli.command("pause")
@handled
def schedules_pause(schedule_id: ScheduleId, database_url: DatabaseUrl = None,
                    json_out: JsonOut = False) -> None:
    """Stop firing; occurrences while paused are recorded as skipped on resume."""
    _control("pause", schedule_id, database_url, json_out)


@schedules_cli.command("resume")
@handled
def schedules_resume(schedule_id: ScheduleId, database_url: DatabaseUrl = None,
                     json_out: JsonOut = False) -> None:
    """Fire again, from now on."""
    _control("resume", schedule_id, database_url, json_out)


@schedules_cli.command("trigger")
@handled
def schedules_trigger(schedule_id: ScheduleId, database_url: DatabaseUrl = None,
                      json_out: JsonOut = False) -> None:
    """Enqueue the schedule's job now, outside its trigger."""
    with open_app(database_url) as app:
        job = app.trigger_schedule(schedule_ref(app, schedule_id))
    if json_out:
        print_json({"job_id": job.id})
    else:
        say(f"enqueued job {job.id}")


@schedules_cli.command("delete")
@handled
def schedules_delete(schedule_id: ScheduleId, database_url: DatabaseUrl = None,
                     json_out: JsonOut = False) -> None:
    """Delete a schedule and its ledger (jobs it fired stay)."""
    with open_app(database_url) as app:
        schedule_id = schedule_ref(app, schedule_id)
        app.delete_schedule(schedule_id)
    if json_out:
        print_json({"deleted": schedule_id})
    else:
        say(f"deleted schedule {schedule_id}")


@schedules_cli.command("ticks")
@handled
def schedules_ticks(schedule_id: ScheduleId,
                    outcome: Annotated[str | None, typer.Option(
                        "--outcome", help="fired | skipped")] = None,
                    limit: Limit = 50, cursor: Cursor = None,
                    database_url: DatabaseUrl = None, json_out: JsonOut = False) -> None:
    """The tick ledger: each occurrence, fired (job id) or skipped (why), newest first."""
    from rich.table import Table

    from hora.wire import iso_z, tick_dict

    with open_app(database_url, read_only=True) as app:
        page = app.schedule_ticks(schedule_ref(app, schedule_id), outcome=outcome, limit=limit,
                                  cursor=cursor)
    if json_out:
        print_json({"items": [tick_dict(t) for t in page.items],
                    "next_cursor": page.next_cursor})
        return
    table = Table(box=None, header_style="bold")
    for col in ("nominal (UTC)", "fired at (UTC)", "outcome", "job / reason"):
        table.add_column(col)
    for t in page.items:
        table.add_row(iso_z(t.nominal) or "", iso_z(t.fire_at) or "", t.outcome,
                      t.job_id or t.reason or "")
    console().print(table)
    more_hint(page.next_cursor)
