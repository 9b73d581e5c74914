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

KamailioLogStyle = Literal["pipe", "prefixed"]


class ReleaseError(ValueError):
    """A release name that is not one of RELEASES."""


@dataclass(frozen=True)
class KazooRelease:
    """A release and what differs in it. The ``sbc_*`` fields are what Kazoo's own Kamailio
    configuration of the release does, checked by running it (docs/parity.md has the evidence)."""

    name: str  # the one spelling, also the shipped profile's name
    title: str
    # FreeSWITCH runs with auth-calls-acl-only=true: an INVITE from no ACL gets 403, never a challenge
    auth_calls_acl_only: bool
    # How Kazoo's Kamailio script lines look: "pipe" `<callid>|<area>|msg` (4.3: `$ci|end|` in each
    # xlog), "prefixed" `|<callid>|<file>:<line> (<route>) msg` (5.x: xlog's prefix, defs.cfg)
    kamailio_log_style: KamailioLogStyle
    # Kamailio's failure route turns reorder's 604 into 486 "Unable to Comply"
    sbc_rewrites_604: bool
    # authorization.cfg is always on (5.x): Kamailio challenges an untrusted INVITE itself (407) and
    # asks Kazoo's registrar over AMQP for the credentials of the retry
    sbc_challenges_untrusted: bool
    # PREPARE_INITIAL_REQUESTS removes the Route set of an initial request from outside and relays it
    # (5.x), where 4.3 refuses it with 403 No pre-loaded routes
    sbc_removes_initial_route: bool
    # tcp_accept_no_cl=yes (5.x http.cfg): a TCP message without Content-Length is taken as one
    # without a body, and what follows its headers as the next message
    sbc_accepts_tcp_without_content_length: bool
    # the source is classified (trusted, internal) before ANTIFLOOD and TRAFFIC_FILTER run (5.x), so
    # those roles can exempt trusted sources; 4.3 runs them first and counts everyone
    sbc_filters_exempt_trusted: bool
    # only the reserved headers (X-AUTH, X-KAZOO, X-FS-, Referred-By) are removed from a carrier's
    # INVITE and X-AUTH-IP/PORT are added only for an authorized source (5.x); 4.3 removes every X-
    # header and adds X-AUTH-IP/PORT to every INVITE from outside
    sbc_x_auth_for_authorized_only: bool
    # sanity.cfg also drops the QNQ User-Agent and an SDP whose s= line is portsip.com (5.x)
    sbc_drops_qnq_and_portsip_sdp: bool
    # Max-Forwards is not checked on OPTIONS (5.x sanity.cfg)
    sbc_max_forwards_skips_options: bool
    # the failure route's 6xx -> 4xx rewrite leaves 607 alone (5.x)
    sbc_relays_607: bool
    # the failure route relays a media server's 407 (4.3: "creating redirect"); 5.x has no such branch:
    # the 407 is one more 4xx, answered 486 Unable to Comply
    sbc_relays_media_407: bool
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
    sbc_challenges_untrusted=False,
    sbc_removes_initial_route=False,
    sbc_accepts_tcp_without_content_length=False,
    sbc_filters_exempt_trusted=False,
    sbc_x_auth_for_authorized_only=False,
    sbc_drops_qnq_and_portsip_sdp=False,
    sbc_max_forwards_skips_options=False,
    sbc_relays_607=False,
    sbc_relays_media_407=True,
    antiflood_skips_options=False,
)
KAZOO_5 = KazooRelease(
    name="kazoo-5",
    title="Kazoo 5.x",
    auth_calls_acl_only=True,
    kamailio_log_style="prefixed",
    sbc_rewrites_604=True,
    sbc_challenges_untrusted=True,
    sbc_removes_initial_route=True,
    sbc_accepts_tcp_without_content_length=True,
    sbc_filters_exempt_trusted=True,
    sbc_x_auth_for_authorized_only=True,
    sbc_drops_qnq_and_portsip_sdp=True,
    sbc_max_forwards_skips_options=True,
    sbc_relays_607=True,
    sbc_relays_media_407=False,
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
