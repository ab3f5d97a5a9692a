"""Schemathesis over every operation of ``/openapi.json``, against a real API process.

Generated requests, valid and invalid (both generation modes), must never get a 5xx and
every response must match the published schema (status codes, content types, bodies,
headers). Admin routes are fuzzed with the operator (bootstrap) key, half the time on a
tenant and a key that exist. The server runs the ``api`` role only, so fuzzed HTTP targets
and schedules are stored but never executed. Examples per operation are bounded
(``HORA_FUZZ_EXAMPLES``, default 25) to keep CI short; CI derandomizes hypothesis, so a
failure reproduces.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

from tests.api.conftest import Server, start_server
from tests.conftest import fresh_pg_schema

EXAMPLES = int(os.environ.get("HORA_FUZZ_EXAMPLES", "25"))
#: Schema-valid requests may still be 422 (a cron string is checked beyond JSON Schema); an
#: unknown query parameter is ignored, as HTTP APIs do, so a "negative" request that only
#: adds one is rightly answered 200.
EXCLUDED = [positive_data_acceptance, negative_data_rejection]
#: Framing headers belong to the HTTP server, not the API: uvicorn (h11) answers a malformed
#: one (a ``transfer-encoding`` of junk) with its own text/plain 400 before hora sees the request.
FRAMING_HEADERS = {"transfer-encoding", "content-length", "connection", "host", "upgrade",
                   "te", "trailer", "expect"}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def api_only(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
             ) -> Iterator[Server]:
    cwd = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    if request.param == "sqlite":
        srv = start_server(f"sqlite:///{cwd / 'hora.db'}", cwd, args=("--role", "api"))
        try:
            yield srv
        finally:
            srv.stop()
        return
    with fresh_pg_schema("hora_fuzz_") as url:
        srv = start_server(url, cwd, args=("--role", "api"))
        try:
            yield srv
        finally:
            srv.stop()


#: A tenant and a key the admin routes can really act on: generated ids almost never name
#: a record, so without them every PATCH, GET and DELETE of a tenant or key is a 404.
FUZZ_TENANT = "fuzzed"


def _strategy(operation: Any, fixed: dict[str, str]) -> Any:
    """Valid and invalid requests, half of them on records that exist (admin routes)."""
    strategies = [operation.as_strategy(mode) for mode in GenerationMode]
    params = {name: value for name, value in fixed.items()
              if "{" + name + "}" in operation.path}
    if params:
        strategies += [operation.as_strategy(mode, path_parameters=params)
                       for mode in GenerationMode]
    return st.one_of(strategies)


def test_every_operation_answers_per_its_schema(api_only: Server) -> None:
    """Every operation, admin routes included, with the operator (bootstrap) key; after
    each case on a tenant route, the fuzzed tenant's own key must still get an answer (a
    tiny rate limit made all its requests 500s) and its settings are reset."""
    schema = schemathesis.openapi.from_url(f"{api_only.url}/openapi.json")
    headers = {"Authorization": f"Bearer {api_only.admin_key}"}
    with httpx.Client(base_url=api_only.url, headers=headers, timeout=30) as admin:
        r = admin.post("/v1/tenants", json={"id": FUZZ_TENANT})
        assert r.status_code == 201, r.text
        r = admin.post("/v1/keys", json={"tenant_id": FUZZ_TENANT, "scopes": ["read"]})
        assert r.status_code == 201, r.text
        tenant_key, key_id = r.json()["key"], r.json()["id"]
        tenant = httpx.Client(base_url=api_only.url, timeout=30,
                              headers={"Authorization": f"Bearer {tenant_key}"})
        fixed = {"tenant_id": FUZZ_TENANT, "key_id": key_id}
        failures: list[str] = []
        operations = 0
        for result in schema.get_all_operations():
            operation = result.ok()
            operations += 1

            @given(case=_strategy(operation, fixed))
            @settings(max_examples=EXAMPLES, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            def check(case: Any) -> None:
                if case.headers:
                    case.headers = {k: v for k, v in case.headers.items()
                                    if k.lower() not in FRAMING_HEADERS}
                case.call_and_validate(headers=headers, excluded_checks=EXCLUDED)
                if "/tenants/" in case.operation.path:
                    probe = tenant.get("/v1/jobs")
                    assert probe.status_code < 500, probe.text
                    reset = admin.patch(f"/v1/tenants/{FUZZ_TENANT}", json={
                        "rate_limit": None, "max_pending_jobs": None,
                        "max_active_schedules": None})
                    assert reset.status_code == 200, reset.text

            try:
                check()
            except (Exception, BaseExceptionGroup) as e:  # report every operation's failure
                failures.append(f"{operation.label}: {e}")
        tenant.close()
    assert operations >= 30
    assert not failures, "\n\n".join(failures)


def test_the_schema_declares_problem_json_errors(tmp_path: Path) -> None:
    from hora import Hora
    from hora.api import create_api

    app = Hora(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        doc = create_api(app).openapi()
    finally:
        app.close()
    op = doc["paths"]["/v1/jobs"]["post"]
    assert "application/problem+json" in op["responses"]["422"]["content"]
    assert any(p["name"] == "Idempotency-Key" for p in op["parameters"])
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
