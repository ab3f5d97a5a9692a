"""Every ``hora ...`` command shown in README.md and docs/*.md runs (issue 11, item 7).

The commands are read from the fenced shell blocks of the docs, so a command added to the
docs later is picked up with no change here. The README's synopsis notation is expanded:
``a | b`` gives one command per alternative (``hora tenants list | show ID`` is ``hora tenants
list`` and ``hora tenants show ID``); ``[...]`` is optional, so each line runs once without
its optional parts and once with them (first alternative of ``x|y``; a part holding ``...``
stays out); ``ID|NAME`` takes the first. Placeholders (JOB_ID, ID, KEY_ID, REQUEST...) are
filled from a database seeded once and copied for each command, given as
``$HORA_DATABASE_URL`` as a user would.

The coordinator edits :data:`SKIP` (command prefix -> why it cannot run here),
:data:`EXPECTED_EXIT` (a documented non-zero exit) and :data:`PLACEHOLDERS`.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hora.cli import cli
from hora.testing import run_until_idle
from tests.cli.workflow_app import build

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

#: Commands (by prefix) that are not run, and why. Only what needs a long-running process.
SKIP = {
    "hora serve": "a long-running server (tests/api starts one as a subprocess)",
    "hora worker": "without --until-idle it runs until a signal (myapp:app is the reader's "
                   "app); `hora worker --until-idle` is covered in tests/cli/test_cli.py",
}

#: A documented command whose documented outcome is a non-zero exit, and why.
EXPECTED_EXIT: dict[str, tuple[int, str]] = {
    "hora dlq replay --all": (2, "no terminal and no --yes: refused (the README says it asks)"),
    "hora dlq discard --all": (2, "no terminal and no --yes: refused (the README says it "
                                  "asks)"),
    "hora workflows start NAME": (2, "cli.expense takes a required amount: without --args "
                                     "its registered schema refuses the start"),
}
#: Prefixes whose documented outcome depends on the seeded record: the code, and why.
EXPECTED_EXIT_PREFIX: dict[str, tuple[int, str]] = {
    "hora jobs wait": (1, "JOB_ID is the seeded dead job: its run ended otherwise (exit 1)"),
    "hora workflows wait": (1, "ID is the seeded terminated workflow: it ended cancelled"),
}

#: Placeholder -> seeded value (a key of the seed, or a literal), per command prefix; the
#: longest prefix wins.
PLACEHOLDERS: dict[str, dict[str, str]] = {
    "hora": {"JSON": "{}", "T": "greet", "N": "10", "C": "c-1", "P": "skip", "R": "because",
             "A": "ann", "S": "pending", "W": "e1", "ID": "@schedule", "NAME": "@schedule",
             "JOB_ID": "@dead_job", "KEY_ID": "@key", "REQUEST": "@request", "Q": "default"},
    "hora jobs cancel": {"JOB_ID": "@scheduled_job"},
    "hora jobs reschedule": {"JOB_ID": "@scheduled_job"},
    "hora jobs run-now": {"JOB_ID": "@scheduled_job"},
    "hora keys list": {"C": "@keys_cursor"},
    "hora tenants": {"ID": "acme"},
    "hora tenants create": {"acme": "newco", "R": "5"},
    "hora workflows": {"ID": "e1", "NAME": "cli.expense"},
    "hora workflows signal": {"ID": "e1", "NAME": "go"},
    "hora workflows wait": {"ID": "e3"},
    "hora workflows start": {"ID": "e2", "NAME": "cli.expense", "JSON": '{"amount": 1}'},
    "hora recipients": {"ID": "u42", "FILE.jsonl": "@recipients_file"},
    "hora notify": {"ID": "@notification"},
}


@dataclass(frozen=True)
class Documented:
    where: str
    argv: tuple[str, ...]

    @property
    def text(self) -> str:
        return shlex.join(self.argv)


def _shell_lines(path: Path) -> list[tuple[int, str]]:
    """``hora ...`` lines of the fenced shell blocks (continuations joined)."""
    out: list[tuple[int, str]] = []
    fenced = in_block = False
    pending: tuple[int, str] | None = None
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if line.startswith("```"):
            in_block = not in_block
            fenced = in_block and line[3:].strip() in ("", "sh", "bash", "shell", "console")
            continue
        if not fenced:
            continue
        if pending is not None:
            pending = (pending[0], pending[1] + " " + line)
        elif line.startswith(("hora ", "$ hora ")):
            pending = (number, line.removeprefix("$ "))
        else:
            continue
        if pending[1].endswith("\\"):
            pending = (pending[0], pending[1][:-1])
            continue
        out.append(pending)
        pending = None
    return out


def _tokens(line: str) -> list[str]:
    line = line.replace("$'", "'")  # bash's $'...\n...': the CLI reads a literal \n itself
    return shlex.split(line, comments=True)


def _alternatives(tokens: list[str]) -> list[list[str]]:
    """Split on ``|`` outside brackets."""
    alts: list[list[str]] = [[]]
    depth = 0
    for t in tokens:
        if t == "|" and depth == 0:
            alts.append([])
            continue
        depth += t.count("[") - t.count("]")
        alts[-1].append(t)
    return alts


def _forms(tokens: list[str]) -> list[list[str]]:
    """Without the optional parts, and with them (first alternative, no ``...`` parts)."""
    minimal: list[str] = []
    full: list[str] = []
    group: list[str] = []
    depth = 0
    for t in tokens:
        opening = t.count("[")
        depth += opening
        if depth > 0:
            group.append(t.replace("[", "").replace("]", ""))
        depth -= t.count("]")
        if depth > 0:
            continue
        if group:
            if "..." not in group and group != [""]:
                first = _alternatives(group)[0]
                full.extend(x for x in first if x)
            group = []
            continue
        if t == "...":
            continue
        minimal.append(t)
        full.append(t)
    forms = [minimal] if minimal == full else [minimal, full]
    return [[t.split("|")[0] if re.fullmatch(r"[\w.,-]+(\|[\w.,-]+)+", t) else t for t in f]
            for f in forms]


def documented_commands() -> list[Documented]:
    found: list[Documented] = []
    seen: set[tuple[str, ...]] = set()
    for path in DOCS:
        for number, line in _shell_lines(path):
            alts = _alternatives(_tokens(line))
            head = alts[0]
            group = head[:2] if len(head) > 1 and not head[1].startswith("-") else head[:1]
            command = head[:3] if len(head) > 2 and not head[2].startswith("-") else head[:2]
            expanded = [head]
            for alt in alts[1:]:
                if alt and not alt[0].startswith("-") and alt[0].isidentifier() is False \
                        and "-" not in alt[0]:
                    expanded.append([*command, *alt])
                elif alt and not alt[0].startswith("-") and alt[0].replace("-", "").isalpha() \
                        and alt[0].islower():
                    expanded.append([*group, *alt])
                else:
                    expanded.append([*command[:3], *alt] if len(command) > 2 else
                                    [*command, *alt])
            for argv in expanded:
                for form in _forms(argv):
                    if tuple(form) not in seen:
                        seen.add(tuple(form))
                        found.append(Documented(f"{path.name}:{number}", tuple(form)))
    return found


COMMANDS = documented_commands()


def _skip_reason(d: Documented) -> str | None:
    for prefix, why in SKIP.items():
        if d.text.startswith(prefix) and not (prefix == "hora worker"
                                              and "--until-idle" in d.argv):
            return why
    return None


def _fill(argv: tuple[str, ...], seed: dict[str, str]) -> list[str]:
    text = shlex.join(argv)
    table: dict[str, str] = {}
    for prefix in sorted(PLACEHOLDERS, key=len):
        if text.startswith(prefix):
            table.update(PLACEHOLDERS[prefix])
    return [seed[table[a][1:]] if table.get(a, "").startswith("@") else table.get(a, a)
            for a in argv]


def run(args: list[str], url: str) -> Any:
    return CliRunner().invoke(cli, args, env={"COLUMNS": "200", "HORA_DATABASE_URL": url})


def _register_readers_tasks(url: str) -> None:
    """The README's examples name the reader's own tasks; a worker of their app would have
    registered them (unknown names are refused once a tenant has a registry)."""
    from hora import Hora

    reader = Hora(url)
    try:
        @reader.task(name="greet")
        def greet(name: str = "") -> None: ...

        @reader.task(name="billing.charge")
        def charge(invoice: str = "") -> None: ...

        @reader.task(name="billing.remind")
        def remind() -> None: ...

        reader.register_tasks()
    finally:
        reader.close()


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A database with what the documented commands refer to: dead and scheduled jobs of
    the demo's tasks, a schedule, tenant acme with a key, a workflow waiting for approval."""
    where = tmp_path_factory.mktemp("seed")
    url = f"sqlite:///{where / 'hora.db'}"

    def ok(*args: str) -> Any:
        r = run([*args, "--json"], url)
        assert r.exit_code == 0, (args, r.stdout, r.stderr)
        return json.loads(r.stdout)

    seed: dict[str, str] = {}
    demo = ok("demo", "--database-url", url)
    seed["dead_job"] = demo["dead"][0]
    _register_readers_tasks(url)
    seed["scheduled_job"] = ok("enqueue", "greet", "--payload", '{"name": "x"}', "--in",
                               "1h")["id"]
    seed["schedule"] = ok("schedules", "create", "billing.remind", "--cron", "0 9 * * *",
                          "--name", "nightly")["id"]
    ok("tenants", "create", "acme")
    ok("templates", "put", "welcome", "--subject", "Hi", "--text", "Hello {{ recipient.id }}")
    seed["key"] = ok("keys", "create", "--tenant", "acme")["id"]
    ok("keys", "create", "--tenant", "acme")
    seed["keys_cursor"] = ok("keys", "list", "--tenant", "acme", "--limit", "1")["next_cursor"]
    ok("workflows", "start", "cli.expense", "--args", '{"amount": 42}', "--id", "e1")
    ok("workflows", "start", "cli.expense", "--args", '{"amount": 1}', "--id", "e3")
    ok("workflows", "terminate", "e3")
    app = build(url)
    try:
        run_until_idle(app, poll_interval=0.01)
    finally:
        app.close()
    seed["request"] = ok("workflows", "approvals")["items"][0]["id"]
    ok("recipients", "upsert", "u42", "--email", "ada@example.com")
    seed["notification"] = ok("notify", "send", "u42", "--category", "news", "--template",
                              "welcome", "--channel", "inapp")["id"]
    people = where / "people.jsonl"
    people.write_text('{"id": "u1", "timezone": "Europe/Paris"}\n')
    seed["recipients_file"] = str(people)
    return where / "hora.db", seed


def test_the_docs_show_commands() -> None:
    assert len(COMMANDS) > 40
    assert any(d.argv[:3] == ("hora", "tenants", "show") for d in COMMANDS)
    assert any(d.argv[:3] == ("hora", "workflows", "reject") for d in COMMANDS)


@pytest.mark.parametrize("doc", COMMANDS, ids=lambda d: f"{d.where} {d.text}"[:120])
def test_a_documented_command_works(doc: Documented, seeded: tuple[Path, dict[str, str]],
                                    tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    why = _skip_reason(doc)
    if why is not None:
        pytest.skip(why)
    monkeypatch.chdir(tmp_path)  # hora demo writes ./hora-demo.db
    db = tmp_path / "hora.db"
    shutil.copy(seeded[0], db)
    argv = _fill(doc.argv, seeded[1])
    result = run(argv[1:], f"sqlite:///{db}")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    code = EXPECTED_EXIT.get(doc.text, (0, ""))[0]
    for prefix, (prefix_code, _why) in EXPECTED_EXIT_PREFIX.items():
        if doc.text.startswith(prefix):
            code = prefix_code
    assert result.exit_code == code, (f"{doc.where}: {shlex.join(argv)}", result.stdout,
                                      result.stderr)


# -- --json and --database-url on every command that reads or writes the store ----------------

#: Commands that never open the store, and why (the rest must take both options).
NO_STORE = {
    "completion": "prints a shell's completion script",
    "keys generate": "prints a new key for HORA_ADMIN_KEY; stores nothing",
    "schedules preview": "computes occurrences from the trigger alone",
}
#: Store commands without --json, and why.
NO_JSON = {
    "serve": "a long-running server: its output is log lines (--log-format json)",
}


def _leaves() -> list[tuple[str, set[str]]]:
    """Every command of the ``hora`` tree (lazy groups built), with its option names."""
    import typer.main
    from typer import _click

    root = typer.main.get_command(cli)
    found: list[tuple[str, set[str]]] = []

    def walk(cmd: Any, path: list[str], ctx: Any) -> None:
        if hasattr(cmd, "list_commands"):
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                walk(sub, [*path, name], _click.Context(sub, parent=ctx))
        else:
            found.append((" ".join(path), {o for p in cmd.params
                                           for o in getattr(p, "opts", [])}))

    walk(root, [], _click.Context(root))
    return found


LEAVES = _leaves()


def test_the_tree_is_walked() -> None:
    names = {name for name, _ in LEAVES}
    assert {"jobs list", "schedules ensure", "workflows approve", "worker"} <= names
    assert set(NO_STORE) | set(NO_JSON) <= names  # no stale exemption


@pytest.mark.parametrize(("name", "options"), LEAVES, ids=[n for n, _ in LEAVES])
def test_every_store_command_takes_json_and_database_url(name: str,
                                                         options: set[str]) -> None:
    if name in NO_STORE:
        assert "--database-url" not in options
        return
    assert "--database-url" in options, f"hora {name} has no --database-url"
    if name not in NO_JSON:
        assert "--json" in options, f"hora {name} has no --json"
