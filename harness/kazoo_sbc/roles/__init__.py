"""The roles a Kazoo Kamailio configuration turns on, and what follows from them for the model and profile.

A role is on when its ``<NAME>_ROLE`` is defined in local.cfg (harness.kazoo_sbc.localcfg.roles_of). Each
optional role that changes what a carrier call gets has an overlay here, ``<role>.yaml``, with the
outcomes it adds to the release's profile; the embedded model has a switch for the same roles
(ModelConfig.role_switches). Roles that cannot run on Debian's modules are listed with the reason.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import yaml

from harness.kazoo.profiles import Profile
from harness.model.sbc import ROLE_SWITCHES

OVERLAYS = Path(__file__).parent
# Kazoo 4.3's stock local.cfg turns these on (5.x's the same set, see its local.cfg).
DEFAULT_ROLES = frozenset({"dispatcher", "nat_traversal", "registrar", "presence", "responder", "nodes"})
# Roles that cannot run on Debian's kamailio-kazoo-modules: the synchronous kazoo_query() reads an
# argument that is never passed (a crash, or an instant failure), and these call it on the INVITE path.
BROKEN_HERE = {
    "acl": "acl-role.cfg asks ACLs with the synchronous kazoo_query(), broken in Debian's kazoo module",
    "rate_limiter": "rate-limiter-role.cfg asks limits with the synchronous kazoo_query(), broken in "
    "Debian's kazoo module",
}


def model_switches(roles: frozenset[str]) -> dict[str, bool]:
    """The embedded model's role switches for a configuration's roles."""
    return {name: name in roles for name in ROLE_SWITCHES}


def overlay_outcomes(role: str) -> dict[str, dict[str, object]]:
    path = OVERLAYS / f"{role}.yaml"
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    outcomes: dict[str, dict[str, object]] = data.get("outcomes") or {}
    return outcomes


def profile_for_roles(profile: Profile, roles: frozenset[str]) -> Profile:
    """``profile`` with the outcomes of every optional role that is on (unchanged for the stock roles)."""
    added = sorted(role for role in roles - DEFAULT_ROLES if overlay_outcomes(role))
    if not added:
        return profile
    outcomes = dict(profile.outcomes)
    for role in added:
        outcomes.update(overlay_outcomes(role))
    return replace(
        profile,
        name=f"{profile.name}+{'+'.join(added)}",
        outcomes=outcomes,
        source=f"{profile.source} <- roles {', '.join(added)}",
    )
