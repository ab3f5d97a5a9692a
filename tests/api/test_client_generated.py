"""``hora.Client`` is generated from ``hora.AsyncClient`` (``scripts/unasync_client.py``):
the committed file must be what the script writes now, and the two faces must offer the same
operations with the same signatures."""

from __future__ import annotations

import importlib.util
import inspect
import sys
from pathlib import Path
from types import ModuleType

from hora import AsyncClient, Client

ROOT = Path(__file__).resolve().parents[2]


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("unasync_client",
                                                  ROOT / "scripts" / "unasync_client.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_sync_client_is_generated_from_the_async_one() -> None:
    script = _script()
    committed = (ROOT / "src" / "hora" / "client" / "_sync.py").read_text()
    assert committed == script.unasync(script.SOURCE.read_text()), \
        "run: python scripts/unasync_client.py"


def test_both_clients_offer_the_same_operations() -> None:
    def public(cls: type) -> dict[str, str]:
        return {name: str(inspect.signature(member))
                for name, member in vars(cls).items()
                if callable(member) and not name.startswith("_")}

    sync, async_ = public(Client), public(AsyncClient)
    assert len(sync) > 40
    assert set(async_) - set(sync) == {"aclose"}
    for name, signature in sync.items():
        assert async_[name] == signature.replace("time.sleep", "asyncio.sleep"), name
    for name in sync:
        assert inspect.iscoroutinefunction(getattr(AsyncClient, name)), name
        assert not inspect.iscoroutinefunction(getattr(Client, name)), name
