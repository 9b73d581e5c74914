"""What differs between the Kazoo releases' Kamailio configurations when the harness starts them.

One entry per release: where its pristine tree is, the mechanical edits it needs on Debian's 5.6, the
extra Kamailio arguments, and the names its local.cfg uses for the site values the harness sets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.kazoo.release import KAZOO_4_3
from harness.kazoo_sbc.edit import Edit
from harness.kazoo_sbc.edits_43 import EDITS_43, LOCAL_ROUTE_PORT

SHARED_CONFIGS = Path(__file__).resolve().parents[3] / "shared" / "kazoo-configs-kamailio"
CONFIG_ENV = "KAZOO_SBC_CONFIG"


@dataclass(frozen=True)
class Ports:
    """The free loopback ports one SBC instance listens on."""

    sip: int  # UDP and TCP: what carriers send to
    alg: int  # Kazoo's second SIP port (7000 in a stock local.cfg)
    local_route: int  # tcp:127.0.0.1 listener for tm local requests (5090 in stock default.cfg)
    tls: int
    tls_alg: int
    ws: int
    wss: int


@dataclass(frozen=True)
class SiteInputs:
    hostname: str
    ip: str
    ports: Ports
    amqp_url: str
    data_dir: Path
    db_path: Path
    children: int


@dataclass(frozen=True)
class SbcRelease:
    release: str  # the release it pairs with (harness.kazoo.release)
    folder: str  # under ../shared/kazoo-configs-kamailio
    edits: tuple[Edit, ...]
    site: Callable[[SiteInputs], tuple[dict[str, str], dict[str, str], tuple[str, ...]]]
    kamailio_args: tuple[str, ...] = ("-m", "64", "-M", "8")
    options_reason: str = "Rawr!!"
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def pristine(self) -> Path:
        return SHARED_CONFIGS / self.folder / "kamailio"


def site_43(inputs: SiteInputs) -> tuple[dict[str, str], dict[str, str], tuple[str, ...]]:
    """4.3's local.cfg names: substdefs, defines and the listen= lines its stock local.cfg has."""
    ip, p = inputs.ip, inputs.ports
    substs = {
        "MY_HOSTNAME": inputs.hostname,
        "MY_IP_ADDRESS": ip,
        "MY_AMQP_URL": inputs.amqp_url,
        "KAZOO_DATA_DIR": str(inputs.data_dir),
        "KAZOO_DB_URL": f"sqlite:///{inputs.db_path}",  # sqlite:/// + /abs/path: the four slashes
        "UDP_SIP": f"udp:{ip}:{p.sip}",
        "TCP_SIP": f"tcp:{ip}:{p.sip}",
        "TLS_SIP": f"tls:{ip}:{p.tls}",
        "UDP_ALG_SIP": f"udp:{ip}:{p.alg}",
        "TCP_ALG_SIP": f"tcp:{ip}:{p.alg}",
        "TLS_ALG_SIP": f"tls:{ip}:{p.tls_alg}",
        "TCP_WS": f"tcp:{ip}:{p.ws}",
        "UDP_WS_SIP": f"udp:{ip}:{p.ws}",
        "TLS_WSS": f"tls:{ip}:{p.wss}",
        "UDP_WSS_SIP": f"udp:{ip}:{p.wss}",
        LOCAL_ROUTE_PORT: str(p.local_route),
    }
    defines = {
        "KZ_DB_MODULE": "sqlite",
        "CHILDREN": str(inputs.children),
        "TCP_CHILDREN": str(inputs.children),
    }
    return substs, defines, ("UDP_SIP", "TCP_SIP", "UDP_ALG_SIP", "TCP_ALG_SIP")


RELEASES: dict[str, SbcRelease] = {
    KAZOO_4_3.name: SbcRelease(release=KAZOO_4_3.name, folder="4.3", edits=EDITS_43, site=site_43),
}


def sbc_release(release: str) -> SbcRelease:
    try:
        return RELEASES[release]
    except KeyError:
        raise ValueError(
            f"the harness cannot start Kazoo's Kamailio configuration for release {release!r} yet "
            f"(it can: {', '.join(RELEASES)}; 5.x needs the port in harness/kazoo_sbc/edits_5x.py)"
        ) from None
