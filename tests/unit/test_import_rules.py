"""The layering of the SDK, read from the source: no module imports ``hora.app`` except the
surfaces above it, and the leaf the services share imports none of them.

An import under ``if TYPE_CHECKING:`` is not a dependency at run time (the worker names
``Hora`` in its annotations that way) and is not counted.
"""

from __future__ import annotations

import ast
from pathlib import Path

import hora

SRC = Path(hora.__file__).parent

#: The modules above ``hora.app``: the public package, the HTTP API, the CLI, the server
#: runner, the test helpers, and the demo app.
SURFACES = ("__init__.py", "api/", "cli", "serve.py", "testing.py", "demo.py")
#: What ``hora.payloads`` (the services' shared leaf) must never import.
ABOVE_THE_LEAF = {"hora.app", "hora.schedules", "hora.workflows", "hora.locks",
                  "hora.worker", "hora.scheduler"}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def runtime_imports(path: Path) -> set[str]:
    """Every module ``path`` imports when it runs (at import time or in a function)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            # ``from hora import app`` imports the module hora.app too
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), filename=str(path)))
    return found


def _modules() -> list[tuple[str, Path]]:
    return sorted((p.relative_to(SRC).as_posix(), p) for p in SRC.rglob("*.py"))


def test_only_the_surfaces_import_hora_app() -> None:
    offenders = [rel for rel, path in _modules()
                 if rel != "app.py" and not rel.startswith(SURFACES)
                 and "hora.app" in runtime_imports(path)]
    assert offenders == [], f"modules below hora.app that import it: {offenders}"


def test_the_services_and_the_worker_do_not_import_hora_app() -> None:
    for rel in ("schedules.py", "locks.py", "worker.py", "scheduler.py", "payloads.py",
                "workflows/__init__.py", "workflows/context.py", "workflows/engine.py",
                "workflows/service.py"):
        assert "hora.app" not in runtime_imports(SRC / rel), rel


def test_the_payloads_leaf_imports_nothing_above_it() -> None:
    imported = runtime_imports(SRC / "payloads.py")
    assert not imported & ABOVE_THE_LEAF, imported & ABOVE_THE_LEAF


def test_the_walk_sees_imports_at_run_time_but_not_under_type_checking(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from hora.app import Hora\n"
        "def f():\n    from hora import app\n    import hora.locks\n")
    found = runtime_imports(module)
    assert "hora.app" in found and "hora.locks" in found  # the lazy ones, in f
    module.write_text("from typing import TYPE_CHECKING\n"
                      "if TYPE_CHECKING:\n    from hora.app import Hora\n")
    assert "hora.app" not in runtime_imports(module)


def test_no_fake_clock_checks_outside_the_clock_and_the_test_helpers() -> None:
    for rel, path in _modules():
        if rel in ("clock.py", "testing.py", "__init__.py"):
            continue
        assert "FakeClock" not in runtime_imports(path) and not any(
            name.endswith(".FakeClock") for name in runtime_imports(path)), rel


#: The SDK's core: once one import circle (issue #10), now a layered stack.
CORE = {"hora.app", "hora.payloads", "hora.schedules", "hora.scheduler", "hora.locks",
        "hora.worker", "hora.store", "hora.workflows", "hora.workflows.context",
        "hora.workflows.engine", "hora.workflows.service"}


def _module_name(path: Path) -> str:
    name = path.relative_to(SRC.parent).with_suffix("").as_posix().replace("/", ".")
    return name.removesuffix(".__init__")


def test_the_sdk_core_has_no_import_circle() -> None:
    paths = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph = {m: {i for i in runtime_imports(p) if i in paths and i != m}
             for m, p in paths.items()}

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph[todo.pop()]:
                if nxt == goal:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return False

    # (``hora.store`` opening its own dialect modules by URL is within one package.)
    circles = sorted(f"{a} <-> {b}" for a in CORE & graph.keys() for b in graph[a]
                     if reaches(b, a) and not (a.startswith("hora.store")
                                               and b.startswith("hora.store")))
    assert circles == []
