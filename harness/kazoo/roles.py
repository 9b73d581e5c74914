"""Kazoo's Kamailio roles (local.cfg's ``#!trydef <NAME>_ROLE``), by the names the harness uses for them.

A stack runs the roles its local.cfg turns on; the expectation profile says which optional ones (``roles:
{antiflood: true}``; off by default, as Kazoo ships local.cfg), the embedded model switches the same
ones on, and the kazoo-sbc target reads them from the configuration it runs.
"""

from __future__ import annotations

# On in Kazoo's stock local.cfg (4.3 and 5.x): the harness's targets always run them
DEFAULT_ROLES = frozenset({"dispatcher", "nat_traversal", "registrar", "presence", "responder", "nodes"})
# Off in the stock local.cfg, and changing what a carrier's call gets: a profile switches them on
OPTIONAL_ROLES: dict[str, str] = {
    "traffic_filter": "traffic-filter-role.cfg: an untrusted INVITE to an IP domain is dropped",
    "antiflood": "antiflood-role.cfg: pike drops a source over its rate",
    "acl": "acl-role.cfg: per-realm/device ACLs asked over AMQP",
    "rate_limiter": "rate-limiter-role.cfg: per-realm limits asked over AMQP, 603 over them",
    # 5.x has no such role: its authorization.cfg is always on (KazooRelease.sbc_challenges_untrusted)
    "authorization": "authorization-role.cfg (4.3): 503 Not Registered to an unregistered, untrusted "
    "MESSAGE, NOTIFY, SUBSCRIBE or PUBLISH (INVITEs are left to FreeSWITCH)",
}
# Roles that cannot run on Debian's Kamailio 5.6 and its kamailio-kazoo-modules, and why: the synchronous
# kazoo_query() reads an argument that is never passed (a segfault, or an instant failure), and the ACL
# and rate-limiter roles call it on the INVITE path
BROKEN_ON_DEBIAN: dict[str, str] = {
    "acl": "acl-role.cfg asks ACLs with the synchronous kazoo_query(), broken in Debian's kazoo module",
    "rate_limiter": "rate-limiter-role.cfg asks limits with the synchronous kazoo_query(), broken in "
    "Debian's kazoo module",
    "authorization": "4.3's authorization-role.cfg:18 calls registered() with four parameters, which "
    "Debian's Kamailio 5.6 registrar does not take: the configuration does not parse with it on",
}
ROLE_SUFFIX = "_ROLE"


def role_name(define: str) -> str:
    """``ANTIFLOOD_ROLE`` -> ``antiflood``."""
    return define[: -len(ROLE_SUFFIX)].lower()


def role_define(role: str) -> str:
    """``antiflood`` -> ``ANTIFLOOD_ROLE``."""
    return role.upper() + ROLE_SUFFIX


def optional_on(roles: frozenset[str]) -> dict[str, bool]:
    """Every optional role, on or off, for a set of roles a configuration turns on."""
    return {name: name in roles for name in OPTIONAL_ROLES}
