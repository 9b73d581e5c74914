"""Kazoo number rules: every default converter and reconcile case of kazoo-behaviour.md §2-3."""

from __future__ import annotations

from typing import Any

import pytest

from harness.kazoo import numbers
from harness.kazoo.numbers import (
    account_db,
    classify,
    decode_db,
    encode_db,
    find_callflow,
    inbound_destination,
    inbound_number,
    is_reconcilable,
    lookup_number,
    normalize,
    numbers_db,
)
from harness.model.store import DocumentStore

ACCOUNT = "3c8e2a7f5b9d41e6a0c4f1d2e3b4a5c6"


@pytest.mark.parametrize(
    ("dialed", "expected"),
    [
        ("4155550100", "+14155550100"),  # NANP 10 digits
        ("14155550100", "+14155550100"),  # NANP 11 digits
        ("+14155550100", "+14155550100"),  # already E.164: kept
        ("+4415550100", "+4415550100"),  # kept even when it is no NANP number
        ("01144207123456", "+44207123456"),  # 011 international access prefix
        ("0044207123456", "+44207123456"),  # 00 international access prefix
        ("442071234567", "+442071234567"),  # third converter: 8+ digits starting 2-9
        ("23456789", "+23456789"),  # exactly 8 digits
        ("1155550100", "1155550100"),  # NPA starting with 1 -> NANP fails; starts with 1 -> third fails
        ("4151550100", "+4151550100"),  # NXX starting 1: not NANP, but 8+ digits from 2-9 -> third
        ("0114412", "0114412"),  # 011 with fewer than 5 digits: unchanged
        ("00123", "00123"),
        ("2345678", "2345678"),  # 7 digits: no converter
        ("911", "911"),
        ("(415) 555-0100", "(415) 555-0100"),  # formatting characters: left unnormalized
        ("415-555-0100", "415-555-0100"),
        ("415.555.0100", "415.555.0100"),
        ("1 415 555 0100", "1 415 555 0100"),
        ("sip-trunk-7", "sip-trunk-7"),
        ("4155550100;npdi", "4155550100;npdi"),
        ("４１５５５５０１００", "４１５５５５０１００"),  # fullwidth digits are not PCRE \d
    ],
)
def test_normalize_default_converters(dialed: str, expected: str) -> None:
    assert normalize(dialed) == expected


def test_normalize_uses_number_manager_document_in_order() -> None:
    doc = {
        "_id": "number_manager",
        "default": {
            "e164_converters": {
                r"^0(\d{9})$": {"prefix": "+33"},
                r"^(\d{4})$": {"prefix": "+1415555", "suffix": ""},
            }
        },
    }
    assert normalize("612345678", doc) == "612345678"  # the defaults are replaced, not merged
    assert normalize("0612345678", doc) == "+33612345678"
    assert normalize("0100", doc) == "+14155550100"
    assert normalize("+0100", doc) == "+0100"


def test_normalize_node_section_overrides_default() -> None:
    doc = {"default": {"e164_converters": {}}, "node@x": {"e164_converters": {r"^(7\d+)$": {"prefix": "+"}}}}
    assert numbers.config_value(doc, "e164_converters", None, node="node@x") == {r"^(7\d+)$": {"prefix": "+"}}
    assert normalize("4155550100", doc) == "4155550100"  # empty converter list: unchanged


def test_normalize_suffix_and_flat_config() -> None:
    assert normalize("5550100", {"e164_converters": {r"^(\d{7})$": {"prefix": "+1415", "suffix": "9"}}}) == (
        "+141555501009"
    )


def test_invalid_config_regex_is_named() -> None:
    with pytest.raises(ValueError, match=r"invalid Kazoo regex '\^\('"):
        normalize("123", {"e164_converters": {"^(": {"prefix": "+"}}})


@pytest.mark.parametrize(
    ("dialed", "reconcilable"),
    [
        ("4155550100", True),
        ("14155550100", True),
        ("+14155550100", True),
        ("+442071234567", True),
        ("442071234567", True),  # normalized to +44... first
        ("0044207123456", True),
        ("01144207123456", True),
        ("0114412", True),  # not normalized, but ^011\d*$
        ("00123", True),  # ^00\d*$
        ("+1234", False),
        ("+12345678", False),  # +1 then 7 digits: neither 10 digits nor +[2-9]
        ("+23456789", True),
        ("1155550100", True),  # ^(\+?1)?\d{10}$ takes 10 digits of any kind
        ("2345678", False),
        ("911", False),
        ("(415) 555-0100", False),
        ("415-555-0100", False),
        ("sip-trunk-7", False),
        ("", False),
    ],
)
def test_is_reconcilable_default_regex(dialed: str, reconcilable: bool) -> None:
    assert is_reconcilable(dialed) is reconcilable


def test_is_reconcilable_with_config_regex() -> None:
    doc = {"default": {"reconcile_regex": r"^\+44\d+$"}}
    assert is_reconcilable("+442071234567", doc)
    assert not is_reconcilable("+14155550100", doc)


@pytest.mark.parametrize(
    ("number", "klass"),
    [
        ("+18005550100", "tollfree_us"),
        ("+18885550100", "tollfree_us"),
        ("+18335550100", "tollfree_us"),
        ("+19005550100", "toll_us"),
        ("911", "emergency"),
        ("988", "emergency"),
        ("+18765550100", "caribbean"),
        ("+14155550100", "did_us"),
        ("4155550100", "did_us"),
        ("+442071234567", "international"),
        ("0044207123456", "international"),
        ("12", "unknown"),
    ],
)
def test_classify_default_classifiers(number: str, klass: str) -> None:
    assert classify(number) == klass


def test_classify_none_when_no_classifier_matches() -> None:
    assert classify("12", {"classifiers": {"did_us": {"regex": r"^\+1\d{10}$"}}}) is None


def test_numbers_db_and_encoding() -> None:
    assert numbers_db("+14155550100") == "numbers/+1415"
    assert numbers_db("+4420") == "numbers/+4420"
    assert numbers_db("+442") is None  # shorter than 5 characters: no database
    assert encode_db("numbers/+1415") == "numbers%2F%2B1415"
    assert decode_db("numbers%2F%2B1415") == "numbers/+1415"
    assert encode_db("system_config") == "system_config"


def test_account_db_from_raw_and_formatted_ids() -> None:
    expected = "account/3c/8e/2a7f5b9d41e6a0c4f1d2e3b4a5c6"
    assert account_db(ACCOUNT) == expected
    assert account_db(expected) == expected
    assert account_db(encode_db(expected)) == expected
    assert encode_db(expected) == "account%2F3c%2F8e%2F2a7f5b9d41e6a0c4f1d2e3b4a5c6"
    with pytest.raises(ValueError, match="too short"):
        account_db("ab")


@pytest.mark.parametrize(
    ("request_user", "to_user", "config", "expected"),
    [
        ("+14155550100", "+14155550199", None, "+14155550100"),  # default field: Request
        ("trunk7", "+14155550100", None, "trunk7"),  # a carrier with the number in To only
        ("trunk7", "+14155550100", {"default": {"inbound_user_field": "To"}}, "+14155550100"),
        (None, "+14155550100", None, "+14155550100"),  # falls back to the other field
        ("nouser", "4155550100", None, "4155550100"),
        ("", None, None, None),
        ("4155550100", None, {"inbound_user_field": "To"}, "4155550100"),
    ],
)
def test_inbound_number_field_choice(
    request_user: str | None, to_user: str | None, config: dict[str, Any] | None, expected: str | None
) -> None:
    assert inbound_number(request_user, to_user, config) == expected


def test_inbound_destination_assume_e164() -> None:
    assume = {"default": {"assume_inbound_e164": True}}
    assert inbound_destination("4155550100", assume) == "+4155550100"  # not normalized: + prepended
    assert inbound_destination("+14155550100", assume) == "+14155550100"
    assert inbound_destination("4155550100", None) == "+14155550100"
    assert inbound_destination(None, None) is None


def _store_with(number_doc: dict[str, Any] | None, account: dict[str, Any] | None = None) -> DocumentStore:
    store = DocumentStore()
    store.create_db("numbers/+1415")
    store.create_db("accounts")
    if number_doc is not None:
        store.put("numbers/+1415", {"_id": "+14155550100", **number_doc})
    if account is not None:
        store.put("accounts", {"_id": ACCOUNT, **account})
    return store


@pytest.mark.parametrize("state", sorted(numbers.ROUTING_STATES))
def test_lookup_routes_in_routing_states(state: str) -> None:
    store = _store_with({"pvt_state": state, "pvt_assigned_to": ACCOUNT}, {"pvt_enabled": True})
    found = lookup_number(store, "4155550100")
    assert found.ok and found.reason is None
    assert (found.e164, found.db, found.state, found.account_id) == (
        "+14155550100",
        "numbers/+1415",
        state,
        ACCOUNT,
    )


@pytest.mark.parametrize("state", sorted(numbers.ALL_STATES - numbers.ROUTING_STATES))
def test_lookup_not_in_service_states(state: str) -> None:
    store = _store_with({"pvt_state": state, "pvt_assigned_to": ACCOUNT})
    found = lookup_number(store, "+14155550100")
    assert not found.ok and found.reason == "not_in_service" and found.account_id == ACCOUNT


def test_lookup_errors() -> None:
    assert lookup_number(_store_with(None), "+14155550100").reason == "not_found"
    unassigned = lookup_number(_store_with({"pvt_state": "in_service"}), "+14155550100")
    assert unassigned.reason == "unassigned" and unassigned.doc is not None
    disabled = _store_with({"pvt_state": "in_service", "pvt_assigned_to": ACCOUNT}, {"pvt_enabled": False})
    assert lookup_number(disabled, "+14155550100").reason == "account_disabled"
    disabled_2 = _store_with({"pvt_state": "in_service", "pvt_assigned_to": ACCOUNT}, {"enabled": False})
    assert lookup_number(disabled_2, "+14155550100").reason == "account_disabled"
    short = lookup_number(_store_with(None), "123")
    assert (short.reason, short.reconcilable, short.db) == ("not_reconcilable", False, None)
    assert lookup_number(_store_with(None), None).reason == "not_reconcilable"
    unformatted = lookup_number(_store_with(None), "(415) 555-0100")
    assert (unformatted.reason, unformatted.reconcilable) == ("not_found", False)


def test_lookup_honours_old_pvt_number_state() -> None:
    store = _store_with({"pvt_number_state": "in_service", "pvt_assigned_to": ACCOUNT})
    assert lookup_number(store, "+14155550100").state == "in_service"
    assert lookup_number(store, "+14155550100").ok


def test_lookup_uses_store_stepswitch_config() -> None:
    store = _store_with({"pvt_state": "in_service", "pvt_assigned_to": ACCOUNT})
    store.create_db("system_config")
    store.put("system_config", {"_id": "stepswitch", "default": {"assume_inbound_e164": True}})
    found = lookup_number(store, "14155550100")
    assert found.e164 == "+14155550100" and found.ok


def test_find_callflow() -> None:
    store = DocumentStore()
    store.create_db(account_db(ACCOUNT))
    flow = {"_id": "cf1", "pvt_type": "callflow", "numbers": ["+14155550100"], "flow": {"module": "device"}}
    store.put(account_db(ACCOUNT), flow)
    store.put(account_db(ACCOUNT), {"_id": "dev1", "pvt_type": "device", "numbers": ["+14155550101"]})
    found = find_callflow(store, ACCOUNT, "+14155550100")
    assert found is not None and found["_id"] == "cf1"
    assert find_callflow(store, ACCOUNT, "+14155550101") is None
    assert find_callflow(store, "f" * 32, "+14155550100") is None  # no such account db


def test_describe_reports_kazoo_and_phonenumbers_views() -> None:
    info = numbers.describe("442071234567")
    assert info["kazoo_e164"] == "+442071234567" and info["region"] == "GB" and info["valid"] is True
    assert numbers.describe("(415) 555-0100")["kazoo_reconcilable"] is False
