"""A target: the stack under test as everything else sees it — where to send, which source addresses and
numbers each role means there, where its logs are, how to reach its management side, and what may be
done to it. A Target is frozen; the kind that opened it (harness.targets.kinds) owns its lifetime."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from harness.kazoo.access import StackAccess
from harness.kazoo.numbers import DocReader
from harness.kazoo.profile import Profile
from harness.kazoo.provision import Provisioner
from harness.kazoo.release import DEFAULTS, KazooRelease
from harness.logs.file_source import FileSource
from harness.logs.hep_source import HepCapture
from harness.logs.source import LogSource

Address = tuple[str, int]
CarrierAddress = tuple[str, int | None]  # ip, fixed port or None
if TYPE_CHECKING:
    from harness.targets.gate import SendGate

LogFactory = Callable[[], LogSource]  # a fresh source per scenario
LOG_POLL = 0.005  # how often a followed log file is read: a silence ends within this of its drop line


class TargetError(ValueError):
    """A target reference, role or address that cannot be resolved (a usage error)."""


class TargetStartError(RuntimeError):
    """The target could not be started or reached (an infrastructure error, not a scenario failure)."""


class SetupUnsupported(RuntimeError):
    """The target cannot apply a scenario's setup (the scenario is skipped with this reason)."""


@dataclass(frozen=True)
class SafetyPolicy:
    """What a target allows (docs/targets.md "Safety"); the send gate (harness.targets.gate) applies it."""

    allowed_hosts: frozenset[str] = frozenset()  # non-loopback hosts traffic may go to
    allow_malformed: bool = True  # malformed, oversized or mutated bytes
    allow_provisioning: bool = True  # temporary documents through CouchDB
    rate_limit: float | None = None  # requests per second to the stack; None: no cap
    # load runs (harness/load; the gate's admit_load): allowed at all, peak calls/s and seconds (None: no
    # cap); a load run paces itself, so these replace rate_limit there
    allow_load: bool = True
    max_load_rate: float | None = None
    max_load_duration: float | None = None
    origin: str = "the built-in target"  # where the rules come from, for refusals ("strict.toml [safety]")


class Setup(Protocol):
    """What a target lets a scenario's `setup:` change for one scenario (always undone)."""

    def system_config(
        self, target: Target, changes: Mapping[str, Mapping[str, Any]]
    ) -> AbstractContextManager[None]:
        """Each named system_config document's ``default`` section gets the fields, for the block."""
        ...

    def media_down(self, target: Target) -> AbstractContextManager[Target]:
        """A target like this one whose SBC has no live media server, for the block."""
        ...

    def kamailio_roles(self, target: Target, roles: Mapping[str, bool]) -> AbstractContextManager[Target]:
        """A target like this one whose SBC runs the optional Kamailio roles (harness.kazoo.roles) as
        ``roles`` says, the others as they are, for the block; SetupUnsupported where it cannot be
        started, and the target unchanged where it already runs them so."""
        ...


MediaDown = Callable[["Target"], AbstractContextManager["Target"]]
RolesTwin = Callable[["Target", Mapping[str, bool]], AbstractContextManager["Target"]]


@dataclass(frozen=True)
class Target:
    name: str  # the reference it was opened by ("embedded", "lab", a file path, FILE#node, HOST:PORT)
    kind: str  # the kind that opened it (harness.targets.kinds)
    profile: Profile
    sbc: Address
    media: Address | None = None  # None: the media role cannot be reached directly
    sbc_nodes: Mapping[str, Address] = field(default_factory=dict)  # SBC node name -> address
    carriers: Mapping[str, CarrierAddress] = field(default_factory=dict)
    numbers: Mapping[str, str] = field(default_factory=dict)
    logs: Mapping[str, LogFactory] = field(default_factory=dict)  # source name -> factory
    stack: StackAccess = field(default_factory=StackAccess)
    # the stack's documents when the harness holds them in-process (the embedded model's store): read
    # directly instead of through its CouchDB API
    documents: DocReader | None = None
    policy: SafetyPolicy = field(default_factory=SafetyPolicy)
    route_timeout: float = DEFAULTS.route_timeout
    silence_window: float = DEFAULTS.silence_window
    setup: Setup | None = None  # None: no scenario setup on this target
    secrets: tuple[str, ...] = ()  # values to redact from every output
    source_file: Path | None = None  # the target file it was read from (the provisioning journal names it)
    # the stack runs on the harness's demo data set (harness/model/demo): it knows only the demo's carriers
    # and numbers, so what it says about anyone else's says nothing about their stack
    demo_data: bool = False

    @property
    def release(self) -> KazooRelease:
        return self.profile.release

    @property
    def sbc_ip(self) -> str:
        return self.sbc[0]

    @cached_property
    def gate(self) -> SendGate:
        """The send gate of this target's rules: every carrier UA sending to it is made with it."""
        from harness.targets.gate import SendGate

        return SendGate(self.name, self.policy)

    def carrier(self, role: str | None, address: str | None = None, port: int | None = None) -> Address:
        """Resolve a carrier role (or an explicit `ip[:port]`) to a local source address."""
        if address:
            ip, _, p = address.partition(":")
            check_local(ip)
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

    @property
    def captures(self) -> list[HepCapture]:
        """The log sources that are HEP captures: the stack's own view of each call (docs/hep.md)."""
        return [factory for factory in self.logs.values() if isinstance(factory, HepCapture)]

    def log_sources(self) -> list[LogSource]:
        """A fresh source per log of the target (each scenario follows its own)."""
        return [make() for make in self.logs.values()]

    def provisioner(self, journal_dir: Path | None = None) -> Provisioner:
        """Journaled, restored document changes on this stack; refused without allow_provisioning."""
        from harness.net.gate import SendRefused

        if not self.policy.allow_provisioning:
            raise SendRefused(
                f"target {self.name!r} ({self.policy.origin}) does not set allow_provisioning = true; "
                "nothing was changed"
            )
        return Provisioner.for_access(
            self.stack,
            journal_dir=journal_dir,
            target_ref=str(self.source_file) if self.source_file is not None else None,
        )

    def with_changes(self, **changes: Any) -> Target:
        return replace(self, **changes)


def file_logs(files: Mapping[str, Path]) -> dict[str, LogFactory]:
    """Log factories following files (``tail -F``)."""
    return {name: _file_factory(path, name) for name, path in files.items()}


def _file_factory(path: Path, name: str) -> LogFactory:
    return lambda: FileSource(path, name, poll_interval=LOG_POLL)


def check_local(ip: str) -> None:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError as exc:
        raise TargetError(f"not an IP address: {ip!r}") from exc
    if addr.is_unspecified:
        raise TargetError(f"carrier source {ip} is unspecified; name the local address to send from")
