"""Connection defaults, the pool timeout setting, what counts as an outage, and the one
warning pair per outage (``hora.store.pg_connect``; no server needed)."""

from __future__ import annotations

import logging
import threading

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from hora.errors import ConfigError, StoreError, StoreUnavailable
from hora.store.pg_connect import (
    POOL_TIMEOUT,
    OutageLog,
    connect_params,
    pool_timeout_from_env,
    store_error,
    unavailable,
)


def test_connections_get_timeouts_and_keepalives_by_default(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGCONNECT_TIMEOUT", raising=False)
    got = conninfo_to_dict(connect_params(
        "postgresql://u@db.example:5433/app?options=-csearch_path%3Dhora"))
    assert got["connect_timeout"] == "5"
    assert (got["keepalives"], got["keepalives_idle"], got["keepalives_interval"],
            got["keepalives_count"]) == ("1", "10", "5", "3")
    assert got["tcp_user_timeout"] == "10000"
    # the URL's own parameters are kept
    assert (got["host"], got["port"], got["dbname"], got["user"]) == (
        "db.example", "5433", "app", "u")
    assert got["options"] == "-csearch_path=hora"


def test_the_url_and_the_environment_override_the_defaults(
        monkeypatch: pytest.MonkeyPatch) -> None:
    got = conninfo_to_dict(connect_params(
        "postgresql://u@h/app?connect_timeout=2&keepalives_idle=60&tcp_user_timeout=0"))
    assert (got["connect_timeout"], got["keepalives_idle"], got["tcp_user_timeout"]) == (
        "2", "60", "0")
    assert got["keepalives_count"] == "3"
    monkeypatch.setenv("PGCONNECT_TIMEOUT", "20")
    assert "connect_timeout" not in conninfo_to_dict(connect_params("postgresql://u@h/app"))


def test_a_malformed_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="invalid PostgreSQL URL"):
        connect_params("postgresql://u@h/app?nonsense_parameter=1")


@pytest.mark.parametrize("value", ["0", "-1", "301", "soon", "nan", "inf"])
def test_pool_timeout_setting_is_checked(value: str) -> None:
    with pytest.raises(ConfigError, match="HORA_PG_POOL_TIMEOUT"):
        pool_timeout_from_env(value)


def test_pool_timeout_setting() -> None:
    assert pool_timeout_from_env(None) == POOL_TIMEOUT
    assert pool_timeout_from_env(" ") == POOL_TIMEOUT
    assert pool_timeout_from_env("2.5") == 2.5


@pytest.mark.parametrize(("error", "out_of_reach"), [
    (psycopg.OperationalError("connection refused"), True),  # libpq's own: no SQLSTATE
    (psycopg.errors.AdminShutdown("terminating connection"), True),  # 57P01
    (psycopg.errors.CannotConnectNow("the database system is starting up"), True),
    (psycopg.errors.ConnectionFailure("connection failure"), True),  # 08006
    (psycopg.errors.QueryCanceled("statement timeout"), False),  # 57014: it answered
    (psycopg.errors.DeadlockDetected("deadlock"), False),
    (psycopg.errors.UniqueViolation("duplicate"), False),
])
def test_which_driver_errors_mean_the_database_is_out_of_reach(
        error: psycopg.Error, out_of_reach: bool) -> None:
    assert unavailable(error) is out_of_reach
    err = store_error(error)
    assert isinstance(err, StoreError)
    assert isinstance(err, StoreUnavailable) is out_of_reach


def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(
        caplog: pytest.LogCaptureFixture) -> None:
    outage = OutageLog("PostgreSQL")
    caplog.set_level(logging.DEBUG, logger="hora.store")
    outage.ok()  # all well: nothing to say
    assert not outage.down

    def fail_many() -> None:
        for _ in range(100):
            outage.fail(psycopg.OperationalError("connection refused"))

    threads = [threading.Thread(target=fail_many) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outage.down
    for _ in range(10):
        outage.ok()
    assert not outage.down
    lines = [r.getMessage() for r in caplog.records if r.name == "hora.store"]
    assert len(lines) == 2, lines
    assert lines[0].startswith("PostgreSQL unreachable") and "connection refused" in lines[0]
    assert lines[1].startswith("PostgreSQL reachable again after an outage of")
    assert "(800 failed calls)" in lines[1]
    assert all(r.levelno == logging.WARNING for r in caplog.records if r.name == "hora.store")
