"""What differs between the Kazoo releases' Kamailio configurations when the harness starts them.

One entry per release: where its pristine tree is, how a copy is ported to Debian's 5.6 (the mechanical
edits), the extra Kamailio arguments, and the names its local.cfg uses for the site values the harness
sets (4.3: listener names and ``listen=`` lines; 5.x: ports and addresses its listener-defs.cfg turns
into listeners itself).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.kazoo.release import KAZOO_4_3, KAZOO_5
from harness.kazoo_sbc.edit import apply_edits
from harness.kazoo_sbc.edits_5x import KAMAILIO_ARGS_5X, OPTIONS_REPLY_5X, SITE_VALUES_5X, port_5x
from harness.kazoo_sbc.edits_43 import EDITS_43, LOCAL_ROUTE_PORT
from harness.kazoo_sbc.localcfg import SiteValues

SHARED_CONFIGS = Path(__file__).resolve().parents[3] / "shared" / "kazoo-configs-kamailio"
CONFIG_ENV = "KAZOO_SBC_CONFIG"
KAMAILIO_MEMORY = ("-m", "64")  # shared memory (MB): both trees start in it


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
    prometheus: int  # 5.x: the prometheus stats listener (9494), always on


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
    port: Callable[[Path], list[str]]  # ports a copy to Debian's Kamailio 5.6: the edits' names
    site: Callable[[SiteInputs], SiteValues]
    kamailio_args: tuple[str, ...] = (*KAMAILIO_MEMORY, "-M", "8")
    options_reason: str = "Rawr!!"
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def pristine(self) -> Path:
        return SHARED_CONFIGS / self.folder / "kamailio"


def port_43(config_dir: Path) -> list[str]:
    return apply_edits(config_dir, EDITS_43)


def site_43(inputs: SiteInputs) -> SiteValues:
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
    return SiteValues(substs, defines, ("UDP_SIP", "TCP_SIP", "UDP_ALG_SIP", "TCP_ALG_SIP"))


def site_5x(inputs: SiteInputs) -> SiteValues:
    """5.x's local.cfg names (edits_5x.SITE_VALUES_5X, each a define or a substdef as 5.x reads it).
    No listen= lines: listener-defs.cfg and default-listeners.cfg make them from MY_LOCAL_IP and the
    ports. KZ_DB_MODULE stays unset (an operator's line for it is commented out): its default selects
    db_kazoo.cfg, which the port makes load db_sqlite.so; 5.x has no db_sqlite.cfg."""
    ip, p = inputs.ip, inputs.ports
    values = {
        "MY_HOSTNAME": inputs.hostname,
        "MY_IP_ADDRESS": ip,
        "MY_LOCAL_IP": ip,
        "SIP_PORT": str(p.sip),
        "ALG_PORT": str(p.alg),
        "SIP_S_PORT": str(p.tls),
        "ALG_S_PORT": str(p.tls_alg),
        "WS_PORT": str(p.ws),
        "WSS_PORT": str(p.wss),
        "PROMETHEUS_PORT": str(p.prometheus),
        "KZ_LOCAL_ROUTE_PORT": str(p.local_route),
        "MY_AMQP_URL": inputs.amqp_url,
        "KAZOO_DATA_DIR": str(inputs.data_dir),
        "KAZOO_DB_URL": f"sqlite:///{inputs.db_path}",
        "CHILDREN": str(inputs.children),
        "TCP_CHILDREN": str(inputs.children),
    }
    directive = {site.name: site.directive for site in SITE_VALUES_5X}
    unknown = set(values) - set(directive)
    if unknown:
        raise KeyError(f"not a 5.x site value (edits_5x.SITE_VALUES_5X): {sorted(unknown)}")
    substs = {name: value for name, value in values.items() if directive[name] == "substdef"}
    defines = {name: value for name, value in values.items() if directive[name] == "define"}
    return SiteValues(substs, defines, (), unset=("KZ_DB_MODULE",))


RELEASES: dict[str, SbcRelease] = {
    KAZOO_4_3.name: SbcRelease(release=KAZOO_4_3.name, folder="4.3", port=port_43, site=site_43),
    KAZOO_5.name: SbcRelease(
        release=KAZOO_5.name,
        folder="5.x",
        port=port_5x,
        site=site_5x,
        kamailio_args=(*KAMAILIO_MEMORY, *KAMAILIO_ARGS_5X),
        options_reason=OPTIONS_REPLY_5X[1],
    ),
}


def sbc_release(release: str) -> SbcRelease:
    try:
        return RELEASES[release]
    except KeyError:
        raise ValueError(
            f"the harness cannot start Kazoo's Kamailio configuration for release {release!r} "
            f"(it can: {', '.join(RELEASES)})"
        ) from None
