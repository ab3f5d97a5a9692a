"""Fixtures shared by every test: real stores (SQLite files, a PostgreSQL schema per test)."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import settings

from hora import FakeClock, Hora
from hora.store import Store, open_store
from tests.receiver import receiver  # noqa: F401  (a fixture for every test)

# CI explores the same examples every run (a red CI must be reproducible); locally hypothesis
# keeps searching for new ones.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

POSTGRES_URL = os.environ.get("HORA_TEST_POSTGRES_URL", "")
_pg_problem: str | None = None


def _postgres_available() -> str | None:
    """None if PostgreSQL answers, else why not (cached)."""
    global _pg_problem
    if _pg_problem is not None:
        return _pg_problem or None
    if not POSTGRES_URL:
        _pg_problem = "HORA_TEST_POSTGRES_URL is not set"
    else:
        try:
            import psycopg

            with psycopg.connect(POSTGRES_URL, connect_timeout=5) as conn:
                conn.execute("SELECT 1")
            _pg_problem = ""
        except Exception as e:  # any failure to connect means: not available
            _pg_problem = f"PostgreSQL at HORA_TEST_POSTGRES_URL is unreachable: {e}"
    return _pg_problem or None


def postgres_or_skip() -> str:
    """The base URL, or skip (fail under CI=true, where PostgreSQL must be there)."""
    problem = _postgres_available()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and {problem}")
        pytest.skip(problem)
    return POSTGRES_URL


def _with_search_path(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}"


@contextlib.contextmanager
def fresh_pg_schema(prefix: str = "hora_t_") -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    base = postgres_or_skip()
    import psycopg

    schema = f"{prefix}{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield _with_search_path(base, schema)
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    with fresh_pg_schema() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test that takes this runs once per store."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hora.db'}"
    else:
        yield request.getfixturevalue("pg_schema_url")


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = open_store(database_url)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2030, 1, 1, tzinfo=UTC))


@pytest.fixture
def app(database_url: str, clock: FakeClock) -> Iterator[Hora]:
    a = Hora(database_url, clock=clock)
    try:
        yield a
    finally:
        a.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'hora.db'}"
