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
    parse_duration,
    parse_json,
    parse_json_object,
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

schedules_cli = group("Recurring schedules: preview, create, ensure (by name), update, list, "
                      "show, pause, resume, trigger, delete, and the tick ledger.")

Cron = Annotated[str | None, typer.Option("--cron", help="Cron expression (5 or 6 fields).")]
RRule = Annotated[str | None, typer.Option(
    "--rrule", help="iCalendar text (DTSTART;TZID=...:...\\nRRULE:...), or an RRULE with "
                    "--dtstart.")]
At = Annotated[str | None, typer.Option("--at", help="One instant, ISO-8601 with offset.")]
Every = Annotated[str | None, typer.Option("--every", help="ISO-8601 duration, e.g. PT15M.")]
Start = Annotated[str | None, typer.Option(
    "--start", help="Anchor of --every (ISO-8601) [default: now, stored with the schedule].")]
End = Annotated[str | None, typer.Option("--end", help="Last instant of --every (ISO-8601).")]
DtStart = Annotated[str | None, typer.Option("--dtstart", help="Local DTSTART for --rrule.")]
Tz = Annotated[str | None, typer.Option("--tz", "--timezone", help="IANA time zone.")]
CalendarOpt = Annotated[str | None, typer.Option(
    "--calendar", help="Holiday calendar: a country code (US, GB, DE...).")]
Subdivision = Annotated[str | None, typer.Option(
    "--subdivision", help="e.g. ENG, CA (with --calendar).")]
BusinessDay = Annotated[str | None, typer.Option(
    "--business-day", help="skip | next | previous (with --calendar).")]
DstGapOpt = Annotated[str | None, typer.Option("--dst-gap", help="first_valid | shift | skip")]
DstFoldOpt = Annotated[str | None, typer.Option("--dst-fold", help="first | last | both")]
WindowOpt = Annotated[str | None, typer.Option(
    "--window", help="Delivery window, local HH:MM-HH:MM (e.g. 09:00-18:00).")]
WindowDays = Annotated[str | None, typer.Option(
    "--window-days", help="With --window: business, or weekday numbers 0-6 (Monday 0), "
                          "e.g. 0,1,2,3,4.")]
JitterOpt = Annotated[str | None, typer.Option(
    "--jitter", help="Spread each occurrence by up to this much (90s, 5m...).")]
TriggerJson = Annotated[str | None, typer.Option(
    "--trigger-json", help="The trigger as the API takes it, e.g. '{\"cron\": \"0 9 * * *\", "
                           "\"timezone\": \"Europe/Paris\"}' (instead of --cron ...).")]
TriggerFile = Annotated[str | None, typer.Option(
    "--trigger-file", help="A file holding the trigger JSON (instead of --cron ...).")]


#: The shorthand options that shape a trigger, by their parameter name.
SHORTHAND = {"cron": "--cron", "rrule": "--rrule", "at": "--at", "every": "--every",
             "start": "--start", "end": "--end", "dtstart": "--dtstart", "tz": "--tz",
             "calendar": "--calendar", "subdivision": "--subdivision",
             "business_day": "--business-day", "dst_gap": "--dst-gap", "dst_fold": "--dst-fold",
             "window": "--window", "window_days": "--window-days", "jitter": "--jitter"}


def trigger_spec(cron: str | None = None, rrule: str | None = None, at: str | None = None,
                 every: str | None = None, start: str | None = None, dtstart: str | None = None,
                 tz: str | None = None, calendar: str | None = None,
                 subdivision: str | None = None, business_day: str | None = None,
                 dst_gap: str | None = None, dst_fold: str | None = None, *,
                 end: str | None = None, window: str | None = None,
                 window_days: str | None = None, jitter: str | None = None,
                 trigger_json: str | None = None, trigger_file: str | None = None,
                 required: bool = True) -> dict[str, Any] | None:
    """The trigger spec the options describe: the JSON of ``--trigger-json`` /
    ``--trigger-file``, or one built from the shorthand. An option that would be ignored in
    the combination given is refused (``--start`` without ``--every``...). Without any
    trigger option: an error, or None when ``required`` is false (``update``)."""
    given = {k: v for k, v in locals().items() if k in SHORTHAND and v is not None}
    if trigger_json is not None and trigger_file is not None:
        raise BadInput("give --trigger-json or --trigger-file, not both")
    if trigger_json is not None or trigger_file is not None:
        if given:
            raise BadInput(f"{', '.join(SHORTHAND[k] for k in given)} cannot be combined with "
                           f"{'--trigger-json' if trigger_json is not None else '--trigger-file'}"
                           ": put the field in the trigger JSON")
        return read_trigger_json(trigger_json, trigger_file)
    kinds = [SHORTHAND[k] for k in ("cron", "rrule", "at", "every") if k in given]
    if not kinds:
        if not given and not required:
            return None
        raise BadInput("give exactly one of --cron, --rrule, --at, --every, --trigger-json, "
                       "--trigger-file" + (f" ({', '.join(SHORTHAND[k] for k in given)} "
                                           "shape a trigger but name none)" if given else ""))
    if len(kinds) > 1:
        raise BadInput(f"give exactly one of --cron, --rrule, --at, --every (got "
                       f"{', '.join(kinds)})")
    belongs = {"start": "--every", "end": "--every", "dtstart": "--rrule",
               "subdivision": "--calendar", "business_day": "--calendar",
               "window_days": "--window"}
    for key, owner in belongs.items():
        if key in given and owner.lstrip("-").replace("-", "_") not in given:
            raise BadInput(f"{SHORTHAND[key]} only goes with {owner}; without it it would be "
                           "ignored")
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
        if tz:
            spec["timezone"] = tz
    else:
        # No start: the schedule (or preview) counts from now, as on every surface
        # (hora.triggers.spec.with_defaults).
        spec = {"every": every}
        if start:
            spec["start"] = start
        if end:
            spec["end"] = end
        if tz:
            spec["timezone"] = tz
    if calendar:
        spec["calendar"] = {"holidays": calendar, "business_day": business_day or "skip"}
        if subdivision:
            spec["calendar"]["subdivision"] = subdivision
    if window:
        spec["window"] = parse_window(window, window_days)
    if jitter is not None:
        spec["jitter"] = parse_duration(jitter)
    if dst_gap:
        spec["dst_gap"] = dst_gap
    if dst_fold:
        spec["dst_fold"] = dst_fold
    return spec


def read_trigger_json(text: str | None, path: str | None) -> dict[str, Any]:
    option = "--trigger-json" if text is not None else "--trigger-file"
    if path is not None:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise BadInput(f"--trigger-file {path}: {e.strerror or e}") from None
    assert text is not None
    spec = parse_json(text, option)
    if isinstance(spec, str):
        return {"cron": spec}  # a bare string, as the API reads it: checked like one
    if not isinstance(spec, dict):
        raise BadInput(f"{option} must be a JSON object such as "
                       '{"cron": "0 9 * * *", "timezone": "Europe/Paris"}')
    return spec


def parse_window(window: str, days: str | None) -> dict[str, Any]:
    start, sep, end = window.partition("-")
    if not sep or not start.strip() or not end.strip():
        raise BadInput(f"--window {window!r} is not HH:MM-HH:MM, e.g. 09:00-18:00")
    spec: dict[str, Any] = {"start": start.strip(), "end": end.strip()}
    if days is not None:
        if days.strip() == "business":
            spec["days"] = "business"
        else:
            try:
                spec["days"] = [int(d) for d in days.split(",")]
            except ValueError:
                raise BadInput(f"--window-days {days!r} is not 'business' or weekday numbers "
                               "such as 0,1,2,3,4 (Monday 0)") from None
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
                      every: Every = None, start: Start = None, end: End = None,
                      dtstart: DtStart = None, tz: Tz = None, calendar: CalendarOpt = None,
                      subdivision: Subdivision = None, business_day: BusinessDay = None,
                      dst_gap: DstGapOpt = None, dst_fold: DstFoldOpt = None,
                      window: WindowOpt = None, window_days: WindowDays = None,
                      jitter: JitterOpt = None, trigger_json: TriggerJson = None,
                      trigger_file: TriggerFile = None,
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
        with_defaults,
    )

    spec = trigger_spec(cron, rrule, at, every, start, dtstart, tz, calendar, subdivision,
                        business_day, dst_gap, dst_fold, end=end, window=window,
                        window_days=window_days, jitter=jitter, trigger_json=trigger_json,
                        trigger_file=trigger_file)
    assert spec is not None
    trig = trigger_from_spec(with_defaults(spec, datetime.now(UTC)))
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


TaskArg = Annotated[str | None, typer.Argument(
    help="Task name (leave out with --target-json).", show_default=False)]
PayloadOpt = Annotated[str | None, typer.Option(
    "--payload", "-p", help="The task's keyword arguments, a JSON object.")]
TargetJson = Annotated[str | None, typer.Option(
    "--target-json", help='An HTTP call instead of a task: {"url": ..., "method": "POST", '
                          '"headers": {}, "body": ..., "timeout": 30}.')]
QueueOpt = Annotated[str | None, typer.Option("--queue", help="Queue of the jobs.")]
PriorityOpt = Annotated[int | None, typer.Option("--priority", help="Higher runs first.")]
MaxAttemptsOpt = Annotated[int | None, typer.Option("--max-attempts",
                                                    help="Tries per job (1-100).")]
TimeoutOpt = Annotated[str | None, typer.Option(
    "--timeout", help="Per attempt: 90s, 5m, 1h...")]
RetryJson = Annotated[str | None, typer.Option(
    "--retry-json", help='Retry policy as the API takes it: {"max_attempts": 5, "backoff": '
                         '"exponential", "base": 1, "factor": 2, "max_delay": 3600, '
                         '"jitter": "full", "non_retryable": []}.')]
CorrelationOpt = Annotated[str | None, typer.Option("--correlation-id",
                                                    help="Carried by every job.")]
MisfireOpt = Annotated[str | None, typer.Option(
    "--misfire", help="skip | run_once | run_all [default: skip]")]
MisfireGraceOpt = Annotated[str | None, typer.Option(
    "--misfire-grace", help="How late an occurrence may still run (60s, 5m...) "
                            "[default: 60s].")]
CatchupOpt = Annotated[int | None, typer.Option(
    "--catchup-limit", help="Runs at most with --misfire run_all [default: 10].")]
OverlapOpt = Annotated[str | None, typer.Option(
    "--overlap", help="allow | skip | queue | cancel_previous [default: allow]")]
PausedOpt = Annotated[bool, typer.Option("--paused", help="Create it paused.")]
AllowUnregisteredOpt = Annotated[bool, typer.Option(
    "--allow-unregistered", help="Schedule TASK although no worker registered it.")]


def schedule_options(task: str | None, target_json: str | None, payload: str | None,
                     queue: str | None, priority: int | None, max_attempts: int | None,
                     timeout: str | None, retry_json: str | None, correlation_id: str | None,
                     misfire: str | None, misfire_grace: str | None,
                     catchup_limit: int | None, overlap: str | None,
                     ) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(task, payload, keyword options) of ``create`` / ``ensure``, as the API reads its
    body: a task with its payload, or an HTTP target (checked as the API checks it)."""
    from hora.app import check_public_task

    if (task is None) == (target_json is None):
        raise BadInput("give exactly one of TASK (a task's name) or --target-json (an HTTP "
                       "call)")
    options: dict[str, Any] = {}
    if target_json is not None:
        if payload is not None:
            raise BadInput("--payload belongs to a task; an HTTP target carries its body in "
                           "--target-json")
        from hora.http_target import TASK_NAME, AddressPolicy, check_target_address, parse_target

        target = parse_target(parse_json_object(target_json, "--target-json"))
        check_target_address(target["url"], AddressPolicy.from_env())
        task, data = TASK_NAME, target
    else:
        assert task is not None
        check_public_task(task)
        data = parse_payload(payload if payload is not None else "{}")
    if catchup_limit is not None and misfire != "run_all":
        raise BadInput("--catchup-limit only applies with --misfire run_all; without it it "
                       "would be ignored")
    if retry_json is not None:
        options["retry"] = parse_retry(retry_json)
    for key, value in (("queue", queue), ("priority", priority),
                       ("max_attempts", max_attempts), ("correlation_id", correlation_id),
                       ("misfire", misfire), ("catchup_limit", catchup_limit),
                       ("overlap", overlap)):
        if value is not None:
            options[key] = value
    if timeout is not None:
        options["timeout"] = parse_duration(timeout)
    if misfire_grace is not None:
        options["misfire_grace"] = parse_duration(misfire_grace)
    return task, data, options


def parse_retry(text: str) -> Any:
    from hora.retry import RetryPolicy

    fields = parse_json_object(text, "--retry-json")
    allowed = ("max_attempts", "backoff", "base", "factor", "max_delay", "jitter",
               "non_retryable")
    unknown = sorted(set(fields) - set(allowed))
    if unknown:
        raise BadInput(f"--retry-json: unknown field {unknown[0]!r} (allowed: "
                       f"{', '.join(allowed)})")
    if "non_retryable" in fields:
        if not isinstance(fields["non_retryable"], list):
            raise BadInput("--retry-json: non_retryable must be a list of error type names")
        fields["non_retryable"] = tuple(fields["non_retryable"])
    try:
        return RetryPolicy(**fields)
    except TypeError as e:
        raise BadInput(f"--retry-json: {e}") from None


@schedules_cli.command("create")
@handled
def schedules_create(task: TaskArg = None,
                     cron: Cron = None, rrule: RRule = None, at: At = None,
                     every: Every = None, start: Start = None, end: End = None,
                     dtstart: DtStart = None, tz: Tz = None, calendar: CalendarOpt = None,
                     subdivision: Subdivision = None, business_day: BusinessDay = None,
                     dst_gap: DstGapOpt = None, dst_fold: DstFoldOpt = None,
                     window: WindowOpt = None, window_days: WindowDays = None,
                     jitter: JitterOpt = None, trigger_json: TriggerJson = None,
                     trigger_file: TriggerFile = None, payload: PayloadOpt = None,
                     target_json: TargetJson = None,
                     name: Annotated[str | None, typer.Option("--name")] = None,
                     queue: QueueOpt = None, priority: PriorityOpt = None,
                     max_attempts: MaxAttemptsOpt = None, timeout: TimeoutOpt = None,
                     retry_json: RetryJson = None, correlation_id: CorrelationOpt = None,
                     misfire: MisfireOpt = None, misfire_grace: MisfireGraceOpt = None,
                     catchup_limit: CatchupOpt = None, overlap: OverlapOpt = None,
                     paused: PausedOpt = False,
                     allow_unregistered: AllowUnregisteredOpt = False,
                     database_url: DatabaseUrl = None, json_out: JsonOut = False) -> None:
    """Store a schedule: each occurrence of the trigger becomes a job of TASK (or an HTTP
    call). Takes every field of POST /v1/schedules."""
    spec = trigger_spec(cron, rrule, at, every, start, dtstart, tz, calendar, subdivision,
                        business_day, dst_gap, dst_fold, end=end, window=window,
                        window_days=window_days, jitter=jitter, trigger_json=trigger_json,
                        trigger_file=trigger_file)
    assert spec is not None
    task, data, options = schedule_options(
        task, target_json, payload, queue, priority, max_attempts, timeout, retry_json,
        correlation_id, misfire, misfire_grace, catchup_limit, overlap)
    with open_app(database_url) as app:
        s = app.create_schedule(task, data, trigger=spec, name=name, paused=paused,
                                allow_unregistered=allow_unregistered, **options)
    print_schedule(s, json_out)


@schedules_cli.command("ensure")
@handled
def schedules_ensure(name: Annotated[str, typer.Argument(help="The schedule's name.")],
                     task: TaskArg = None,
                     cron: Cron = None, rrule: RRule = None, at: At = None,
                     every: Every = None, start: Start = None, end: End = None,
                     dtstart: DtStart = None, tz: Tz = None, calendar: CalendarOpt = None,
                     subdivision: Subdivision = None, business_day: BusinessDay = None,
                     dst_gap: DstGapOpt = None, dst_fold: DstFoldOpt = None,
                     window: WindowOpt = None, window_days: WindowDays = None,
                     jitter: JitterOpt = None, trigger_json: TriggerJson = None,
                     trigger_file: TriggerFile = None, payload: PayloadOpt = None,
                     target_json: TargetJson = None,
                     queue: QueueOpt = None, priority: PriorityOpt = None,
                     max_attempts: MaxAttemptsOpt = None, timeout: TimeoutOpt = None,
                     retry_json: RetryJson = None, correlation_id: CorrelationOpt = None,
                     misfire: MisfireOpt = None, misfire_grace: MisfireGraceOpt = None,
                     catchup_limit: CatchupOpt = None, overlap: OverlapOpt = None,
                     paused: PausedOpt = False,
                     allow_unregistered: AllowUnregisteredOpt = False,
                     database_url: DatabaseUrl = None, json_out: JsonOut = False) -> None:
    """Create or update the schedule named NAME (PUT /v1/schedules/by-name/NAME): the same
    options as create. Same spec: nothing written ("unchanged"); different: "updated", its
    future recomputed from now, its paused/active state kept. --paused applies on creation."""
    spec = trigger_spec(cron, rrule, at, every, start, dtstart, tz, calendar, subdivision,
                        business_day, dst_gap, dst_fold, end=end, window=window,
                        window_days=window_days, jitter=jitter, trigger_json=trigger_json,
                        trigger_file=trigger_file)
    assert spec is not None
    task, data, options = schedule_options(
        task, target_json, payload, queue, priority, max_attempts, timeout, retry_json,
        correlation_id, misfire, misfire_grace, catchup_limit, overlap)
    with open_app(database_url) as app:
        s, outcome = app.ensure_schedule(task, data, trigger=spec, name=name, paused=paused,
                                         allow_unregistered=allow_unregistered, **options)
    if json_out:
        from hora.wire import schedule_dict

        print_json({**schedule_dict(s), "outcome": outcome})
        return
    say(f"{outcome} schedule {s.id} ({name})")
    print_schedule(s, False)


@schedules_cli.command("update")
@handled
def schedules_update(schedule_id: Annotated[str, typer.Argument(
                         help="Schedule id, or its name.")],
                     cron: Cron = None, rrule: RRule = None, at: At = None,
                     every: Every = None, start: Start = None, end: End = None,
                     dtstart: DtStart = None, tz: Tz = None, calendar: CalendarOpt = None,
                     subdivision: Subdivision = None, business_day: BusinessDay = None,
                     dst_gap: DstGapOpt = None, dst_fold: DstFoldOpt = None,
                     window: WindowOpt = None, window_days: WindowDays = None,
                     jitter: JitterOpt = None, trigger_json: TriggerJson = None,
                     trigger_file: TriggerFile = None, payload: PayloadOpt = None,
                     target_json: TargetJson = None,
                     name: Annotated[str | None, typer.Option("--name")] = None,
                     queue: QueueOpt = None, priority: PriorityOpt = None,
                     max_attempts: MaxAttemptsOpt = None, timeout: TimeoutOpt = None,
                     correlation_id: CorrelationOpt = None,
                     misfire: MisfireOpt = None, misfire_grace: MisfireGraceOpt = None,
                     catchup_limit: CatchupOpt = None, overlap: OverlapOpt = None,
                     database_url: DatabaseUrl = None, json_out: JsonOut = False) -> None:
    """Change a schedule (PATCH /v1/schedules/ID); its next occurrences are recomputed from
    now. A new trigger replaces the old one whole."""
    changes: dict[str, Any] = {}
    spec = trigger_spec(cron, rrule, at, every, start, dtstart, tz, calendar, subdivision,
                        business_day, dst_gap, dst_fold, end=end, window=window,
                        window_days=window_days, jitter=jitter, trigger_json=trigger_json,
                        trigger_file=trigger_file, required=False)
    if spec is not None:
        changes["trigger"] = spec
    if payload is not None and target_json is not None:
        raise BadInput("give --payload (a task's) or --target-json (an HTTP call's), not both")
    if payload is not None:
        changes["payload"] = parse_payload(payload)
    target: dict[str, Any] | None = None
    if target_json is not None:
        from hora.http_target import AddressPolicy, check_target_address, parse_target

        target = parse_target(parse_json_object(target_json, "--target-json"))
        check_target_address(target["url"], AddressPolicy.from_env())
        changes["payload"] = target
    for key, value in (("name", name), ("queue", queue), ("priority", priority),
                       ("max_attempts", max_attempts), ("correlation_id", correlation_id),
                       ("misfire", misfire), ("catchup_limit", catchup_limit),
                       ("overlap", overlap)):
        if value is not None:
            changes[key] = value
    if timeout is not None:
        changes["timeout"] = parse_duration(timeout)
    if misfire_grace is not None:
        changes["misfire_grace"] = parse_duration(misfire_grace)
    if not changes:
        raise BadInput("nothing to change: give a trigger (--cron, --rrule, --at, --every, "
                       "--trigger-json, --trigger-file) or an option such as --payload, "
                       "--queue, --misfire")
    with open_app(database_url) as app:
        schedule_id = schedule_ref(app, schedule_id)
        if "payload" in changes:
            from hora.http_target import TASK_NAME

            calls = app.get_schedule(schedule_id).task == TASK_NAME
            if calls and target is None:
                raise BadInput("this schedule calls an HTTP target; change it with "
                               "--target-json")
            if target is not None and not calls:
                raise BadInput("this schedule runs a task; change its --payload")
        s = app.update_schedule(schedule_id, **changes)
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
