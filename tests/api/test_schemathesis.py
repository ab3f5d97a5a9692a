"""Schemathesis over every operation of ``/openapi.json``, against a real API process.

Generated requests (valid and invalid) must never get a 5xx, every response must match the
published schema (status codes, content types, bodies, headers), and schema-invalid requests
must be refused. (Schema-valid ones may still be 422: a cron string or a trigger object is
checked beyond what JSON Schema can say, so schemathesis's positive-data check is off.)
The server runs the ``api`` role only, so fuzzed HTTP targets and schedules are stored but
never executed. Examples per operation are bounded (``HORA_FUZZ_EXAMPLES``, default 25) to
keep CI short; CI derandomizes hypothesis, so a failure reproduces.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

from tests.api.conftest import Server, start_server
from tests.conftest import fresh_pg_schema

EXAMPLES = int(os.environ.get("HORA_FUZZ_EXAMPLES", "25"))


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


def test_every_operation_answers_per_its_schema(api_only: Server) -> None:
    schema = schemathesis.openapi.from_url(f"{api_only.url}/openapi.json")
    headers = {"Authorization": f"Bearer {api_only.admin_key}"}
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: Any) -> None:
            case.call_and_validate(headers=headers,
                                   excluded_checks=[positive_data_acceptance])

        try:
            check()
        except Exception as e:  # collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {e}")
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
