"""ecallmgr ACLs: node section replaces default, cidr lists, ports, deny nodes, offnet resources."""

from __future__ import annotations

from typing import Any

from harness.kazoo.acls import AclLists, AclMatch, acl_entries, entries_from_store, resource_ips
from harness.model.store import DocumentStore

NODE = "ecallmgr@kazoo-model.local"


def _acl(cidr: Any, list_name: str = "trusted", type_: str = "allow", **extra: Any) -> dict[str, Any]:
    return {"cidr": cidr, "network-list-name": list_name, "type": type_, **extra}


ECALLMGR = {
    "_id": "ecallmgr",
    "default": {
        "acls": {
            "carrier_a": _acl("127.0.0.10"),
            "carrier_net": _acl(["127.0.1.0/24", "127.0.2.7"]),
            "carrier_port": _acl("127.0.0.20/32", ports=[5070]),
            "default_only": _acl("127.0.0.30/32"),
            "sbc": _acl("127.0.0.1/32", "authoritative"),
            "v6": _acl("::1"),
        }
    },
    NODE: {
        "acls": {
            "carrier_a": _acl("127.0.0.10/32"),
            "sbc": _acl("127.0.0.1/32", "authoritative"),
        }
    },
}


def _lists(doc: dict[str, Any], node: str, resources: list[dict[str, Any]] | None = None) -> AclLists:
    return AclLists.build(acl_entries(doc, node, resources or []))


def test_default_section_used_without_node_section() -> None:
    lists = _lists(ECALLMGR, "ecallmgr@other.host")
    assert lists.match("127.0.0.30") == AclMatch("trusted", "default_only", "127.0.0.30/32")
    assert lists.match("127.0.0.10") == AclMatch("trusted", "carrier_a", "127.0.0.10/32")


def test_node_section_replaces_default() -> None:
    lists = _lists(ECALLMGR, NODE)
    assert lists.match("127.0.0.30") is None  # only in default: gone, not merged
    assert lists.match("127.0.1.25") is None
    assert lists.match("127.0.0.10") == AclMatch("trusted", "carrier_a", "127.0.0.10/32")


def test_bare_ip_becomes_host_network_and_cidr_lists_expand() -> None:
    entries = acl_entries(ECALLMGR, "x")
    cidrs = {(e.name, e.cidr) for e in entries}
    assert ("carrier_a", "127.0.0.10/32") in cidrs
    assert {("carrier_net", "127.0.1.0/24"), ("carrier_net", "127.0.2.7/32")} <= cidrs
    assert ("v6", "::1/128") in cidrs
    lists = AclLists.build(entries)
    assert lists.match("127.0.1.25") == AclMatch("trusted", "carrier_net", "127.0.1.0/24")
    assert lists.match("127.0.2.7") == AclMatch("trusted", "carrier_net", "127.0.2.7/32")
    assert lists.match("127.0.2.8") is None
    assert lists.match("::1") == AclMatch("trusted", "v6", "::1/128")
    assert lists.match("::2") is None


def test_ports_restrict_the_entry() -> None:
    lists = _lists(ECALLMGR, "x")
    assert lists.match("127.0.0.20", 5070) == AclMatch("trusted", "carrier_port", "127.0.0.20/32")
    assert lists.match("127.0.0.20", 5071) is None
    assert lists.match("127.0.0.20", None) is None


def test_authoritative_is_not_trusted() -> None:
    lists = _lists(ECALLMGR, NODE)
    assert lists.check("trusted", "127.0.0.1") is None
    assert lists.match("127.0.0.1") == AclMatch("authoritative", "sbc", "127.0.0.1/32")


def test_unlisted_is_default_deny() -> None:
    assert _lists(ECALLMGR, NODE).match("127.0.0.66") is None


def test_most_specific_node_decides_and_deny_entries() -> None:
    doc = {
        "default": {
            "acls": {
                "net": _acl("127.0.5.0/24"),
                "block_one": _acl("127.0.5.9/32", type_="deny"),
                "deny_wide": _acl("127.0.0.0/8", type_="deny"),
            }
        }
    }
    lists = _lists(doc, "x")
    assert lists.match("127.0.5.8") == AclMatch("trusted", "net", "127.0.5.0/24")  # /24 beats /8 deny
    assert lists.match("127.0.5.9") is None  # /32 deny beats /24 allow
    assert lists.decide("trusted", "127.0.5.9") is not None
    assert lists.match("127.0.6.1") is None  # only the /8 deny


def test_tie_goes_to_the_later_node() -> None:
    doc = {"default": {"acls": {"a": _acl("127.0.7.1", type_="deny"), "b": _acl("127.0.7.1")}}}
    assert _lists(doc, "x").match("127.0.7.1") == AclMatch("trusted", "b", "127.0.7.1/32")


def test_host_names_are_skipped_not_resolved() -> None:
    skipped: list[str] = []
    entries = acl_entries(
        {"default": {"acls": {"h": _acl(["sbc.example.com", "127.0.0.9"])}}}, "x", [], skipped
    )
    assert [e.cidr for e in entries] == ["127.0.0.9/32"]
    assert skipped == ["h: sbc.example.com"]


def test_offnet_resources_are_trusted() -> None:
    resources: list[dict[str, Any]] = [
        {
            "_id": "res1",
            "pvt_type": "resource",
            "enabled": True,
            "inbound_ips": ["127.0.0.40"],
            "gateways": [
                {"server": "127.0.0.41:5060", "enabled": True},
                {"server": "127.0.0.42", "enabled": False},
                {"server": "127.0.0.43;transport=tcp", "enabled": True, "endpoint_type": "sip"},
            ],
        },
        {"_id": "res2", "pvt_type": "resource", "enabled": False, "inbound_ips": ["127.0.0.44"]},
        {"_id": "other", "pvt_type": "device", "inbound_ips": ["127.0.0.45"]},
    ]
    lists = _lists(ECALLMGR, NODE, resources)
    assert lists.match("127.0.0.40") == AclMatch("trusted", "127.0.0.40", "127.0.0.40/32", "offnet_resource")
    assert lists.match("127.0.0.41") is not None
    assert lists.match("127.0.0.42") is None  # disabled gateway
    assert lists.match("127.0.0.43") is not None
    assert lists.match("127.0.0.44") is None  # disabled resource
    assert lists.match("127.0.0.45") is None  # not a resource
    assert resource_ips({"inbound_ips": ["carrier.example.com"]}) == []


def test_entries_from_store() -> None:
    store = DocumentStore()
    store.create_db("system_config")
    store.create_db("offnet")
    store.put("system_config", dict(ECALLMGR))
    store.put("offnet", {"_id": "r", "pvt_type": "resource", "inbound_ips": ["127.0.0.40"]})
    lists = AclLists.build(entries_from_store(store, NODE))
    assert lists.match("127.0.0.40") is not None and lists.match("127.0.0.30") is None
    assert AclLists.build(entries_from_store(DocumentStore(), NODE)).lists == {}


def test_reloadacl_lines() -> None:
    lines = _lists(ECALLMGR, NODE).lines()
    assert lines == [
        "Created ip list trusted default (deny)",
        "Adding 127.0.0.10/32 (allow) [] to list trusted",
        "Created ip list authoritative default (deny)",
        "Adding 127.0.0.1/32 (allow) [] to list authoritative",
    ]
