"""Kazoo's frontier app answering Kamailio's rate-limit query (RATE_LIMITER_ROLE's ``kazoo_query``).

Read from 2600hz/kazoo applications/frontier: frontier_handle_rate.erl (``handle_rate_req``,
``lookup_rate_limit_records``, ``make_deny_rates``, ``fetch_rates_from_sys_config``,
``fold_responses``) and frontier_init.erl (the defaults it writes to ``system_config/frontier``).

The query names an entity, ``realm`` or ``user@realm``, the methods (``Method`` or ``Method-List``:
INVITE, REGISTER, TOTAL) and ``With-Realm``. A realm that is no account's ``realm`` is throttled:
every limit answered is -1 ("Throttle him"), so Kamailio rejects every request it counts. A known
realm gets ``system_config/frontier`` ``rate_limits`` (``account`` section for the realm, ``device``
for a user), first answer per limit kept. Not modelled: per-account and per-device rate_limits
documents (Crossbar ``/rate_limits``) and their parent-account fallback; the demo data has none.
frontier is not among Kazoo's default apps (kazoo_apps.hrl DEFAULT_KAPPS): a stack that switches
RATE_LIMITER_ROLE on runs it, and the model assumes it does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.kazoo.numbers import SYSTEM_CONFIG_DB, DocReader

MINUTE, SECOND = "per_minute", "per_second"
METHOD_NAMES = {"REGISTER": "registrations", "INVITE": "invites", "TOTAL": "total_packets"}
NAME_METHODS = {name: method for method, name in METHOD_NAMES.items()}
DEFAULT_RATES: dict[str, dict[str, dict[str, int]]] = {  # frontier_init.erl ?DEFAULT_RATES
    "account": {
        MINUTE: {"registrations": 100, "invites": 200, "total_packets": 2000},
        SECOND: {"registrations": 20, "invites": 50, "total_packets": 100},
    },
    "device": {
        MINUTE: {"registrations": 20, "invites": 100, "total_packets": 1000},
        SECOND: {"registrations": 2, "invites": 5, "total_packets": 20},
    },
}

# One record as frontier builds them: (type "realm"|"device", name, method name, per_minute, per_second)
Record = tuple[str, str, str, Any, Any]


def account_by_realm(store: DocReader, realm: str) -> dict[str, Any] | None:
    """The ``accounts`` document whose ``realm`` is ``realm`` (kapps_util:get_account_by_realm)."""
    try:
        rows = store.all_docs("accounts", include_docs=True)
    except LookupError:
        return None
    for row in rows:
        doc = row.get("doc")
        if isinstance(doc, dict) and str(doc.get("realm", "")).lower() == realm.lower():
            return doc
    return None


def _split(entity: str) -> tuple[str, str | None]:
    """(realm, user) of an entity: ``user@realm`` or a bare realm."""
    user, at, realm = entity.partition("@")
    return (realm, user) if at else (entity, None)


def _records(entity: str, method_name: str, per_minute: Any, per_second: Any) -> list[Record]:
    """construct_records(): the entity's kind comes from its shape, not from who asked."""
    realm, user = _split(entity)
    kind, name = ("device", user) if user is not None else ("realm", realm)
    return [(kind, name, method_name, per_minute, None), (kind, name, method_name, None, per_second)]


def _method_names(query: Mapping[str, Any]) -> list[str]:
    """lookup_methods(): ``Method`` wins over ``Method-List``; unknown methods are dropped."""
    method = query.get("Method")
    if method is not None:
        methods = [method]
    else:
        listed = query.get("Method-List")
        methods = list(listed) if isinstance(listed, list) else []
    return [METHOD_NAMES[m] for m in methods if m in METHOD_NAMES]


def _sys_config_rates(store: DocReader) -> Mapping[str, Any]:
    doc = store.get(SYSTEM_CONFIG_DB, "frontier") or {}
    section = doc.get("default", doc)
    rates = section.get("rate_limits") if isinstance(section, Mapping) else None
    return rates if isinstance(rates, Mapping) else DEFAULT_RATES


def _from_sys_config(store: DocReader, entity: str, kind: str, names: list[str]) -> list[Record]:
    target = _sys_config_rates(store).get("account" if kind == "realm" else "device") or {}
    out: list[Record] = []
    for name in names:  # foldl with `construct_records(...) ++ Acc`: the last method first
        per_minute = (target.get(MINUTE) or {}).get(name)
        per_second = (target.get(SECOND) or {}).get(name)
        if per_minute is not None and per_second is not None:
            out = _records(entity, name, per_minute, per_second) + out
    return out


def _fold(records: list[Record]) -> dict[str, Any]:
    """fold_responses(): ``{"Realm"|"Device": {"Minute": {M: n}, "Second": {M: n}, "Name": ...}}``,
    the first value of each limit kept."""
    answer: dict[str, Any] = {}
    for kind, name, method_name, per_minute, per_second in records:
        section = answer.setdefault(kind.capitalize(), {})
        method = NAME_METHODS[method_name]
        if per_minute is not None:
            section.setdefault("Minute", {}).setdefault(method, per_minute)
        if per_second is not None:
            section.setdefault("Second", {}).setdefault(method, per_second)
        section["Name"] = name
    return answer


def rate_limits_answer(store: DocReader, query: Mapping[str, Any]) -> dict[str, Any]:
    """frontier's answer to a ``rate_limit`` ``query`` (without the AMQP envelope)."""
    entity = str(query.get("Entity", ""))
    with_realm = query.get("With-Realm") is True
    names = _method_names(query)
    realm, user = _split(entity)
    if account_by_realm(store, realm) is None:  # "can't find realm ~s. Throttle him."
        records = [r for name in names for r in _records(entity, name, -1, -1)]
        if user is not None and with_realm:
            records += [r for name in names for r in _records(realm, name, -1, -1)]
        return _fold(records)
    if with_realm:
        records = _from_sys_config(store, realm, "realm", names)
        records += _from_sys_config(store, entity, "device", names)
    else:
        records = _from_sys_config(store, entity, "device" if user is not None else "realm", names)
    return _fold(records)
