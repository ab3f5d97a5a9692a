"""``hora tenants`` and ``hora keys``: the operator's commands, straight on the database."""

from __future__ import annotations

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
    (("keys", "create", "--tenant", "nobody"), "hora tenants create nobody"),
    (("keys", "create", "--scope", "root"), "'root' is not one of read, write, admin"),
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
