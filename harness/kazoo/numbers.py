"""Kazoo's number rules: normalization, reconciliation, classification, database naming and lookup.

Behaviour follows Kazoo's own regexes (knm_converter_regex, knm_converters, knm_number:lookup_account,
stepswitch_util:get_inbound_destination), not a telephony library: a number Kazoo leaves unchanged is
left unchanged here too. ``describe`` uses phonenumbers only to explain a number to humans.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, Protocol
from urllib.parse import quote, unquote

# knm_converter_regex ?DEFAULT_E164_CONVERTERS (order matters: the first match wins).
DEFAULT_E164_CONVERTERS: dict[str, dict[str, str]] = {
    r"^(\+?1)?([2-9][0-9]{2}[2-9][0-9]{6})$": {"prefix": "+1"},
    r"^011(\d{5,})$|^00(\d{5,})$": {"prefix": "+"},
    r"^[2-9]\d{7,}$": {"prefix": "+"},
}
DEFAULT_RECONCILE_REGEX = r"^(\+?1)?\d{10}$|^\+[2-9]\d{7,}$|^011\d*$|^00\d*$"
DEFAULT_CLASSIFIERS: dict[str, dict[str, Any]] = {
    "tollfree_us": {
        "regex": r"^\+1((?:800|88\d|877|866|855|844|833|822)\d{7})$",
        "friendly_name": "US TollFree",
    },
    "toll_us": {"regex": r"^\+1(900\d{7})$", "friendly_name": "US Toll"},
    "emergency": {
        "regex": r"^(911|922|933|988|833|811|711|999)$",
        "emergency": True,
        "friendly_name": "Emergency Dispatcher",
    },
    "caribbean": {
        "regex": r"^\+?1((?:684|264|268|242|246|441|284|345|767|809|829|849|473|671|876|664|670|787|939|869"
        r"|758|784|721|868|649|340)\d{7})$",
        "friendly_name": "Caribbean",
    },
    "did_us": {"regex": r"^(\+?1)?([2-9][0-9]{2}[2-9][0-9]{6})$", "friendly_name": "US DID"},
    "international": {"regex": r"^\+([2-9]\d{7,})$", "friendly_name": "International"},
    "unknown": {"regex": r"^(.*)$", "friendly_name": "Unknown"},
}

ROUTING_STATES = frozenset({"port_in", "in_service", "port_out", "reserved"})
ALL_STATES = frozenset(
    {
        "aging",
        "available",
        "deleted",
        "discovery",
        "in_service",
        "port_in",
        "port_out",
        "released",
        "reserved",
    }
)
NUMBERS_DB_PREFIX = "numbers/"
ACCOUNTS_DB = "accounts"
SYSTEM_CONFIG_DB = "system_config"

LookupReason = Literal["not_found", "unassigned", "not_in_service", "account_disabled", "not_reconcilable"]


class DocReader(Protocol):
    """What the lookup needs from a document store (the model's DocumentStore or a CouchDB client)."""

    def get(self, db: str, doc_id: str) -> dict[str, Any] | None: ...

    def all_docs(self, db: str, include_docs: bool = False) -> list[dict[str, Any]]:
        """CouchDB ``_all_docs`` rows; raises a LookupError for a missing database."""
        ...


@lru_cache(maxsize=256)
def _compile(regex: str) -> re.Pattern[str]:
    try:
        # ASCII: PCRE's \d is [0-9]; Python's would also take other scripts' digits.
        return re.compile(regex, re.ASCII)
    except re.error as exc:
        raise ValueError(f"invalid Kazoo regex {regex!r}: {exc}") from exc


def config_value(doc: Mapping[str, Any] | None, key: str, default: Any, node: str | None = None) -> Any:
    """A system_config value the way kapps_config reads it: the node section, then ``default``.

    ``doc`` may also be a flat section (``{"e164_converters": ...}``) as tests and callers find handy.
    """
    if not doc:
        return default
    for section_name in (node, "default"):
        section = doc.get(section_name) if section_name else None
        if isinstance(section, Mapping) and key in section:
            return section[key]
    return doc.get(key, default)


def _last_capture(match: re.Match[str]) -> str:
    """Erlang ``re:run(..., [{capture, all, binary}])`` then ``lists:last``: the highest-numbered group
    that took part in the match, or the whole match when there is none."""
    for index in range(len(match.groups()), 0, -1):
        group = match.group(index)
        if group is not None:
            return group
    return match.group(0)


def normalize(number: str, config: Mapping[str, Any] | None = None, node: str | None = None) -> str:
    """knm_converters:normalize/1 with the regex converter: ``+...`` is kept, the first matching
    e164_converter rewrites to prefix + last capture + suffix, otherwise the number is returned unchanged."""
    if number.startswith("+"):
        return number
    converters: Mapping[str, Any] = config_value(config, "e164_converters", DEFAULT_E164_CONVERTERS, node)
    for regex, rule in converters.items():
        match = _compile(regex).search(number)
        if match is None:
            continue
        rule = rule if isinstance(rule, Mapping) else {}
        return f"{rule.get('prefix', '')}{_last_capture(match)}{rule.get('suffix', '')}"
    return number


def is_reconcilable(number: str, config: Mapping[str, Any] | None = None, node: str | None = None) -> bool:
    """knm_converters:is_reconcilable/1: the normalized number matches ``reconcile_regex``."""
    regex = config_value(config, "reconcile_regex", DEFAULT_RECONCILE_REGEX, node)
    return _compile(regex).search(normalize(number, config, node)) is not None


def classify(number: str, config: Mapping[str, Any] | None = None) -> str | None:
    """knm_converters:classify/1: the first classifier whose regex matches the normalized number."""
    normalized = normalize(number, config)
    classifiers: Mapping[str, Any] = config_value(config, "classifiers", DEFAULT_CLASSIFIERS)
    for name, classifier in classifiers.items():
        regex = classifier if isinstance(classifier, str) else classifier.get("regex", "^$")
        if _compile(regex).search(normalized):
            return name
    return None


def numbers_db(e164: str) -> str | None:
    """knm_converters:to_db/1 (unencoded): ``numbers/`` + the first 5 characters, e.g. ``numbers/+1415``.

    None, like Kazoo's ``undefined``, for numbers shorter than 5 characters: they have no database."""
    if len(e164) < 5:
        return None
    return NUMBERS_DB_PREFIX + e164[:5]


def encode_db(name: str) -> str:
    """A database name as it appears in a CouchDB URL path: ``numbers/+1415`` → ``numbers%2F%2B1415``."""
    return quote(name, safe="")


def decode_db(encoded: str) -> str:
    return unquote(encoded)


def raw_account_id(account: str) -> str:
    """The 32-hex account id from a raw id or an ``account/ab/cd/...`` / ``account%2Fab%2F...`` name."""
    name = unquote(account)
    if name.startswith("account/"):
        name = name[len("account/") :].replace("/", "")
        name = name.split("-", 1)[0]  # MODb suffix -YYYYMM
    return name


def account_db(account_id: str) -> str:
    """kz_util:format_account_db: ``account/ab/cd/efgh...`` from a 32-hex account id."""
    raw = raw_account_id(account_id)
    if len(raw) < 5:
        raise ValueError(f"account id too short to name a database: {account_id!r}")
    return f"account/{raw[:2]}/{raw[2:4]}/{raw[4:]}"


def _is_empty_user(user: str | None) -> bool:
    return user is None or user == "" or user == "nouser"


def inbound_number(
    request_user: str | None,
    to_user: str | None,
    stepswitch_config: Mapping[str, Any] | None = None,
    node: str | None = None,
) -> str | None:
    """The dialed number stepswitch takes (kapps_util:get_destination): the field named by
    ``inbound_user_field`` (``Request`` default, or ``To``, compared as written), falling back to the
    other one when it is empty or ``nouser``."""
    field = config_value(stepswitch_config, "inbound_user_field", "Request", node)
    order = (to_user, request_user) if field == "To" else (request_user, to_user)
    for user in order:
        if not _is_empty_user(user):
            return user
    return None


def inbound_destination(
    number: str | None,
    stepswitch_config: Mapping[str, Any] | None = None,
    number_manager_config: Mapping[str, Any] | None = None,
    node: str | None = None,
) -> str | None:
    """stepswitch_util:get_inbound_destination after the field choice: ``+`` prepended when
    ``assume_inbound_e164`` is true, otherwise normalized."""
    if number is None or _is_empty_user(number):
        return None
    if config_value(stepswitch_config, "assume_inbound_e164", False, node) is True:
        return number if number.startswith("+") else "+" + number
    return normalize(number, number_manager_config, node)


@dataclass(frozen=True)
class InboundConfig:
    """The system_config documents that decide which number an inbound call is for, as one node reads
    them (its section first, then ``default``): what stepswitch does with a route request."""

    stepswitch: Mapping[str, Any] | None = None
    number_manager: Mapping[str, Any] | None = None
    node: str | None = None

    @classmethod
    def read(cls, store: DocReader, node: str | None = None) -> InboundConfig:
        return cls(
            store.get(SYSTEM_CONFIG_DB, "stepswitch"), store.get(SYSTEM_CONFIG_DB, "number_manager"), node
        )

    def dialed(self, request_user: str | None, to_user: str | None) -> str | None:
        """The number Kazoo reads from the request (inbound_number)."""
        return inbound_number(request_user, to_user, self.stepswitch, self.node)

    def destination(self, dialed: str | None) -> str | None:
        """The number stepswitch looks up for ``dialed`` (inbound_destination)."""
        return inbound_destination(dialed, self.stepswitch, self.number_manager, self.node)

    def reconcilable(self, number: str) -> bool:
        return is_reconcilable(number, self.number_manager, self.node)


@dataclass(frozen=True)
class NumberLookup:
    """The outcome of knm_number:lookup_account for one dialed number."""

    number: str | None  # as dialed
    e164: str | None  # after inbound normalization
    reconcilable: bool
    db: str | None  # unencoded numbers database, e.g. numbers/+1415
    doc: dict[str, Any] | None
    state: str | None
    account_id: str | None
    ok: bool
    reason: LookupReason | None


def number_state(doc: Mapping[str, Any]) -> str | None:
    """knm_phone_number: ``pvt_state``, falling back to the old ``pvt_number_state``."""
    state = doc.get("pvt_state")
    if state is None:
        state = doc.get("pvt_number_state")
    return str(state) if state is not None else None


def is_account_enabled(store: DocReader, account_id: str) -> bool:
    """Disabled only when the account document says so (``pvt_enabled``/``enabled`` false); a missing
    account document counts as enabled."""
    doc = store.get(ACCOUNTS_DB, raw_account_id(account_id))
    if doc is None:
        return True
    return doc.get("pvt_enabled") is not False and doc.get("enabled") is not False


def lookup_number(
    store: DocReader, number: str | None, node: str | None = None, *, config: InboundConfig | None = None
) -> NumberLookup:
    """stepswitch's inbound lookup: normalize (with the store's stepswitch/number_manager config, or
    ``config`` read from it already), open the number document in its numbers database, then check
    assignment, state and the account."""
    if config is None:
        config = InboundConfig.read(store, node)
    e164 = config.destination(number)
    reconcilable = e164 is not None and config.reconcilable(e164)

    def result(**kwargs: Any) -> NumberLookup:
        base: dict[str, Any] = {
            "number": number,
            "e164": e164,
            "reconcilable": reconcilable,
            "db": db,
            "doc": None,
            "state": None,
            "account_id": None,
            "ok": False,
            "reason": None,
        }
        base.update(kwargs)
        return NumberLookup(**base)

    db = numbers_db(e164) if e164 else None
    if e164 is None or db is None:
        return result(reason="not_reconcilable")
    doc = store.get(db, e164)
    if doc is None:
        return result(reason="not_found")
    state = number_state(doc)
    assigned = doc.get("pvt_assigned_to") or None
    if not assigned:
        return result(doc=doc, state=state, reason="unassigned")
    if state not in ROUTING_STATES:
        return result(doc=doc, state=state, account_id=assigned, reason="not_in_service")
    if not is_account_enabled(store, assigned):
        return result(doc=doc, state=state, account_id=assigned, reason="account_disabled")
    return result(doc=doc, state=state, account_id=assigned, ok=True)


def find_callflow(store: DocReader, account_id: str, e164: str) -> dict[str, Any] | None:
    """The callflow of the account whose ``numbers`` list holds the number (callflow's listing_by_number)."""
    try:
        rows = store.all_docs(account_db(account_id), include_docs=True)
    except LookupError:  # no such account database
        return None
    for row in rows:
        doc = row.get("doc")
        if isinstance(doc, dict) and doc.get("pvt_type") == "callflow" and e164 in doc.get("numbers", []):
            return doc
    return None


def describe(number: str) -> dict[str, Any]:
    """A human description of a number (region, validity, formats) by phonenumbers, beside Kazoo's own
    verdicts. phonenumbers is never used to decide behaviour."""
    import phonenumbers

    e164 = normalize(number)
    info: dict[str, Any] = {
        "number": number,
        "kazoo_e164": e164,
        "kazoo_reconcilable": is_reconcilable(number),
        "kazoo_class": classify(number),
        "numbers_db": numbers_db(e164),
    }
    try:
        parsed = phonenumbers.parse(e164 if e164.startswith("+") else "+" + e164, None)
    except phonenumbers.NumberParseException as exc:
        info.update(parsed=False, error=str(exc))
        return info
    info.update(
        parsed=True,
        region=phonenumbers.region_code_for_number(parsed),
        possible=phonenumbers.is_possible_number(parsed),
        valid=phonenumbers.is_valid_number(parsed),
        national=phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL),
        international=phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL),
    )
    return info
