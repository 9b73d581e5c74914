"""The built-in demo data: every role gives the lookup result and ACL decision docs/demo-data.md promises."""

from __future__ import annotations

import pytest

from harness.kazoo.acls import AclLists, AclMatch, entries_from_store
from harness.kazoo.numbers import account_db, find_callflow, lookup_number, numbers_db
from harness.model.demo import demo_roles, load_demo

ROLES = demo_roles()
STORE = load_demo()
NODE = ROLES["node"]

# role -> (lookup ok, reason, state, callflow found, flag in flow.data)
NUMBER_EXPECTATIONS: dict[str, tuple[bool, str | None, str | None, bool, str | None]] = {
    "routed": (True, None, "in_service", True, None),
    "routed_port_in": (True, None, "port_in", True, None),
    "routed_port_out": (True, None, "port_out", True, None),
    "routed_reserved": (True, None, "reserved", True, None),
    "no_callflow": (True, None, "in_service", False, None),
    "reserved_no_callflow": (True, None, "reserved", False, None),
    "available": (False, "not_in_service", "available", False, None),
    "unassigned": (False, "unassigned", "in_service", False, None),
    "disabled_account": (False, "account_disabled", "in_service", False, None),
    "wrong_db": (False, "not_found", None, False, None),
    "aging": (False, "not_in_service", "aging", False, None),
    "deleted": (False, "not_in_service", "deleted", False, None),
    "released": (False, "not_in_service", "released", False, None),
    "discovery": (False, "not_in_service", "discovery", False, None),
    "absent": (False, "not_found", None, False, None),
    "international": (True, None, "in_service", True, None),
    "busy": (True, None, "in_service", True, "busy"),
    "ringing_forever": (True, None, "in_service", True, "ring_forever"),
    "dead_air": (True, None, "in_service", True, "no_media"),
}


def test_every_number_role_is_covered() -> None:
    assert set(ROLES["numbers"]) == set(NUMBER_EXPECTATIONS)


@pytest.mark.parametrize("role", sorted(NUMBER_EXPECTATIONS))
def test_number_role_lookup(role: str) -> None:
    ok, reason, state, has_callflow, flag = NUMBER_EXPECTATIONS[role]
    number = ROLES["numbers"][role]
    found = lookup_number(STORE, number)
    assert (found.ok, found.reason, found.state) == (ok, reason, state), found
    assert found.e164 == number and found.reconcilable
    callflow = find_callflow(STORE, found.account_id, number) if found.ok and found.account_id else None
    assert (callflow is not None) is has_callflow
    if callflow is not None:
        assert callflow["pvt_type"] == "callflow" and callflow["flow"]["module"] == "device"
        data = callflow["flow"]["data"]
        flags = {name for name in ("busy", "ring_forever", "no_media") if data.get(name) is True}
        assert flags == ({flag} if flag else set())


@pytest.mark.parametrize("dialed", ["4155550100", "14155550100", "+14155550100"])
def test_routed_number_in_national_forms(dialed: str) -> None:
    assert lookup_number(STORE, dialed).ok


def test_number_documents_are_shaped_like_kazoo() -> None:
    routed = ROLES["numbers"]["routed"]
    doc = STORE.get("numbers/+1415", routed)
    assert doc is not None
    assert doc["pvt_db_name"] == "numbers%2F%2B1415" and doc["pvt_type"] == "number"
    assert doc["pvt_module_name"] == "knm_local" and doc["pvt_ported_in"] is False
    assert doc["pvt_assigned_to"] == ROLES["accounts"]["enabled"]
    assert isinstance(doc["pvt_created"], int) and isinstance(doc["pvt_modified"], int)
    wrong = ROLES["numbers"]["wrong_db"]
    assert numbers_db(wrong) == "numbers/+1415" and STORE.get("numbers/+1416", wrong) is not None


def test_accounts() -> None:
    enabled, disabled = ROLES["accounts"]["enabled"], ROLES["accounts"]["disabled"]
    assert len(enabled) == 32 and int(enabled, 16) >= 0
    assert (STORE.get("accounts", enabled) or {}).get("pvt_enabled") is True
    assert (STORE.get("accounts", disabled) or {}).get("pvt_enabled") is False
    assert account_db(enabled) in STORE.all_dbs()


CARRIER_EXPECTATIONS: dict[str, AclMatch | None] = {
    "listed": AclMatch("trusted", "carrier_listed", "127.0.0.10/32"),
    "listed_cidr": AclMatch("trusted", "carrier_listed_cidr", "127.0.1.0/24"),
    "unlisted": None,
    "port_restricted": AclMatch("trusted", "carrier_port_restricted", "127.0.0.20/32"),
    "port_restricted_wrong_port": None,
    "default_only": None,
    "offnet_resource": AclMatch("trusted", "127.0.0.40", "127.0.0.40/32", "offnet_resource"),
    "sbc_self": AclMatch("authoritative", "kamailio_sbc", "127.0.0.1/32"),
}


@pytest.mark.parametrize("role", sorted(CARRIER_EXPECTATIONS))
def test_carrier_role_acl(role: str) -> None:
    carrier = ROLES["carriers"][role]
    lists = AclLists.build(entries_from_store(STORE, NODE))
    assert lists.match(carrier["ip"], carrier["port"]) == CARRIER_EXPECTATIONS[role]


def test_default_only_is_trusted_on_other_nodes() -> None:
    lists = AclLists.build(entries_from_store(STORE, "ecallmgr@elsewhere"))
    assert lists.check("trusted", ROLES["carriers"]["default_only"]["ip"]) is not None


def test_sbc_self_and_every_address_are_loopback() -> None:
    assert ROLES["sbc_self"] == ROLES["carriers"]["sbc_self"]["ip"] == "127.0.0.1"
    assert all(c["ip"].startswith("127.") for c in ROLES["carriers"].values())
    for entry in entries_from_store(STORE, NODE):
        assert entry.cidr.startswith("127.")


def test_reorder_answers_604_nope() -> None:
    reorder = STORE.get("system_config", "reorder") or {}
    assert reorder["default"]["unknown_number"] == {
        "response_code": 604,
        "response_message": "Nope Nope Nope",
    }


def test_load_demo_returns_independent_stores() -> None:
    first, second = load_demo(), load_demo()
    first.delete_db("offnet")
    assert "offnet" in second.all_dbs()
