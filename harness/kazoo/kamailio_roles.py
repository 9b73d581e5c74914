"""Kazoo's optional Kamailio roles: the ``#!trydef <NAME>_ROLE`` lines of local.cfg that ship
commented out ("Disabled Roles"), by the names the harness uses for them.

A profile says which of them a stack runs (``roles:``, all off by default as Kazoo ships); the embedded
model switches the same roles on (harness/model/sbc.py); scenarios that need one say so in ``setup``.
"""

from __future__ import annotations

OPTIONAL_ROLES: dict[str, str] = {
    "traffic_filter": "TRAFFIC_FILTER_ROLE",  # traffic-filter-role.cfg
    "antiflood": "ANTIFLOOD_ROLE",  # antiflood-role.cfg (pike)
    "acl": "ACL_ROLE",  # acl-role.cfg
    "rate_limiter": "RATE_LIMITER_ROLE",  # rate-limiter-role.cfg (limits from frontier)
    "authorization": "AUTHORIZATION_ROLE",  # authorization-role.cfg (4.3) / authorization.cfg (5.x)
}


def check_roles(roles: object, where: str) -> dict[str, bool]:
    """``roles`` as {name: on} with known names and boolean values, or ValueError naming ``where``."""
    if not isinstance(roles, dict):
        raise ValueError(f"{where}: roles must be a mapping of role name to on/off")
    unknown = sorted(set(roles) - set(OPTIONAL_ROLES))
    if unknown:
        raise ValueError(f"{where}: unknown Kamailio role(s) {unknown}; known: {', '.join(OPTIONAL_ROLES)}")
    bad = sorted(str(name) for name, on in roles.items() if not isinstance(on, bool))
    if bad:
        raise ValueError(f"{where}: role(s) {bad} must be on or off (true/false)")
    return {str(name): bool(on) for name, on in roles.items()}
