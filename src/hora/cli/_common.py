"""What every ``hora`` sub-command shares: options, input parsing, errors, output.

Conventions: every command takes ``--database-url`` (default: ``$HORA_DATABASE_URL``, else
``sqlite:///hora.db``). People get rich tables; ``--json`` prints one JSON document on
stdout for scripts. Any hora error or bad input is one line ``error: ...`` on stderr and
exit code 2, like a usage error, never a traceback.

This module is imported by ``hora --help``, so it imports only typer and hora's leaf modules
(errors, limits). The app, the store, rich and ``hora.render`` are imported inside the
functions that use them: a command pays for what it runs, and only when it runs.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import re
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, ParamSpec

import typer

from hora.errors import HoraError
from hora.limits import MAX_JSON_DEPTH, check_instant

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from hora.app import Hora
    from hora.models import Job

P = ParamSpec("P")

PIPED_WIDTH = 160


def group(help: str) -> typer.Typer:
    """A sub-command group (``hora jobs``, ``hora dlq``...): help without arguments."""
    return typer.Typer(help=help, no_args_is_help=True, rich_markup_mode=None)


DatabaseUrl = Annotated[str | None, typer.Option(
    "--database-url", show_default=False,
    help="sqlite:///path.db or postgresql://... [default: $HORA_DATABASE_URL, else "
         "sqlite:///hora.db]")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print JSON to stdout.")]
Limit = Annotated[int, typer.Option("--limit", help="Page size (1-1000).")]
Cursor = Annotated[str | None, typer.Option("--cursor", help="next_cursor of the previous page.")]
TaskFilter = Annotated[str | None, typer.Option("--task", help="Only jobs of this task.")]
QueueFilter = Annotated[str | None, typer.Option("--queue", help="Only jobs in this queue.")]
LogLevel = Annotated[str, typer.Option(envvar="HORA_LOG_LEVEL",
                                       help="DEBUG, INFO, WARNING or ERROR.")]
LogFormat = Annotated[str, typer.Option(
    envvar="HORA_LOG_FORMAT",
    help="text, or json: one object per line with the job id, task, correlation id and "
         "trace ids of the job being run.")]


# -- errors and input -------------------------------------------------------------------------


class BadInput(Exception):
    """Input the CLI refuses before it touches the database."""


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    raise typer.Exit(2)


def handled(fn: Callable[P, None]) -> Callable[P, None]:
    """Turn hora errors and bad input into one line on stderr and exit code 2."""

    @functools.wraps(fn)
    def command(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            fn(*args, **kwargs)
        except (HoraError, BadInput, ValueError) as e:
            fail(str(e) or type(e).__name__)

    return command


def parse_instant(value: str, option: str) -> datetime:
    """An ISO-8601 instant with an offset (``Z`` or ``+01:00``); naive times are refused."""
    try:
        dt = datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadInput(f"{option} {value!r} is not an ISO-8601 datetime "
                       "(e.g. 2030-01-31T09:00:00+01:00)") from None
    if dt.tzinfo is None:
        raise BadInput(f"{option} {value!r} has no time zone offset; add one, "
                       "e.g. 2030-01-31T09:00:00Z or 2030-01-31T09:00:00+01:00")
    return check_instant(dt, option)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?[smhd])+")


def parse_duration(value: str) -> float:
    """Seconds from ``90``, ``1.5``, ``90s``, ``5m``, ``2h``, ``1d`` or ``1h30m``."""
    text = value.strip().lower()
    with contextlib.suppress(ValueError):
        seconds = float(text)
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
        raise BadInput(f"duration {value!r} must be a finite number of seconds >= 0")
    if not _DURATION.fullmatch(text):
        raise BadInput(f"duration {value!r} is not seconds or a form like 90s, 5m, 2h, 1d")
    return sum(float(n) * _UNITS[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)([smhd])", text))


def parse_json(text: str, option: str) -> Any:
    """The JSON value an option holds, or one line saying what is wrong with it."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise BadInput(f"{option} is not valid JSON: {e}") from None
    except RecursionError:
        raise BadInput(f"{option}: JSON nested deeper than {MAX_JSON_DEPTH} levels") from None


def parse_json_object(text: str, option: str, example: str = "") -> dict[str, Any]:
    value = parse_json(text, option)
    if not isinstance(value, dict):
        raise BadInput(f"{option} must be a JSON object{', e.g. ' + example if example else ''}")
    return value


def parse_payload(text: str) -> dict[str, Any]:
    return parse_json_object(text, "--payload", example="'{\"user_id\": \"u1\"}'")


# -- the app and output -----------------------------------------------------------------------


@contextlib.contextmanager
def open_app(database_url: str | None, *, read_only: bool = False,
             **options: Any) -> Iterator[Hora]:
    """The app on ``--database-url`` (else ``$HORA_DATABASE_URL``, else ``./hora.db``).

    ``read_only``: the command only reads, so a missing SQLite file is an error naming the
    path, not a new empty database that answers "no jobs". Every command checks a PostgreSQL
    URL with one bounded connection first (:func:`check_database`)."""
    from hora.app import Hora, database_url_from_env

    url = database_url or database_url_from_env()
    check_database(url, read_only=read_only)
    app = Hora(url, **options)
    try:
        yield app
    finally:
        app.close()


def sqlite_path(url: str) -> str | None:
    """The file a SQLite URL (or bare path) names; None for PostgreSQL and other schemes."""
    if url.startswith("sqlite:///"):
        return url[len("sqlite:///"):]
    return None if "://" in url or url.startswith("sqlite:") else url


def check_database(url: str, *, read_only: bool = False) -> None:
    """Refuse a database the command cannot use, before hora opens (and migrates) it.

    A read-only command on a missing SQLite file fails naming the file; a PostgreSQL URL gets
    one connection attempt bounded by hora's connect timeout (5 s, or the URL's own), so an
    unreachable server or a missing database is one line within seconds instead of the
    pool's retries and warnings."""
    if url.startswith(("postgresql://", "postgres://")):
        check_postgres(url)
        return
    path = sqlite_path(url)
    if read_only and path is not None and path != ":memory:" and not os.path.exists(path):
        raise BadInput(f"no database at {os.path.abspath(path)}: give --database-url or set "
                       "HORA_DATABASE_URL (this command only reads, so it creates none)")


def check_postgres(url: str) -> None:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    from hora.store.pg_connect import connect_params

    params = connect_params(url)
    where = postgres_where(conninfo_to_dict(params))
    try:
        conn = psycopg.connect(params, autocommit=True)
    except psycopg.Error as e:
        raise BadInput(f"cannot connect to PostgreSQL at {where}: {connect_reason(e)}"
                       ) from None
    conn.close()


def postgres_where(info: dict[str, Any]) -> str:
    """``host:port/db`` of a connection's parameters, with libpq's defaults (no password)."""
    host = str(info.get("host") or info.get("hostaddr") or os.environ.get("PGHOST")
               or "localhost")
    port = str(info.get("port") or os.environ.get("PGPORT") or 5432)
    db = str(info.get("dbname") or os.environ.get("PGDATABASE") or info.get("user")
             or "postgres")
    return f"{host}:{port}/{db}"


def connect_reason(error: Exception) -> str:
    """libpq's reason without its preamble: 'Connection refused', 'database "x" does not
    exist', 'timeout expired'..."""
    text = " ".join(str(error).split()) or type(error).__name__
    for marker in ("failed: FATAL: ", "failed: "):
        if marker in text:
            text = text.rsplit(marker, 1)[1]
            break
    return text.removesuffix(" Is the server running on that host and accepting TCP/IP "
                             "connections?").strip()


def console() -> Console:
    """Rich output on stdout; piped output is not squeezed into 80 columns."""
    from rich.console import Console

    piped = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    return Console(highlight=False, width=PIPED_WIDTH if piped else None)


def id_column(table: Table, header: str, ids: list[str]) -> None:
    """An id column that is never folded nor cut: every other command needs the whole id,
    so the other columns give way (they fold) before it does."""
    table.add_column(header, no_wrap=True, overflow="ignore",
                     min_width=max([len(header), *map(len, ids)]))


def more_hint(next_cursor: str | None) -> None:
    """Under a table that is one page of a listing: how to get the next one."""
    if next_cursor:
        say(f"more: pass --cursor {next_cursor}")


def print_json(value: Any) -> None:
    from hora import wire

    typer.echo(wire.dumps(value))


def say(message: str, style: str = "") -> None:
    from rich.text import Text

    console().print(Text(message, style=style), soft_wrap=True)


def show_job(job: Job, json_out: bool) -> None:
    """One job with its attempts and history, as ``hora jobs show`` and ``hora dlq show``."""
    from hora import render, wire

    if json_out:
        print_json(wire.job_dict(job, history=True))
    else:
        console().print(render.job_detail(job))
