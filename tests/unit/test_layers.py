"""The layering of docs/architecture.md, enforced: each module of ``hora`` imports only
modules of its own layer or below (imports under ``if TYPE_CHECKING:`` are annotations, not
dependencies, and are not counted). Read from the source with ``ast``, so the rule holds for
imports inside functions too (lazy imports are still dependencies).

To move a module between layers, change ``LAYERS`` and docs/architecture.md together.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "hora"

#: Bottom to top. A module belongs to the first entry whose prefix matches its dotted name.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("leaf", ("hora.errors", "hora.clock", "hora.ids", "hora.limits", "hora.flow", "hora.states",
              "hora.models", "hora.retry", "hora.context", "hora.observability",
              "hora.payloads", "hora.wire")),
    ("triggers", ("hora.triggers", "hora.notify.model")),
    ("store", ("hora.store",)),
    ("services", ("hora.scheduler", "hora.schedules", "hora.workflows", "hora.locks",
                  "hora.ratelimits", "hora.http_target", "hora.worker", "hora.batching",
                  "hora.workers", "hora.waiting", "hora.registry", "hora.retention",
                  "hora.notify")),
    ("app", ("hora.app",)),
    ("client", ("hora.client",)),
    ("surfaces", ("hora.api", "hora.cli", "hora.serve", "hora.testing", "hora.demo",
                  "hora.render", "hora")),
]


def layer_of(module: str) -> int:
    for i, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or (p != "hora" and module.startswith(p + "."))
               for p in prefixes):
            return i
    raise AssertionError(f"{module} is in no layer: add it to LAYERS and the docs")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_blocks(tree: ast.AST) -> set[int]:
    """ids of the import nodes inside ``if TYPE_CHECKING:`` blocks."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                for n in ast.walk(inner):
                    skip.add(id(n))
    return skip


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every hora module ``path`` imports at run time."""
    tree = ast.parse(path.read_text(), str(path))
    skip = _type_checking_blocks(tree)
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("hora")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("hora"):
                found.append((node.lineno, target))
    return found


MODULES = sorted(p for p in SRC.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=[module_name(p) for p in MODULES])
def test_a_module_imports_only_its_layer_and_below(path: Path) -> None:
    me = module_name(path)
    mine = layer_of(me)
    upward = [f"line {line}: {target} ({LAYERS[layer_of(target)][0]})"
              for line, target in imports_of(path)
              if target != "hora" and layer_of(target) > mine]
    assert not upward, f"{me} ({LAYERS[mine][0]}) imports upward: {upward}"


def test_only_the_surfaces_import_hora_app() -> None:
    surfaces = LAYERS[-1][1]
    offenders = [f"{module_name(p)}:{line}" for p in MODULES for line, t in imports_of(p)
                 if t == "hora.app" and layer_of(module_name(p)) < layer_of("hora.app")]
    assert offenders == [], offenders
    assert "hora.api" in surfaces


def test_the_api_does_not_import_the_clis_rendering() -> None:
    offenders = [f"{module_name(p)}:{line} {t}" for p in MODULES for line, t in imports_of(p)
                 if module_name(p).startswith("hora.api") and t.startswith("hora.render")]
    assert offenders == [], offenders
