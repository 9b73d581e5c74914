"""Kinds for stacks that are already running and described in code, not in a file:
- `HOST:PORT` — an SBC (or FreeSWITCH) on a loopback address, with the demo's carrier roles;
- `model` — `kazoo-harness model` at its default addresses (its CouchDB API and event socket too).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

from harness.kazoo.access import StackAccess
from harness.kazoo.profile import Profile
from harness.kazoo.release import DEFAULTS
from harness.logs.esl_source import EslSource
from harness.model.demo import demo_roles
from harness.targets.embedded import carrier_roles
from harness.targets.target import Address, Target, TargetError

LOOPBACK_HOST = "127.0.0.1"


def parse_address(text: str) -> Address | None:
    """``HOST:PORT`` with a loopback IPv4 host (``localhost`` allowed) as an address; None when the text
    is not HOST:PORT at all; TargetError for HOST:PORT off loopback or with a bad port."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        return None
    host = LOOPBACK_HOST if host == "localhost" else host
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if not 0 < int(port) < 65536:
        raise TargetError(f"target {text!r}: port out of range")
    if not ip.is_loopback:
        raise TargetError(
            f"refusing target {text}: without a target file only loopback addresses (127.0.0.0/8) are used"
        )
    return host, int(port)


@contextmanager
def open_address(address: Address, profile: Profile, name: str) -> Iterator[Target]:
    yield Target(
        name=name,
        kind="address",
        profile=profile,
        sbc=address,
        carriers=carrier_roles(demo_roles(), address[0]),
        numbers=dict(demo_roles().get("numbers", {})),
    )


@contextmanager
def open_running_model(profile: Profile) -> Iterator[Target]:
    """`kazoo-harness model` started with its defaults, in another process."""
    esl = (LOOPBACK_HOST, DEFAULTS.esl_port, DEFAULTS.esl_password)
    roles = demo_roles()
    yield Target(
        name="model",
        kind="model",
        profile=profile,
        sbc=(LOOPBACK_HOST, DEFAULTS.sbc_port),
        media=(LOOPBACK_HOST, DEFAULTS.media_port),
        carriers=carrier_roles(roles, LOOPBACK_HOST),
        numbers=dict(roles.get("numbers", {})),
        logs={"freeswitch": partial(EslSource, *esl, "freeswitch")},
        stack=StackAccess(
            couch_url=f"http://{LOOPBACK_HOST}:{DEFAULTS.couch_port}", esl=esl, node=DEFAULTS.model_node
        ),
        route_timeout=DEFAULTS.route_timeout,
    )
