"""``hora demo``: a first run in one command, on its own database."""

from __future__ import annotations

from typing import Annotated

import typer

from hora.cli._common import BadInput, check_database, console, handled, print_json, say

DEMO_DATABASE_URL = "sqlite:///hora-demo.db"


@handled
def demo(
    database_url: Annotated[str, typer.Option(
        "--database-url", help="Where the demo writes (it ignores $HORA_DATABASE_URL, so it "
        "never touches your real database).")] = DEMO_DATABASE_URL,
    jobs: Annotated[int, typer.Option(help="How many succeeding greet jobs.")] = 3,
    json_out: Annotated[bool, typer.Option("--json", help="Print the demo's jobs as JSON "
                                                          "(the wire form).")] = False,
) -> None:
    """Enqueue a few demo jobs, run a worker until idle, and show what happened."""
    import asyncio

    from hora import demo as demo_tasks
    from hora import render
    from hora.states import JobState

    if not 0 <= jobs <= 100:
        raise BadInput("--jobs must be between 0 and 100")
    check_database(database_url)
    app = demo_tasks.create_app(database_url)
    try:
        run = demo_tasks.enqueue_demo_jobs(app, jobs)
        note = (f"enqueued {len(run.job_ids)} jobs (correlation id {run.correlation_id}) in "
                f"{database_url}; running a worker until idle...")
        if json_out:
            typer.echo(note, err=True)  # stdout is the JSON document alone
        else:
            say(note)
        worker = app.worker(poll_interval=0.05, concurrency=8, threads=4)
        asyncio.run(worker.run(until_idle=True))
        page = app.list_jobs(correlation_id=run.correlation_id, limit=1000)
        dead = [j for j in page.items if j.state is JobState.DEAD]
    finally:
        app.close()
    if json_out:
        from hora import wire

        print_json({"correlation_id": run.correlation_id, "database_url": database_url,
                    "jobs": [wire.job_dict(j) for j in sorted(page.items, key=lambda j: j.id)],
                    "dead": [j.id for j in dead]})
        return
    c = console()
    c.print(render.jobs_table(sorted(page.items, key=lambda j: j.id), width=c.width,
                              title="jobs"))
    c.print(render.jobs_table(dead, width=c.width, title="dead-letter queue", errors=True))
    url = f"--database-url {database_url}"
    say("next, try:", style="bold")
    hints = [f"hora jobs list {url} --correlation-id {run.correlation_id}",
             f"hora dlq list {url}"]
    if dead:
        hints += [f"hora dlq show {dead[0].id} {url}", f"hora dlq replay {dead[0].id} {url}"]
    hints.append(f"hora worker --app hora.demo:app {url} --until-idle")
    for hint in hints:
        say(f"  {hint}")
