"""A real ``hora serve`` process on 127.0.0.1 per store, shared by the API tests.

The server is the installed console script in a subprocess (not an in-process test client),
on port 0; the test reads the bound port from its stderr. Tests isolate themselves by
creating their own tenant and keys (``Api.tenant()``), so one server serves them all.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hora.testing import ServeProcess, serve_process
from tests.conftest import fresh_pg_schema

HORA = str(Path(sys.executable).with_name("hora"))
ADMIN_KEY = "hora_" + "A" * 32
STARTUP_DEADLINE = 60.0


#: The API tests' name for a ``hora serve`` subprocess (``hora.testing.ServeProcess``).
Server = ServeProcess


def start_server(database_url: str, cwd: Path, *, extra_env: dict[str, str] | None = None,
                 args: tuple[str, ...] = ()) -> Server:
    return serve_process(database_url, cwd, admin_key=ADMIN_KEY, args=args,
                         extra_env=extra_env, startup_timeout=STARTUP_DEADLINE)


class Api:
    """An httpx client on a server, with helpers to make an isolated tenant."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self._clients: list[httpx.Client] = []
        self.admin = self.client(server.admin_key)
        #: Each tenant's webhook secret, as its creation showed it (reads never show it).
        self.secrets: dict[str, str] = {}

    def client(self, key: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        c = httpx.Client(base_url=self.server.url, timeout=30, headers=headers)
        self._clients.append(c)
        return c

    def tenant(self, scopes: tuple[str, ...] = ("read", "write"),
               **quotas: Any) -> tuple[str, str, httpx.Client]:
        """A new tenant with one key: (tenant id, key, client using the key)."""
        tid = f"t-{uuid.uuid4().hex[:10]}"
        r = self.admin.post("/v1/tenants", json={"id": tid, **quotas})
        assert r.status_code == 201, r.text
        self.secrets[tid] = r.json()["webhook_secret"]
        r = self.admin.post("/v1/keys", json={"tenant_id": tid, "scopes": list(scopes)})
        assert r.status_code == 201, r.text
        key = r.json()["key"]
        return tid, key, self.client(key)

    def close(self) -> None:
        for c in self._clients:
            c.close()


@pytest.fixture(scope="session")
def _pg_session_url() -> Iterator[str]:
    with fresh_pg_schema("hora_api_") as url:
        yield url


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           ) -> Iterator[Server]:
    """One ``hora serve`` per store for the whole session."""
    cwd = tmp_path_factory.mktemp(f"serve-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{cwd / 'hora.db'}"
    else:
        url = request.getfixturevalue("_pg_session_url")
    srv = start_server(url, cwd)
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def api(server: Server) -> Iterator[Api]:
    a = Api(server)
    try:
        yield a
    finally:
        a.close()


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def workflow_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                    ) -> Iterator[Server]:
    """A ``hora serve`` whose worker knows the workflows of ``tests.api.workflow_app``, so
    workflows started over HTTP really run (the ``server`` fixture knows none)."""
    cwd = tmp_path_factory.mktemp(f"serve-wf-{request.param}")
    repo = str(Path(__file__).resolve().parents[2])
    env = {"PYTHONPATH": os.pathsep.join(p for p in (repo, os.environ.get("PYTHONPATH"))
                                         if p)}
    args = ("--app", "tests.api.workflow_app:app")
    if request.param == "sqlite":
        srv = start_server(f"sqlite:///{cwd / 'hora.db'}", cwd, extra_env=env, args=args)
        try:
            yield srv
        finally:
            srv.stop()
        return
    with fresh_pg_schema("hora_api_wf_") as url:
        srv = start_server(url, cwd, extra_env=env, args=args)
        try:
            yield srv
        finally:
            srv.stop()


@pytest.fixture
def wf_api(workflow_server: Server) -> Iterator[Api]:
    a = Api(workflow_server)
    try:
        yield a
    finally:
        a.close()
