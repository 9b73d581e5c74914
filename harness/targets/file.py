"""The `file` kind: a TOML description of a real Kazoo stack (see docs/targets.md).

``load_target_file(path)`` validates a file into a :class:`TargetFile` (every error names the key);
``TargetFile.to_target(profile, sbc_node=None)`` gives the :class:`Target`. A file may instead name a
target the harness starts itself (``builtin = "lab"``, with only ``name`` and ``profile`` beside it).
Secrets are never in the file: it names environment variables (``password_env``), read here into
:class:`Secret` values whose ``repr`` is masked.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from harness.kazoo.access import StackAccess
from harness.kazoo.profile import Profile
from harness.kazoo.release import DEFAULTS
from harness.targets.setup import ProvisionedSetup
from harness.targets.target import Address, LogFactory, SafetyPolicy, Target, TargetError, file_logs

TRANSPORTS = ("udp", "tcp", "tls")
LOG_KINDS = ("file", "docker", "command", "esl", "hep")
DEFAULT_RATE_LIMIT = 10.0  # messages per second on a real stack unless the file says otherwise
DEFAULT_LOAD_RATE = 10.0  # calls per second a load run may peak at unless the file says otherwise
DEFAULT_LOAD_DURATION = 60.0  # seconds a load run may last unless the file says otherwise


class TargetFileError(TargetError):
    """A target file that does not validate; the message names the file and the key."""


class Secret(str):
    """A secret read from the environment: usable as a string, masked in ``repr`` (dataclass reprs,
    tracebacks with locals, pytest assertion output)."""

    def __repr__(self) -> str:
        return "'***'"


@dataclass(frozen=True)
class SbcNode:
    name: str
    host: str
    port: int = DEFAULTS.sbc_port
    transports: tuple[str, ...] = ("udp",)

    @property
    def address(self) -> Address:
        return self.host, self.port


@dataclass(frozen=True)
class EslEndpoint:
    name: str
    host: str
    port: int = DEFAULTS.esl_port
    password_env: str | None = None


@dataclass(frozen=True)
class LogSpec:
    name: str
    kind: str  # file | docker | command | esl
    path: str | None = None
    container: str | None = None
    command: tuple[str, ...] = ()
    esl: str | None = None  # name of an [[esl]] endpoint
    listen: tuple[str, ...] = ()  # hep: "udp:IP:PORT" / "tcp:IP:PORT" the capture agents send to
    complete: bool = False  # hep: the agent mirrors every message the SBC reads and writes (docs/hep.md)


@dataclass(frozen=True)
class CouchSpec:
    url: str
    username_env: str | None = None
    password_env: str | None = None
    strip_db_slashes: bool = False


@dataclass(frozen=True)
class CrossbarSpec:
    url: str
    api_key_env: str | None = None
    account_id: str | None = None


@dataclass(frozen=True)
class Safety:
    allow_malformed: bool = False
    allow_provisioning: bool = False
    rate_limit: float | None = DEFAULT_RATE_LIMIT  # messages per second; None = no cap
    allowed_destinations: tuple[str, ...] = ()  # extra hosts beyond those the file names
    allow_load: bool = False  # load runs (harness/load): off unless the file says so
    max_rate: float = DEFAULT_LOAD_RATE  # calls per second at the peak of a load shape
    max_duration: float = DEFAULT_LOAD_DURATION  # seconds a load run may last


@dataclass
class TargetFile:
    path: Path
    name: str
    profile: str | None  # the profile the stack runs (None: the default, or the one asked for)
    sbc: list[SbcNode]
    media: Address | None = None
    carriers: dict[str, tuple[str, int | None]] = field(default_factory=dict)
    numbers: dict[str, str] = field(default_factory=dict)
    esl: list[EslEndpoint] = field(default_factory=list)
    logs: list[LogSpec] = field(default_factory=list)
    couch: CouchSpec | None = None
    crossbar: CrossbarSpec | None = None
    safety: Safety = field(default_factory=Safety)
    node: str | None = None  # ecallmgr node whose system_config section applies
    route_timeout: float = DEFAULTS.route_timeout
    silence_window: float = DEFAULTS.silence_window

    def secret_envs(self) -> list[str]:
        names = [e.password_env for e in self.esl]
        if self.couch:
            names += [self.couch.username_env, self.couch.password_env]
        if self.crossbar:
            names.append(self.crossbar.api_key_env)
        return [n for n in names if n]

    def secrets(self) -> tuple[Secret, ...]:
        """The secret values present in the environment (to redact from any output)."""
        return tuple(Secret(os.environ[n]) for n in self.secret_envs() if os.environ.get(n))

    def destinations(self) -> frozenset[str]:
        """Every host this file names as something to talk to."""
        hosts = {n.host for n in self.sbc} | {e.host for e in self.esl}
        if self.media:
            hosts.add(self.media[0])
        for url in (self.couch.url if self.couch else None, self.crossbar.url if self.crossbar else None):
            if url:
                hosts.add(_url_host(url))
        return frozenset(hosts) | frozenset(self.safety.allowed_destinations)

    def sbc_node(self, name: str | None) -> SbcNode:
        if name is None:
            return self.sbc[0]
        for node in self.sbc:
            if node.name == name:
                return node
        raise TargetFileError(
            f"{self.path}: no SBC node {name!r} (known: {', '.join(n.name for n in self.sbc)})"
        )

    def log_names(self) -> tuple[str, ...]:
        return tuple(log.name for log in self.logs)

    def to_target(self, profile: Profile, sbc_node: str | None = None) -> Target:
        node = self.sbc_node(sbc_node)
        files = {s.name: Path(s.path) for s in self.logs if s.kind == "file" and s.path}
        return Target(
            name=str(self.path) + (f"#{node.name}" if sbc_node else ""),
            kind="file",
            profile=profile,
            sbc=node.address,
            media=self.media,
            sbc_nodes={n.name: n.address for n in self.sbc},
            carriers=dict(self.carriers),
            numbers=dict(self.numbers),
            logs={**file_logs(files), **self.stream_sources()},
            stack=self.stack_access(),
            policy=SafetyPolicy(
                allowed_hosts=self.destinations(),
                allow_malformed=self.safety.allow_malformed,
                allow_provisioning=self.safety.allow_provisioning,
                rate_limit=self.safety.rate_limit,
                allow_load=self.safety.allow_load,
                max_load_rate=self.safety.max_rate,
                max_load_duration=self.safety.max_duration,
                origin=f"{self.path} [safety]",
            ),
            route_timeout=self.route_timeout,
            silence_window=self.silence_window,
            setup=ProvisionedSetup(),  # system_config needs [couch]; the roles are the profile's
            secrets=self.secrets(),
            source_file=self.path,
        )

    def stream_sources(self) -> dict[str, LogFactory]:
        """Factories of the event-socket, docker, command and HEP log sources (a fresh one per scenario;
        a HEP capture's receiver lives as long as the target)."""
        from harness.logs.command_source import CommandSource
        from harness.logs.docker_source import DockerSource
        from harness.logs.esl_source import EslSource
        from harness.logs.hep_source import HepCapture, HepReceiver

        endpoints = {e.name: e for e in self.esl}
        out: dict[str, LogFactory] = {}
        for log in self.logs:
            if log.kind == "esl" and log.esl in endpoints:
                e = endpoints[log.esl]
                out[log.name] = partial(EslSource, e.host, e.port, esl_password(e.password_env), log.name)
            elif log.kind == "docker" and log.container:
                out[log.name] = partial(DockerSource, log.container, log.name)
            elif log.kind == "command" and log.command:
                out[log.name] = partial(CommandSource, list(log.command), log.name)
            elif log.kind == "hep" and log.listen:
                out[log.name] = HepCapture(HepReceiver(log.listen, log.name), complete=log.complete)
        return out

    def stack_access(self) -> StackAccess:
        esl = self.esl[0] if self.esl else None
        return StackAccess(
            couch_url=self.couch.url if self.couch else None,
            couch_username=secret_env(self.couch.username_env) if self.couch else None,
            couch_password=secret_env(self.couch.password_env) if self.couch else None,
            strip_db_slashes=self.couch.strip_db_slashes if self.couch else False,
            crossbar_url=self.crossbar.url if self.crossbar else None,
            crossbar_api_key=secret_env(self.crossbar.api_key_env) if self.crossbar else None,
            esl=(esl.host, esl.port, esl_password(esl.password_env)) if esl else None,
            node=self.node,
        )


def esl_password(name: str | None) -> Secret:
    """The event-socket password from ``name`` in the environment, FreeSWITCH's default otherwise."""
    return Secret(os.environ.get(name, DEFAULTS.esl_password) if name else DEFAULTS.esl_password)


def secret_env(name: str | None, default: str | None = None) -> Secret | None:
    if not name:
        return Secret(default) if default is not None else None
    value = os.environ.get(name)
    if value is None:
        return Secret(default) if default is not None else None
    return Secret(value)


def _url_host(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).hostname or ""


# --- validation ------------------------------------------------------------------------------------


class _Reader:
    """Typed access to a TOML table with errors that name ``file: key``."""

    def __init__(self, path: Path, table: Mapping[str, Any], where: str = "") -> None:
        self.path, self.table, self.where = path, table, where

    def error(self, key: str, what: str) -> TargetFileError:
        return TargetFileError(f"{self.path}: {self.where}{key}: {what}")

    def get(
        self, key: str, kind: type | tuple[type, ...], default: Any = None, required: bool = False
    ) -> Any:
        if key not in self.table:
            if required:
                raise self.error(key, "missing")
            return default
        value = self.table[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            raise self.error(key, f"expected {names}, got {type(value).__name__} {value!r}")
        return value

    def sub(self, key: str, index: int | None = None) -> _Reader:
        table = self.table[key] if index is None else self.table[key][index]
        if not isinstance(table, Mapping):
            raise self.error(key, "expected a table")
        label = f"{key}[{index}]" if index is not None else key
        return _Reader(self.path, table, f"{self.where}{label}.")

    def unknown(self, known: set[str]) -> None:
        extra = set(self.table) - known
        if extra:
            raise self.error(", ".join(sorted(extra)), f"unknown key(s); known: {', '.join(sorted(known))}")


def _ip(reader: _Reader, key: str, text: str) -> str:
    try:
        ipaddress.ip_address(text)
    except ValueError as exc:
        raise reader.error(key, f"not an IP address: {text!r}") from exc
    return text


def _host(reader: _Reader, key: str, text: str) -> str:
    """An IP address (host names are not resolved by the harness: safety checks compare addresses)."""
    return _ip(reader, key, text)


def _port(reader: _Reader, key: str, value: int) -> int:
    if not 0 < value < 65536:
        raise reader.error(key, f"port out of range: {value}")
    return value


def _hostport(reader: _Reader, key: str, text: str) -> tuple[str, int | None]:
    host, sep, port = text.rpartition(":")
    if not sep:
        return _ip(reader, key, text), None
    if not port.isdigit():
        raise reader.error(key, f"expected IP or IP:PORT, got {text!r}")
    return _ip(reader, key, host), _port(reader, key, int(port))


def _url(reader: _Reader, key: str, text: str) -> str:
    from urllib.parse import urlsplit

    split = urlsplit(text)
    if split.scheme not in ("http", "https") or not split.hostname:
        raise reader.error(key, f"expected an http(s) URL, got {text!r}")
    if split.username or split.password:
        raise reader.error(key, "credentials do not belong in the URL; name environment variables instead")
    _ip(reader, key, split.hostname)
    return text


def _env_name(reader: _Reader, key: str) -> str | None:
    name: str | None = reader.get(key, str)
    if name is not None and not name.replace("_", "").isalnum():
        raise reader.error(key, f"expected an environment variable name, got {name!r}")
    return name


def _sbc(reader: _Reader) -> list[SbcNode]:
    raw = reader.table.get("sbc")
    if raw is None:
        raise reader.error("sbc", "missing: name at least one SBC ([[sbc]] host = ..., port = ...)")
    tables = [raw] if isinstance(raw, Mapping) else raw
    if not isinstance(tables, list) or not tables:
        raise reader.error("sbc", "expected a table or a non-empty array of tables")
    nodes = []
    for index, table in enumerate(tables):
        if not isinstance(table, Mapping):
            raise reader.error(f"sbc[{index}]", "expected a table")
        r = _Reader(reader.path, table, f"sbc[{index}].")
        r.unknown({"name", "host", "port", "transports"})
        transports = tuple(r.get("transports", list, ["udp"]))
        for t in transports:
            if t not in TRANSPORTS:
                raise r.error("transports", f"unknown transport {t!r} (udp, tcp, tls)")
        nodes.append(
            SbcNode(
                name=r.get("name", str, f"sbc{index + 1}"),
                host=_host(r, "host", r.get("host", str, required=True)),
                port=_port(r, "port", r.get("port", int, DEFAULTS.sbc_port)),
                transports=transports,
            )
        )
    names = [n.name for n in nodes]
    if len(set(names)) != len(names):
        raise reader.error("sbc", f"node names must be unique: {names}")
    return nodes


def _listen(reader: _Reader) -> tuple[str, ...]:
    """``listen`` of a hep source: one "udp:IP:PORT" / "tcp:IP:PORT" or a list of them."""
    from harness.logs.hep_source import Listen

    value = reader.get("listen", (str, list), [])
    texts = [value] if isinstance(value, str) else value
    for text in texts:
        try:
            Listen.parse(str(text))
        except ValueError as exc:
            raise reader.error("listen", str(exc)) from exc
    return tuple(str(t) for t in texts)


def _logs(reader: _Reader, esl_names: set[str]) -> list[LogSpec]:
    specs = []
    for index, _ in enumerate(reader.get("logs", list, [])):
        r = reader.sub("logs", index)
        r.unknown({"name", "kind", "path", "container", "command", "esl", "listen", "complete"})
        kind = r.get("kind", str, required=True)
        if kind not in LOG_KINDS:
            raise r.error("kind", f"one of {', '.join(LOG_KINDS)}, not {kind!r}")
        spec = LogSpec(
            name=r.get("name", str, required=True),
            kind=kind,
            path=r.get("path", str),
            container=r.get("container", str),
            command=tuple(str(a) for a in r.get("command", list, [])),
            esl=r.get("esl", str),
            listen=_listen(r),
            complete=r.get("complete", bool, False),
        )
        needed = {"file": spec.path, "docker": spec.container, "command": spec.command, "esl": spec.esl,
                  "hep": spec.listen}[kind]  # fmt: skip
        if not needed:
            key = {
                "file": "path",
                "docker": "container",
                "command": "command",
                "esl": "esl",
                "hep": "listen",
            }[kind]
            raise r.error(key, f"a {kind} log source needs {key}")
        if kind == "esl" and spec.esl not in esl_names:
            raise r.error("esl", f"no [[esl]] endpoint named {spec.esl!r}")
        specs.append(spec)
    return specs


TOP_KEYS = {
    "name",
    "profile",
    "sbc",
    "media",
    "carriers",
    "numbers",
    "esl",
    "logs",
    "couch",
    "crossbar",
    "safety",
    "kazoo",
}


def parse_target_file(path: Path, data: Mapping[str, Any]) -> TargetFile:
    top = _Reader(path, data)
    top.unknown(TOP_KEYS)
    sbc = _sbc(top)
    media = None
    if "media" in data:
        m = top.sub("media")
        m.unknown({"host", "port"})
        media = (
            _host(m, "host", m.get("host", str, required=True)),
            _port(m, "port", m.get("port", int, DEFAULTS.media_port)),
        )
    carriers: dict[str, tuple[str, int | None]] = {}
    if "carriers" in data:
        c = top.sub("carriers")
        for role in c.table:
            carriers[role] = _hostport(c, role, c.get(role, str))
    numbers: dict[str, str] = {}
    if "numbers" in data:
        n = top.sub("numbers")
        numbers = {role: n.get(role, str) for role in n.table}
    esl = []
    for index, _ in enumerate(top.get("esl", list, [])):
        e = top.sub("esl", index)
        e.unknown({"name", "host", "port", "password_env"})
        esl.append(
            EslEndpoint(
                name=e.get("name", str, f"esl{index + 1}"),
                host=_host(e, "host", e.get("host", str, required=True)),
                port=_port(e, "port", e.get("port", int, DEFAULTS.esl_port)),
                password_env=_env_name(e, "password_env"),
            )
        )
    couch = None
    if "couch" in data:
        c = top.sub("couch")
        c.unknown({"url", "username_env", "password_env", "strip_db_slashes"})
        couch = CouchSpec(
            url=_url(c, "url", c.get("url", str, required=True)),
            username_env=_env_name(c, "username_env"),
            password_env=_env_name(c, "password_env"),
            strip_db_slashes=c.get("strip_db_slashes", bool, False),
        )
    crossbar = None
    if "crossbar" in data:
        x = top.sub("crossbar")
        x.unknown({"url", "api_key_env", "account_id"})
        crossbar = CrossbarSpec(
            url=_url(x, "url", x.get("url", str, required=True)),
            api_key_env=_env_name(x, "api_key_env"),
            account_id=x.get("account_id", str),
        )
    safety = Safety()
    if "safety" in data:
        s = top.sub("safety")
        s.unknown(
            {"allow_malformed", "allow_provisioning", "rate_limit", "allowed_destinations"}
            | {"allow_load", "max_rate", "max_duration"}
        )
        rate = s.get("rate_limit", float, DEFAULT_RATE_LIMIT)
        if rate < 0:
            raise s.error("rate_limit", "must be >= 0 (messages per second; 0 = no cap)")
        max_rate = s.get("max_rate", float, DEFAULT_LOAD_RATE)
        max_duration = s.get("max_duration", float, DEFAULT_LOAD_DURATION)
        for key, value in (("max_rate", max_rate), ("max_duration", max_duration)):
            if value <= 0:
                raise s.error(key, "must be > 0 (a load run is always bounded)")
        safety = Safety(
            allow_malformed=s.get("allow_malformed", bool, False),
            allow_provisioning=s.get("allow_provisioning", bool, False),
            rate_limit=rate or None,
            allowed_destinations=tuple(
                _ip(s, "allowed_destinations", h) for h in s.get("allowed_destinations", list, [])
            ),
            allow_load=s.get("allow_load", bool, False),
            max_rate=max_rate,
            max_duration=max_duration,
        )
    kazoo = top.sub("kazoo") if "kazoo" in data else _Reader(path, {}, "kazoo.")
    kazoo.unknown({"node", "route_timeout", "silence_window"})
    return TargetFile(
        path=path,
        name=top.get("name", str, path.stem),
        profile=top.get("profile", str),
        sbc=sbc,
        media=media,
        carriers=carriers,
        numbers=numbers,
        esl=esl,
        logs=_logs(top, {e.name for e in esl}),
        couch=couch,
        crossbar=crossbar,
        safety=safety,
        node=kazoo.get("node", str),
        route_timeout=kazoo.get("route_timeout", float, DEFAULTS.route_timeout),
        silence_window=kazoo.get("silence_window", float, DEFAULTS.silence_window),
    )


def load_target_file(path: Path | str) -> TargetFile:
    """Read and validate a TOML target file; raises TargetFileError naming the file and key."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TargetFileError(f"{path}: cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise TargetFileError(f"{path}: not valid TOML: {exc}") from exc
    return parse_target_file(path, data)


def split_target_ref(ref: str) -> tuple[str, str | None]:
    """``FILE#node`` → (FILE, node); the node part picks one of the file's SBC nodes."""
    file, sep, node = ref.rpartition("#")
    if sep and file.endswith(".toml"):
        return file, node or None
    return ref, None


def sbc_refs(target_ref: str) -> list[str]:
    """For ``run --each-sbc``: one ``FILE#node`` target reference per SBC node of a target file (the
    reference unchanged for other targets or a file with one node)."""
    file, node = split_target_ref(target_ref)
    if node is not None or not file.endswith(".toml") or not Path(file).is_file():
        return [target_ref]
    nodes = load_target_file(file).sbc
    return [f"{file}#{n.name}" for n in nodes] if len(nodes) > 1 else [target_ref]
