"""ecallmgr's ACLs as FreeSWITCH applies them.

Sources: system_config ``ecallmgr`` (the ``ecallmgr@host`` node section's ``acls`` replaces the
``default`` section's, no merge), plus every enabled offnet resource's ``inbound_ips`` and enabled
gateways' ``server`` added to ``trusted`` as /32 (ecallmgr_fs_acls). Matching follows FreeSWITCH's
network lists: each list denies by default, the most specific matching node decides (a later node wins a
tie), a node with ``ports`` only matches those ports.

Host names are never resolved (the harness only talks to loopback); entries that are not IP addresses are
reported in ``AclLists.skipped``.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.kazoo.numbers import DocReader

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

OFFNET_DB = "offnet"
TRUSTED = "trusted"
AUTHORITATIVE = "authoritative"
# ecallmgr_fs_acls ?IP_REGEX: a gateway server like "1.2.3.4:5060" or "1.2.3.4;transport=tcp".
_LEADING_IPV4 = re.compile(r"^(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})")


@functools.lru_cache(maxsize=1024)
def _network(cidr: str) -> IpNetwork:
    return ipaddress.ip_network(cidr, strict=False)


@dataclass(frozen=True)
class AclEntry:
    """One ACL node: ``name`` is the entry's key in the ``acls`` object (or the IP for resources)."""

    name: str
    list_name: str
    type: str  # "allow" | "deny"
    cidr: str  # as written (bare IPs already given /32 or /128)
    ports: tuple[int, ...] = ()
    description: str | None = None
    source: str = "system_config"  # or "offnet_resource"

    @property
    def network(self) -> IpNetwork:
        return _network(self.cidr)

    @property
    def allow(self) -> bool:
        return self.type == "allow"


@dataclass(frozen=True)
class AclMatch:
    list_name: str
    entry_name: str
    cidr: str
    source: str = "system_config"


def _to_cidr(text: str) -> str | None:
    """A CIDR string for an IP or network; None for host names (never resolved here)."""
    text = text.strip()
    try:
        if "/" in text:
            return str(ipaddress.ip_network(text, strict=False))
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    return f"{address}/{address.max_prefixlen}"


def node_acls(ecallmgr_doc: Mapping[str, Any], node: str) -> Mapping[str, Any]:
    """The ``acls`` object in effect on ``node``: the node section's if it has one, else ``default``'s."""
    for section_name in (node, "default"):
        section = ecallmgr_doc.get(section_name)
        if isinstance(section, Mapping) and isinstance(section.get("acls"), Mapping):
            acls: Mapping[str, Any] = section["acls"]
            return acls
    return {}


def _entries_from_acl(name: str, acl: Mapping[str, Any], skipped: list[str]) -> list[AclEntry]:
    cidrs = acl.get("cidr", [])
    cidrs = [cidrs] if isinstance(cidrs, str) else list(cidrs)
    ports = tuple(int(port) for port in acl.get("ports", []) or [])
    entries = []
    for raw in cidrs:
        cidr = _to_cidr(str(raw))
        if cidr is None:
            skipped.append(f"{name}: {raw}")
            continue
        entries.append(
            AclEntry(
                name=name,
                list_name=str(acl.get("network-list-name", TRUSTED)),
                type=str(acl.get("type", "allow")),
                cidr=cidr,
                ports=ports,
                description=acl.get("description"),
            )
        )
    return entries


def resource_ips(resource: Mapping[str, Any]) -> list[str]:
    """The addresses ecallmgr trusts for one offnet resource: ``inbound_ips`` and the ``server`` of
    enabled SIP gateways (4.3 checks ``enabled``; 5.x also ``endpoint_type: sip``, default sip here)."""
    hosts = [str(ip) for ip in resource.get("inbound_ips", []) or []]
    for gateway in resource.get("gateways", []) or []:
        if (
            gateway.get("enabled") is True
            and gateway.get("endpoint_type", "sip") == "sip"
            and gateway.get("server")
        ):
            hosts.append(str(gateway["server"]))
    ips = []
    for host in hosts:
        stripped = host.split(";", 1)[0]
        if _to_cidr(stripped) is not None and "/" not in stripped:
            ips.append(stripped)
            continue
        leading = _LEADING_IPV4.match(host)
        if leading:
            ips.append(leading.group(1))
    return ips


def resource_entries(resources: Iterable[Mapping[str, Any]]) -> list[AclEntry]:
    """Trusted /32 entries for enabled offnet resources (docs with ``pvt_type: resource``)."""
    entries = []
    for resource in resources:
        if resource.get("pvt_type") != "resource" or resource.get("enabled") is False:
            continue
        for ip in resource_ips(resource):
            cidr = _to_cidr(ip)
            if cidr is not None:
                entries.append(
                    AclEntry(name=ip, list_name=TRUSTED, type="allow", cidr=cidr, source="offnet_resource")
                )
    return entries


def acl_entries(
    ecallmgr_doc: Mapping[str, Any],
    node: str,
    resources: Iterable[Mapping[str, Any]] = (),
    skipped: list[str] | None = None,
) -> list[AclEntry]:
    """The ACL entries ecallmgr hands FreeSWITCH on ``node``: system_config first, then resources.

    ``resources`` are offnet resource documents (see ``offnet_resources``); host names that are not IP
    addresses are appended to ``skipped`` when given."""
    skipped = skipped if skipped is not None else []
    entries: list[AclEntry] = []
    for name, acl in node_acls(ecallmgr_doc, node).items():
        if isinstance(acl, Mapping):
            entries.extend(_entries_from_acl(str(name), acl, skipped))
    entries.extend(resource_entries(resources))
    return entries


def offnet_resources(store: DocReader) -> list[dict[str, Any]]:
    """Resource documents of the ``offnet`` database of a store with ``all_docs(db, include_docs)``."""
    try:
        rows = store.all_docs(OFFNET_DB, include_docs=True)
    except LookupError:
        return []
    return [row["doc"] for row in rows if isinstance(row.get("doc"), dict)]


def entries_from_store(store: DocReader, node: str, skipped: list[str] | None = None) -> list[AclEntry]:
    """``acl_entries`` fed from a document store (system_config/ecallmgr and the offnet database)."""
    ecallmgr_doc = store.get("system_config", "ecallmgr") or {}
    return acl_entries(ecallmgr_doc, node, offnet_resources(store), skipped)


def _port_matches(entry: AclEntry, port: int | None) -> bool:
    return not entry.ports or (port is not None and port in entry.ports)


@dataclass
class AclLists:
    """FreeSWITCH network lists built from ACL entries (each list ``default="deny"``)."""

    lists: dict[str, list[AclEntry]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    # decisions already made: the lists never change (a reload builds new ones), callers ask again and again
    _decided: dict[tuple[str, str, int | None], AclEntry | None] = field(
        default_factory=dict, repr=False, compare=False
    )

    @classmethod
    def build(cls, entries: Iterable[AclEntry], skipped: Iterable[str] = ()) -> AclLists:
        lists: dict[str, list[AclEntry]] = {}
        for entry in entries:
            lists.setdefault(entry.list_name, []).append(entry)
        return cls(lists=lists, skipped=list(skipped))

    def decide(self, list_name: str, ip: str, port: int | None = None) -> AclEntry | None:
        """The node that decides ``ip``/``port`` in one list (allow or deny), or None (default deny)."""
        key = (list_name, ip, port)
        if key in self._decided:
            return self._decided[key]
        decided = self._decide(list_name, ip, port)
        if len(self._decided) >= 65536:  # many sources (a source-address pool): start over
            self._decided.clear()
        self._decided[key] = decided
        return decided

    def _decide(self, list_name: str, ip: str, port: int | None) -> AclEntry | None:
        address = ipaddress.ip_address(ip)
        best: AclEntry | None = None
        best_bits = -1
        for entry in self.lists.get(list_name, []):
            network = entry.network
            if network.version != address.version or address not in network:
                continue
            if not _port_matches(entry, port):
                continue
            if network.prefixlen >= best_bits:  # most specific wins; a later node wins a tie
                best, best_bits = entry, network.prefixlen
        return best

    def check(self, list_name: str, ip: str, port: int | None = None) -> AclMatch | None:
        """The allowing match of ``ip`` in one list, or None when that list denies it."""
        entry = self.decide(list_name, ip, port)
        if entry is None or not entry.allow:
            return None
        return AclMatch(list_name=list_name, entry_name=entry.name, cidr=entry.cidr, source=entry.source)

    def match(self, ip: str, port: int | None = None) -> AclMatch | None:
        """The first list that allows ``ip``: ``trusted``, then ``authoritative``, then any other."""
        names = [TRUSTED, AUTHORITATIVE, *sorted(set(self.lists) - {TRUSTED, AUTHORITATIVE})]
        for name in names:
            found = self.check(name, ip, port)
            if found is not None:
                return found
        return None

    def lines(self) -> list[str]:
        """The NOTICE texts FreeSWITCH logs on ``reloadacl`` for these lists."""
        out = []
        for name, entries in self.lists.items():
            out.append(f"Created ip list {name} default (deny)")
            out.extend(f"Adding {entry.cidr} ({entry.type}) [] to list {name}" for entry in entries)
        return out


@dataclass(frozen=True)
class EdgeSource:
    """One row of the SBC's trusted sources (Kamailio's permissions ``address`` table) as ecallmgr's
    ``edge/0`` answers 5.x's ``trusted.query``: each allowing ``trusted`` entry, one row per cidr and
    port (port 0: any). Kamailio trusts a source any row matches; deny entries have no row."""

    ip: str
    mask: int
    port: int
    entry: AclEntry

    def matches(self, ip: str, port: int) -> bool:
        address = _address(ip)
        if address is None:
            return False
        network = _network(f"{self.ip}/{self.mask}")
        return address.version == network.version and address in network and self.port in (0, port)


@functools.lru_cache(maxsize=4096)
def _address(ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """A source address parsed once: every request asks about its source, and a load run's sources are
    a handful (parsing them per row was 8% of the model's CPU per transaction)."""
    try:
        return ipaddress.ip_address(ip)
    except ValueError:
        return None


def edge_sources(entries: Iterable[AclEntry]) -> list[EdgeSource]:
    """The SBC's trusted sources for ACL entries (``ecallmgr_fs_acls:edge/0``)."""
    rows = []
    for entry in entries:
        if entry.list_name != TRUSTED or not entry.allow:
            continue
        network = entry.network
        for port in entry.ports or (0,):
            rows.append(EdgeSource(str(network.network_address), network.prefixlen, port, entry))
    return rows


def edge_trusts(sources: Iterable[EdgeSource], ip: str, port: int) -> bool:
    """permissions' ``allow_source_address``: some row matches the source address and port."""
    return any(source.matches(ip, port) for source in sources)
