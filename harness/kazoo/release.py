"""Kazoo releases: the one list, what differs between them, and the stack's defaults.

Everything that depends on the release reads it here: the embedded model's roles, the expectation
profiles (harness/kazoo/profiles/<release>.yaml), the lab's Kamailio configuration (through the fields
below, handed to harness.lab), the log formats, the scenario schema's `releases:` and the CLI defaults.
Nothing else spells a release's name (kazoo-behaviour.md: 4.3 is the most deployed; 5.x differs in a
few places, each a field here).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

KamailioLogStyle = Literal["pipe", "dash"]


class ReleaseError(ValueError):
    """A release name that is not one of RELEASES."""


@dataclass(frozen=True)
class KazooRelease:
    name: str  # the one spelling, also the shipped profile's name
    title: str
    # FreeSWITCH runs with auth-calls-acl-only=true: an INVITE from no ACL gets 403, never a challenge
    auth_calls_acl_only: bool
    # How Kazoo's Kamailio script lines look: "pipe" `<callid>|<area>|msg` (4.3), "dash" `<area> - msg`
    # with the Call-ID in Kamailio's log_prefix (5.x)
    kamailio_log_style: KamailioLogStyle
    # Kamailio's failure route turns reorder's 604 into 486 "Unable to Comply"
    sbc_rewrites_604: bool
    # The optional flood/DoS roles (antiflood-role.cfg, rate-limiter-role.cfg; docs/model.md):
    # default.cfg runs CLASSIFY_SOURCE before ANTIFLOOD_LIMIT and DOS_PREVENTION, so trusted and internally
    # sourced requests are exempt (5.x); else the roles run first and read those flags unset (4.3)
    flood_roles_after_classify: bool
    # antiflood-role.cfg returns before pike for OPTIONS (5.x): pings are never counted
    antiflood_skips_options: bool

    @property
    def marker(self) -> str:
        """The pytest marker of scenarios that apply to this release only (`kazoo_4_3`)."""
        return self.name.replace("-", "_").replace(".", "_")


KAZOO_4_3 = KazooRelease(
    name="kazoo-4.3",
    title="Kazoo 4.3",
    auth_calls_acl_only=False,
    kamailio_log_style="pipe",
    sbc_rewrites_604=False,
    flood_roles_after_classify=False,
    antiflood_skips_options=False,
)
KAZOO_5 = KazooRelease(
    name="kazoo-5",
    title="Kazoo 5.x",
    auth_calls_acl_only=True,
    kamailio_log_style="dash",
    sbc_rewrites_604=True,
    flood_roles_after_classify=True,
    antiflood_skips_options=True,
)
RELEASES: dict[str, KazooRelease] = {r.name: r for r in (KAZOO_4_3, KAZOO_5)}
DEFAULT_RELEASE = KAZOO_4_3
RELEASE_NAMES = tuple(RELEASES)


def release(name: str) -> KazooRelease:
    try:
        return RELEASES[name]
    except KeyError:
        raise ReleaseError(f"unknown Kazoo release {name!r}: use one of {', '.join(RELEASES)}") from None


@dataclass(frozen=True)
class StackDefaults:
    """What a Kazoo stack uses unless told otherwise (kazoo-behaviour.md, "Ports" and §3)."""

    sbc_port: int = 5060  # Kamailio
    media_port: int = 11000  # FreeSWITCH sofia profile sipinterface_1
    esl_port: int = 8021  # FreeSWITCH event socket, on 127.0.0.1
    esl_password: str = "ClueCon"
    couch_port: int = 5984
    crossbar_port: int = 8000
    sofia_profile: str = "sipinterface_1"
    route_timeout: float = 2.6  # seconds before an unanswered route request fails (FreeSWITCH's fetch)
    silence_window: float = 2.0  # how long the harness waits for "no answer" when no log line ends it
    # the ecallmgr node the embedded model runs as (its system_config node section)
    model_node: str = "ecallmgr@kazoo-model.local"


DEFAULTS = StackDefaults()
