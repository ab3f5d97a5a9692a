"""``import hora`` is lazy and the ``hora`` command imports only what it runs (issue #10).

The heavy libraries are checked in a fresh interpreter: this test process has long since
imported them. No wall times here (machines differ); ``bench/cli.py`` measures those.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import hora

INIT = Path(hora.__file__)

#: Never imported by ``import hora``, ``import hora.cli`` or ``hora --help``.
HEAVY = ("fastapi", "uvicorn", "httpx", "prometheus_client", "opentelemetry")
#: Not imported to build the command tree either: the app, the store, the trigger machinery
#: and rich are what each command imports when it runs.
CLI_LAZY = (*HEAVY, "rich", "hora.app", "hora.store", "hora.triggers", "hora.render",
            "hora.models", "asyncio", "holidays", "dateutil")


def imported_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    probe = (f"{code}\nimport json, sys\n"
             "print(json.dumps(sorted(sys.modules)), file=sys.__stdout__)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True, timeout=60)
    return set(json.loads(done.stdout.splitlines()[-1]))


def loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(n for n in names if n in modules or any(m.startswith(n + ".")
                                                          for m in modules))


def test_import_hora_imports_none_of_the_heavy_libraries() -> None:
    modules = imported_after("import hora")
    assert loaded(modules, HEAVY) == []
    assert not [m for m in modules if m.startswith("hora.")], "submodules imported eagerly"


def test_import_hora_cli_imports_only_typer_and_leaf_modules() -> None:
    assert loaded(imported_after("import hora.cli"), CLI_LAZY) == []


def test_hora_help_imports_none_of_the_heavy_modules() -> None:
    code = ("import io, contextlib, sys\nsys.argv = ['hora', '--help']\n"
            "from hora.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            "    try:\n        main()\n    except SystemExit as e:\n        assert e.code == 0\n"
            "assert 'workflows' in out.getvalue() and 'tenants' in out.getvalue()")
    assert loaded(imported_after(code), CLI_LAZY) == []


def test_jobs_list_does_not_import_the_api_server_or_the_http_client(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    (tmp_path / "x.db").touch()  # `jobs list` only reads: it refuses a missing database
    code = ("import io, contextlib, sys\n"
            f"sys.argv = ['hora', 'jobs', 'list', '--json', '--database-url', {url!r}]\n"
            "from hora.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            "    try:\n        main()\n    except SystemExit as e:\n        assert e.code == 0\n"
            "assert '\"items\": []' in out.getvalue(), out.getvalue()")
    modules = imported_after(code)
    assert "hora.app" in modules  # the probe really ran the command
    assert loaded(modules, ("fastapi", "uvicorn", "httpx", "hora.api", "hora.client")) == []


# -- the lazy public API ----------------------------------------------------------------------


def test_every_public_name_resolves_and_dir_lists_it() -> None:
    for name in hora.__all__:
        assert getattr(hora, name) is not None, name
    assert set(hora.__all__) <= set(dir(hora))
    assert "__version__" in hora.__all__


def test_a_lazy_name_is_the_object_its_module_defines() -> None:
    from hora.app import Hora
    from hora.context import current_job
    from hora.errors import NotFound

    assert hora.Hora is Hora
    assert hora.NotFound is NotFound
    assert hora.current_job is current_job
    for name, module in hora._EXPORTS.items():
        assert getattr(hora, name) is getattr(sys.modules[module], name), name


def test_star_import_gives_every_public_name() -> None:
    namespace: dict[str, object] = {}
    exec("from hora import *", namespace)
    assert set(hora.__all__) <= set(namespace)


def test_an_unknown_name_is_an_attribute_error_naming_it() -> None:
    with pytest.raises(AttributeError, match="'Nope'"):
        _ = hora.Nope  # type: ignore[attr-defined]
    with pytest.raises(ImportError):
        exec("from hora import Nope")


def test_the_type_checking_imports_match_the_lazy_table() -> None:
    """mypy and IDEs read the TYPE_CHECKING block, the runtime reads _EXPORTS: one list."""
    tree = ast.parse(INIT.read_text())
    block = next(node for node in tree.body if isinstance(node, ast.If)
                 and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
    seen: dict[str, str] = {}
    for node in block.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hora"):
            for alias in node.names:
                assert alias.asname == alias.name, f"{alias.name}: re-export it 'as' itself"
                seen[alias.name] = node.module
    assert seen == hora._EXPORTS
