"""``hora tenants`` and ``hora keys``: the operator's commands, straight on the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hora.api.auth import hash_key
from hora.store import open_store
from tests.cli.test_cli import Hora, assert_one_line_error


@pytest.fixture
def hora(tmp_path: Path) -> Hora:
    return Hora(tmp_path)


def test_tenants_and_keys_round_trip(hora: Hora) -> None:
    t = hora.json("tenants", "create", "acme", "--name", "Acme", "--max-pending-jobs", "5",
                  "--rate-limit", "20")
    assert t["id"] == "acme" and t["max_pending_jobs"] == 5 and t["rate_limit"] == 20
    assert t["webhook_secret"].startswith("whsec_")
    listed = hora.json("tenants", "list")["items"]
    assert [x["id"] for x in listed] == ["acme"] and "webhook_secret" not in listed[0]
    updated = hora.json("tenants", "update", "acme", "--max-active-schedules", "3")
    assert updated["max_active_schedules"] == 3 and updated["max_pending_jobs"] == 5

    key = hora.json("keys", "create", "--tenant", "acme", "--scope", "read", "--name", "ci")
    assert key["key"].startswith("hora_") and key["scopes"] == ["read"]
    store = open_store(hora.url)
    try:
        stored = store.api_key_by_hash(hash_key(key["key"]))
        assert stored is not None and stored.tenant_id == "acme"
    finally:
        store.close()
    keys = hora.json("keys", "list", "--tenant", "acme")["items"]
    assert [k["id"] for k in keys] == [key["id"]] and "key" not in keys[0]
    revoked = hora.json("keys", "revoke", key["id"])
    assert revoked["revoked_at"] is not None
    # Human output says what happened, and never prints a key again.
    text = hora.ok("keys", "list").stdout
    assert key["prefix"] in text and key["key"] not in text


def test_a_key_for_the_default_tenant_needs_no_set_up(hora: Hora) -> None:
    out = hora.ok("keys", "create", "--scope", "admin").stdout
    assert "hora_" in out and "tenant default" in out


@pytest.mark.parametrize(("args", "says"), [
    (("tenants", "create", "Not Valid"), "tenant id 'Not Valid'"),
    (("tenants", "create", "ok", "--max-pending-jobs", "0"), "between 1 and"),
    (("tenants", "update", "nobody", "--name", "x"), "nobody"),
    (("tenants", "update", "default"), "nothing to change"),
    (("keys", "create", "--tenant", "nobody"), "hora tenants create nobody"),
    (("keys", "create", "--scope", "root"),
     "'root' is not one of read, write, approve, admin, operator"),
    (("keys", "revoke", "no-such-key"), "no-such-key"),
])
def test_bad_input_is_one_line_and_exit_2(hora: Hora, args: tuple[str, ...],
                                          says: str) -> None:
    assert_one_line_error(hora(*args), says)


def test_a_duplicate_tenant_is_refused(hora: Hora) -> None:
    hora.ok("tenants", "create", "acme")
    assert_one_line_error(hora("tenants", "create", "acme"), "acme")


def test_generate_prints_a_key_usable_as_hora_admin_key(hora: Hora) -> None:
    key = hora.ok("keys", "generate", db=False).stdout.strip()
    assert key.startswith("hora_") and len(key) == 37


def test_keys_expire_and_the_operator_scope_is_minted_here(hora: Hora) -> None:
    hora.ok("tenants", "create", "acme")
    key = hora.json("keys", "create", "--tenant", "acme", "--expires-in", "30d")
    until = datetime.fromisoformat(key["expires_at"])
    assert timedelta(days=29) < until - datetime.now(UTC) <= timedelta(days=30)
    year = datetime.now(UTC).year + 2
    at = hora.json("keys", "create", "--tenant", "acme", "--scope", "approve",
                   "--expires-at", f"{year}-01-01T00:00:00+01:00")
    assert at["expires_at"] == f"{year - 1}-12-31T23:00:00Z" and at["scopes"] == ["approve"]
    listed = {k["id"]: k for k in hora.json("keys", "list")["items"]}
    assert listed[key["id"]]["expires_at"] == key["expires_at"]
    hora.ok("keys", "create", "--tenant", "acme")
    table = hora.ok("keys", "list").stdout
    assert "never" in table and f"{year - 1}-12-31" in table

    op = hora.json("keys", "create", "--scope", "operator")
    assert op["tenant_id"] == "default" and op["scopes"] == ["operator"]


def test_the_last_operator_key_needs_force(hora: Hora) -> None:
    ops = [hora.json("keys", "create", "--scope", "operator") for _ in range(2)]
    hora.ok("keys", "revoke", ops[0]["id"])
    assert_one_line_error(hora("keys", "revoke", ops[1]["id"]), "last operator key")
    assert hora.json("keys", "revoke", ops[1]["id"], "--force")["revoked_at"] is not None


def test_rotating_a_webhook_secret_prints_the_new_one_once(hora: Hora) -> None:
    first = hora.json("tenants", "create", "acme")["webhook_secret"]
    rotated = hora.ok("tenants", "rotate-webhook-secret", "acme").stdout.strip().splitlines()
    assert rotated[-1].startswith("whsec_") and rotated[-1] != first
    again = hora.json("tenants", "rotate-webhook-secret", "acme")["webhook_secret"]
    assert again not in (first, rotated[-1])
    assert "whsec_" not in hora.ok("tenants", "list").stdout
    assert_one_line_error(hora("tenants", "rotate-webhook-secret", "nobody"), "nobody")


@pytest.mark.parametrize(("args", "says"), [
    (("--expires-in", "0"), "not in the future"),
    (("--expires-in", "4000d"), "at most 3660 days"),
    (("--expires-in", "1e308"), "at most 3660 days"),
    (("--expires-in", "soon"), "'soon'"),
    (("--expires-at", "2020-01-01T00:00:00Z"), "not in the future"),
    (("--expires-at", "2030-01-01T00:00:00"), "no time zone"),
    (("--expires-at", "9999-12-31T23:59:59-01:00"), "--expires-at"),
    (("--expires-at", "0001-01-01T00:00:00+14:00"), "--expires-at"),
    (("--expires-at", "2030-01-01T00:00:00Z", "--expires-in", "1d"), "not both"),
])
def test_a_bad_expiry_is_one_line_and_exit_2(hora: Hora, args: tuple[str, ...],
                                             says: str) -> None:
    hora.ok("migrate")  # `keys list` only reads: it needs a database to exist
    assert_one_line_error(hora("keys", "create", *args), says)
    assert hora.json("keys", "list")["items"] == []
