"""``hora serve`` as an operator runs it: first start, roles split across processes, shutdown."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from hora.testing import wait_for_condition
from tests.api.conftest import HORA, start_server
from tests.conftest import fresh_pg_schema
from tests.receiver import Receiver

KEY = re.compile(r"hora_[A-Za-z0-9]{32}")


def test_the_first_start_prints_an_admin_key_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    first = start_server(url, tmp_path, extra_env={"HORA_ADMIN_KEY": ""},
                         args=("--demo",))
    try:
        keys = KEY.findall("".join(first.log))
        assert len(keys) == 1, first.log
        headers = {"Authorization": f"Bearer {keys[0]}"}
        schedules = httpx.get(f"{first.url}/v1/schedules", headers=headers).json()["items"]
        assert [s["name"] for s in schedules] == ["demo-greeting"]
        assert httpx.get(f"{first.url}/v1/tenants", headers=headers).status_code == 200
    finally:
        assert first.stop() == 0, "".join(first.log)
    second = start_server(url, tmp_path, extra_env={"HORA_ADMIN_KEY": ""}, args=("--demo",))
    try:
        assert KEY.findall("".join(second.log)) == []  # shown once, never again
        assert "exists already" in "".join(second.log)
        r = httpx.get(f"{second.url}/v1/schedules", headers=headers)
        assert len(r.json()["items"]) == 1
    finally:
        assert second.stop() == 0


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_api_and_worker_roles_in_separate_processes(store: str, tmp_path: Path,
                                                   receiver: Receiver) -> None:
    with (fresh_pg_schema("hora_roles_") if store == "postgres"
          else _sqlite(tmp_path)) as url:
        api = start_server(url, tmp_path, args=("--role", "api"))
        worker = start_server(url, tmp_path, args=("--role", "worker,scheduler"))
        try:
            assert worker.url == ""  # no API in this process
            h = {"Authorization": f"Bearer {api.admin_key}"}
            job = httpx.post(f"{api.url}/v1/jobs", headers=h,
                             json={"target": {"url": receiver.url("/one")}}).json()
            s = httpx.post(f"{api.url}/v1/schedules", headers=h, json={
                "target": {"url": receiver.url("/every")},
                "trigger": {"every": "PT1S", "start": datetime.now(UTC).isoformat()},
            }).json()

            def delivered() -> bool:
                state = httpx.get(f"{api.url}/v1/jobs/{job['id']}", headers=h).json()["state"]
                ticks = httpx.get(f"{api.url}/v1/schedules/{s['id']}/ticks", headers=h)
                return state == "succeeded" and len(ticks.json()["items"]) >= 2

            wait_for_condition(delivered, timeout=30)
            assert {r.path for r in receiver.requests} >= {"/one", "/every"}
        finally:
            assert worker.stop() == 0, "".join(worker.log)
            assert api.stop() == 0, "".join(api.log)


class _sqlite:
    def __init__(self, tmp_path: Path) -> None:
        self.url = f"sqlite:///{tmp_path / 'roles.db'}"

    def __enter__(self) -> str:
        return self.url

    def __exit__(self, *exc: object) -> None:
        pass


def test_a_worker_only_node_serves_no_http(tmp_path: Path) -> None:
    srv = start_server(f"sqlite:///{tmp_path / 'w.db'}", tmp_path, args=("--role", "worker"))
    try:
        assert srv.url == "" and "serving on" not in "".join(srv.log)
    finally:
        assert srv.stop() == 0, "".join(srv.log)  # SIGTERM: a graceful exit


@pytest.mark.parametrize(("args", "says"), [
    (("--role", "api,cook"), "--role 'api,cook'"),
    (("--port", "70000"), "--port 70000"),
    (("--log-level", "LOUD"), "--log-level"),
])
def test_bad_serve_options_are_one_line_and_exit_2(tmp_path: Path, args: tuple[str, ...],
                                                   says: str) -> None:
    ran = subprocess.run([HORA, "serve", "--database-url", f"sqlite:///{tmp_path / 'x.db'}",
                          *args], capture_output=True, text=True, timeout=60, check=False)
    assert ran.returncode == 2, ran.stderr
    assert ran.stderr.startswith("error: ") and says in ran.stderr
    assert len(ran.stderr.strip().splitlines()) == 1 and "Traceback" not in ran.stderr


def test_a_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    srv = start_server(f"sqlite:///{tmp_path / 'x.db'}", tmp_path)
    try:
        port = srv.url.rsplit(":", 1)[1]
        ran = subprocess.run([HORA, "serve", "--port", port, "--database-url",
                              f"sqlite:///{tmp_path / 'x.db'}"], capture_output=True,
                             text=True, timeout=60, check=False)
        assert ran.returncode == 2, ran.stderr
        assert f"cannot listen on 127.0.0.1:{port}" in ran.stderr
        assert "Traceback" not in ran.stderr
    finally:
        assert srv.stop() == 0
