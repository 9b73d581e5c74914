"""The stack's data in the form Kazoo's apps hand it to the SBC: dispatcher rows and trusted sources.

Media servers: the nodes role (nodes-role.cfg CHECK_MEDIA_SERVERS -> DISPATCHER_CHECK_MEDIA_SERVER) turns
each FreeSWITCH interface an ecallmgr advertises (``Media-Servers`` in a ``nodes``/``advertise`` message)
into a row of set 1 (its own AMQP zone) with attrs ``zone=..;profile=..;duid=..;node=..``.

Trusted sources: 5.x's trusted.cfg TRUSTED_LOAD asks ``trusted.query`` over AMQP and ecallmgr answers with
``ecallmgr_fs_acls:edge/0``: the node's system_config ACLs of list ``trusted`` that ``allow``, plus the
enabled offnet resources' ``inbound_ips`` and SIP gateway servers, each with its ports (none: 0, any) and a
``token``; every cidr x port becomes an ``address`` row. 4.3's configuration reads the same table
(``allow_source_address(1)``) but none of 4.3's apps writes it: operators fill it. The harness fills it the
same way on both releases, from the same ACLs the model's media role applies (harness.kazoo.acls).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from harness.kazoo.acls import AclEntry, edge_sources, entries_from_store
from harness.kazoo.numbers import DocReader
from harness.kazoo_sbc.database import AddressRow, DispatcherRow

MEDIA_SERVERS_HASH_SIZE = 256  # defs.cfg
MEDIA_PROFILE = "sipinterface_1"  # the sofia profile Kazoo's FreeSWITCH carries SBC traffic on
PRIMARY_SET = 1  # the SBC's own AMQP zone (DISPATCHER_CHECK_MEDIA_SERVER: SetId 1, else 2)
# dispatcher flags: 8 = probed with OPTIONS. The nodes role inserts 9 (also "inactive" until the first
# answered probe, up to ds_ping_interval = 10 s later); a row provisioned before start with 8 is the same
# server in the state it reaches after that first probe.
PROBED_ACTIVE = 8


def media_attrs(url: str, *, zone: str, node: str, profile: str = MEDIA_PROFILE) -> str:
    """attrs as DISPATCHER_CHECK_MEDIA_SERVER builds them (duid: a hash of the URL, any stable one)."""
    duid = int(hashlib.sha1(url.encode()).hexdigest(), 16) % MEDIA_SERVERS_HASH_SIZE
    return f"zone={zone};profile={profile};duid={duid};node={node}"


def dispatcher_rows(
    media: Iterable[tuple[str, int]], *, node: str, zone: str = "local", flags: int = PROBED_ACTIVE
) -> list[DispatcherRow]:
    rows = []
    for ip, port in media:
        url = f"sip:{ip}:{port}"
        rows.append(DispatcherRow(PRIMARY_SET, url, flags, media_attrs(url, zone=zone, node=node)))
    return rows


def address_rows(entries: Iterable[AclEntry]) -> list[AddressRow]:
    """TRUSTED_LOAD's insert loop: one row per cidr and port (harness.kazoo.acls.edge_sources)."""
    rows = []
    for source in edge_sources(entries):
        token = f"{hashlib.sha1(source.entry.name.encode()).hexdigest()[:32]}@{source.entry.source}"
        rows.append(AddressRow(ip_addr=source.ip, mask=source.mask, port=source.port, tag=token))
    return rows


def trusted_rows(store: DocReader, node: str) -> list[AddressRow]:
    """The address table for ecallmgr ``node``'s ACLs in ``store`` (system_config and offnet)."""
    return address_rows(entries_from_store(store, node))
