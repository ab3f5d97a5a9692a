"""The shape of the ``hora.cli`` package: no import cycles, help text in step with the API,
lazily built groups that behave as the eagerly built ones."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import typer
import typer.main
from typer.testing import CliRunner

import hora.cli
from hora.api.auth import SCOPES
from hora.cli import keys
from hora.cli._lazy import LazyCommands, LazyGroups

PACKAGE = Path(hora.cli.__file__).parent


def test_sub_modules_import_from_common_never_from_the_package() -> None:
    """The package's ``__init__`` imports the sub-modules; were they to import it back, the
    order of imports would decide which names exist (the cycle issue #10 removes)."""
    for path in sorted(PACKAGE.glob("*.py")):
        if path.name in ("__init__.py", "__main__.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.module != "hora.cli", f"{path.name} imports from hora.cli"
                if node.module == "hora":
                    assert "cli" not in {a.name for a in node.names}, path.name
            elif isinstance(node, ast.Import):
                assert "hora.cli" not in {a.name for a in node.names}, path.name


def test_the_scopes_in_the_help_are_the_scopes_the_api_knows() -> None:
    assert keys.SCOPES == SCOPES


def eager_hora() -> typer.Typer:
    """The same ``hora`` with every group built up front, the plain typer way."""
    eager = typer.Typer(name="hora", help=hora.cli.cli.info.help, no_args_is_help=True,
                        add_completion=False, pretty_exceptions_enable=False,
                        rich_markup_mode=None)
    root = hora.cli.cli.registered_callback
    assert root is not None and root.callback is not None  # --version
    eager.callback()(root.callback)
    for info in hora.cli.cli.registered_commands:
        assert info.callback is not None
        eager.command(info.name)(info.callback)
    for name, group in hora.cli.HoraCommand.lazy_groups.items():
        eager.add_typer(group, name=name)
    return eager


@pytest.mark.parametrize("args", [["--help"], [], ["jobs", "--help"], ["workflows"],
                                  ["job"], ["jobs", "lst"], ["dlq", "list", "--help"]])
def test_lazy_groups_print_what_the_eager_tree_prints(args: list[str]) -> None:
    runner = CliRunner()
    lazy, eager = runner.invoke(hora.cli.cli, args), runner.invoke(eager_hora(), args)
    assert (lazy.exit_code, lazy.output) == (eager.exit_code, eager.output)
    assert lazy.output


def test_the_root_help_builds_no_group() -> None:
    root = typer.main.get_command(hora.cli.cli)
    assert isinstance(root, LazyGroups)
    ctx = root.make_context("hora", ["--help"], resilient_parsing=True)
    assert "workflows" in root.get_help(ctx)
    commands = root.commands
    assert isinstance(commands, LazyCommands)
    assert list(commands) == ["worker", "migrate", "enqueue", "demo", "serve", "completion",
                              "prune", "jobs", "dlq", "schedules", "workflows", "tasks",
                              "queues", "workers", "limits", "recipients", "templates",
                              "notify", "keys", "tenants"]
    assert not set(commands._built) & set(hora.cli.HoraCommand.lazy_groups)
    assert commands["jobs"].name == "jobs"  # a lookup builds it
    assert "jobs" in commands._built
