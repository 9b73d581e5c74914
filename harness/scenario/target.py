"""A target: the stack under test as the scenarios see it — where to send, which source addresses and
numbers each role means there, where its logs are, and what may be done to it."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.kazoo.profiles import Profile
from harness.logs.source import LogSource

Address = tuple[str, int]


class TargetError(ValueError):
    """A role or address the target cannot resolve."""


@dataclass(frozen=True)
class StackAccess:
    """How to reach a stack's management side (diagnose, provisioning). Secret fields are
    ``targetfile.Secret`` values (masked in repr); never print them."""

    couch_url: str | None = None
    couch_username: str | None = None
    couch_password: str | None = None
    strip_db_slashes: bool = False
    crossbar_url: str | None = None
    crossbar_api_key: str | None = None
    esl: tuple[str, int, str] | None = None  # host, port, password
    node: str | None = None  # ecallmgr node whose system_config section applies


@dataclass
class Target:
    name: str  # "embedded", or the target file's path
    kind: str  # "embedded" | "file" | "lab" | "docker"
    sbc: Address
    profile: Profile
    media: Address | None = None  # None: the media role cannot be reached directly
    carriers: dict[str, tuple[str, int | None]] = field(default_factory=dict)
    numbers: dict[str, str] = field(default_factory=dict)
    log_files: dict[str, Path] = field(default_factory=dict)  # source name -> file
    # source name -> factory of a fresh source per scenario (streams such as a container's log)
    log_sources: dict[str, Callable[[], LogSource]] = field(default_factory=dict)
    esl: tuple[str, int, str] | None = None  # host, port, password
    route_timeout: float = 2.6
    silence_window: float = 2.0  # how long "no answer" is waited for when no log line ends it sooner
    allow_malformed: bool = True
    model: Any = None  # the RunningModel behind an embedded target (setup hooks use it)
    close: Callable[[], None] | None = None  # releases what opening the target started (containers)
    # real stacks (target files); the defaults keep the embedded target as it was
    sbc_nodes: dict[str, Address] = field(default_factory=dict)  # SBC node name -> address
    allowed_hosts: frozenset[str] = frozenset()  # non-loopback hosts traffic may go to
    rate_limit: float | None = None  # messages per second to the stack; None: no cap
    # load runs (harness/load/safety.py): allowed at all, peak calls/s, seconds; None: no cap
    allow_load: bool = True
    max_load_rate: float | None = None
    max_load_duration: float | None = None
    allow_provisioning: bool = True
    stack: StackAccess | None = None  # None: derived from ``model`` (see harness.kazoo.access)
    secrets: tuple[str, ...] = ()  # values to redact from every output
    source_file: Any = None  # the TargetFile this target came from

    @property
    def sbc_ip(self) -> str:
        return self.sbc[0]

    def carrier(self, role: str | None, address: str | None = None, port: int | None = None) -> Address:
        """Resolve a carrier role (or an explicit `ip[:port]`) to a local source address."""
        if address:
            ip, _, p = address.partition(":")
            _check_local(ip)
            return ip, int(p) if p else (port or 0)
        role = role or "listed"
        if role not in self.carriers:
            known = ", ".join(sorted(self.carriers))
            raise TargetError(f"target {self.name!r} has no carrier role {role!r}; its roles: {known}")
        ip, role_port = self.carriers[role]
        return ip, port if port is not None else (role_port or 0)

    def number(self, ref: str) -> str:
        """A number role's number on this target, or the literal given."""
        return self.numbers.get(ref, ref)

    def has_number_role(self, ref: str) -> bool:
        return ref in self.numbers


def _check_local(ip: str) -> None:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError as exc:
        raise TargetError(f"not an IP address: {ip!r}") from exc
    if addr.is_unspecified:
        raise TargetError(f"carrier source {ip} is unspecified; name the local address to send from")
