"""The shape of the ``hora.cli`` package: no import cycles, help text in step with the API."""

from __future__ import annotations

import ast
from pathlib import Path

import hora.cli
from hora.api.auth import SCOPES
from hora.cli import keys

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
