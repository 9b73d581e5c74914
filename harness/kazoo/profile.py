"""Expectation profiles: what each named outcome looks like on a Kazoo release, and the one filler of
the placeholders their log patterns use.

A profile is a YAML file (profiles/kazoo-4.3.yaml documents the fields), checked by a schema like scenario
files are (errors at file:line:field). The shipped profiles carry the names of the releases
(harness.kazoo.release); a user profile is any file with `name`, `extends` (a shipped profile or a path)
or `release`, and `outcomes`, each outcome replacing the inherited one whole. Every outcome names its
cause (harness.kazoo.causes) — the runner, replay's cause, diagnose and the model's roles all read it here.
An outcome may also name the legs the SBC's own HEP capture must (not) hold (``capture``, docs/hep.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.kazoo.causes import VERDICTS
from harness.kazoo.numbers import InboundConfig
from harness.kazoo.release import DEFAULT_RELEASE, RELEASE_NAMES, KazooRelease, release
from harness.kazoo.roles import OPTIONAL_ROLES, optional_on
from harness.sip.errors import SipParseError
from harness.sip.message import Request
from harness.yaml_schema import (
    ANY,
    BOOL,
    CODE,
    INT,
    STR,
    STR_OR_INT,
    SchemaError,
    Spec,
    check,
    checked,
    compose,
    enum,
    lst,
    m,
)

PROFILE_DIR = Path(__file__).with_name("profiles")
VIAS = ("sbc", "media")

# -- placeholders -------------------------------------------------------------------------------------

# Every {name} a log pattern may use, with what it stands for. Values are regex-escaped when filled.
PLACEHOLDERS: dict[str, str] = {
    "call_id": "the INVITE's Call-ID (FreeSWITCH's channel UUID on Kazoo)",
    "source_ip": "the carrier's source address",
    "source_port": "the carrier's source port",
    "seen_ip": "the address the media role saw: the SBC's own when the call went through it",
    "sbc_ip": "the SBC's address",
    "dialed": "the dialed number as Kazoo reads it from the request (inbound_user_field)",
    "number": "the number stepswitch looks up: `dialed` after inbound normalization (E.164)",
    "to_user": "the To header's user",
    "to_host": "the To header's host",
    "from_user": "the From header's user",
}
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")  # a regex quantifier such as {2,3} never matches


class PlaceholderError(ValueError):
    """A pattern names a placeholder that is not declared, or that has no value here."""


def placeholders_in(pattern: str) -> set[str]:
    return set(_PLACEHOLDER.findall(pattern))


def undeclared(pattern: str) -> set[str]:
    return placeholders_in(pattern) - set(PLACEHOLDERS)


def fill(pattern: str, values: Mapping[str, str | None], *, loose: bool = False) -> str:
    """The pattern with each ``{name}`` replaced by its regex-escaped value. A name without a value is an
    error, or with ``loose`` (replay: the evidence is whatever was captured) matches anything."""

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in PLACEHOLDERS:
            raise PlaceholderError(f"log pattern {pattern!r}: {{{name}}} is not a placeholder "
                                   f"(known: {', '.join(PLACEHOLDERS)})")  # fmt: skip
        value = values.get(name)
        if value is None or (loose and value == ""):
            if loose:
                return ".*?"
            known = ", ".join(sorted(k for k, v in values.items() if v is not None))
            raise PlaceholderError(f"log pattern {pattern!r} uses {{{name}}}, which has no value here "
                                   f"(known: {known})")  # fmt: skip
        return re.escape(value)

    return _PLACEHOLDER.sub(sub, pattern)


def request_values(request: Request, config: InboundConfig | None = None) -> dict[str, str]:
    """The placeholder values a request carries: its Call-ID, To and From users, the number Kazoo reads
    from it and the number stepswitch looks up (``config``: the stack's system_config, its defaults
    when None). A header that does not parse gives no value (the request may be broken on purpose)."""
    config = config or InboundConfig()
    values: dict[str, str] = {}
    readers = {
        "call_id": lambda: request.call_id,
        "to_user": lambda: request.to.uri.user or "",
        "to_host": lambda: request.to.uri.host,
        "from_user": lambda: request.from_.uri.user or "",
        "ruri_user": lambda: request.uri.user or "",
    }
    for name, read in readers.items():
        try:
            values[name] = read()
        except SipParseError:
            continue
    dialed = config.dialed(values.pop("ruri_user", None), values.get("to_user"))
    if dialed is not None:
        values["dialed"] = dialed
        values["number"] = config.destination(dialed) or ""
    return values


# -- the typed profile --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogPattern:
    pattern: str  # a regex, may hold {placeholders}
    source: str | None = None  # a log source name, None = any source
    count: int | None = None  # None = at least once; N = exactly N times

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LogPattern:
        return cls(pattern=str(d["pattern"]), source=d.get("source"), count=d.get("count"))

    def describe(self) -> str:
        src = f"[{self.source}] " if self.source else ""
        cnt = f" (x{self.count})" if self.count is not None else ""
        return f"{src}/{self.pattern}/{cnt}"


# The ends of a captured leg (docs/hep.md): the carrier under test, the target's SBC nodes, its media
# role, anything else
LEG_ROLES = ("carrier", "sbc", "media", "other")


@dataclass(frozen=True)
class LegPattern:
    """A leg of the call the stack's own capture must (``present``) or must not hold; None matches any."""

    src: str | None = None  # one of LEG_ROLES
    dst: str | None = None
    message: str | None = None  # a method ("INVITE"), a status code ("407") or a class ("4xx")
    headers: tuple[tuple[str, str], ...] = ()  # name, regex of the value (may hold {placeholders})
    count: int | None = None  # None = at least once; N = exactly N times
    source: str | None = None  # a HEP log source's name
    capture_id: int | None = None
    present: bool = True

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, present: bool) -> LegPattern:
        message = d.get("message")
        return cls(
            src=d.get("from"),
            dst=d.get("to"),
            message=str(message) if message is not None else None,
            headers=tuple((str(k), str(v)) for k, v in (d.get("headers") or {}).items()),
            count=d.get("count"),
            source=d.get("source"),
            capture_id=d.get("capture_id"),
            present=present,
        )


def leg_patterns(block: Mapping[str, Any] | None) -> tuple[LegPattern, ...]:
    """A ``capture: {present: [...], absent: [...]}`` block (a profile's or a scenario's) as patterns."""
    block = block or {}
    return tuple(
        LegPattern.from_dict(item, present=present)
        for key, present in (("present", True), ("absent", False))
        for item in block.get(key) or ()
    )


@dataclass(frozen=True)
class Outcome:
    """What the stack does with a call, on the wire and in its logs."""

    name: str
    cause: str  # one of harness.kazoo.causes.VERDICTS
    via: str = "sbc"  # the outcome of a call sent through the SBC, or straight to the media role
    final_codes: tuple[int, ...] = ()
    final_reason: str | None = None  # a regex
    provisional: tuple[int, ...] = ()  # codes that must be seen, in this order
    silence: bool = False  # no response at all
    closed: bool = False  # the TCP connection is closed without an answer
    headers: tuple[tuple[str, str], ...] = ()  # name, regex of the value in the final response
    min_delay: float | str | None = None  # seconds, or "route_timeout"
    logs_present: tuple[LogPattern, ...] = ()
    logs_absent: tuple[LogPattern, ...] = ()
    # the legs the SBC's own capture holds (or not): proof only where the capture is complete (docs/hep.md)
    capture: tuple[LegPattern, ...] = ()

    @property
    def key(self) -> str:
        return self.name if self.via == "sbc" else f"{self.name}@{self.via}"

    @property
    def drop_lines(self) -> tuple[LogPattern, ...]:
        """The lines that prove the stack dropped the message (a silence or a closed connection)."""
        return self.logs_present if self.silence or self.closed else ()


@dataclass(frozen=True)
class Profile:
    name: str
    release: KazooRelease  # the release the embedded model imitates for this profile
    outcomes: Mapping[str, Outcome] = field(default_factory=dict)  # by key: NAME or NAME@media
    never: Mapping[str, LogPattern] = field(default_factory=dict)  # `never:` word -> the line showing it
    source: str = ""
    # the optional Kamailio roles the stack runs (harness.kazoo.roles), every one named, off by default
    roles: Mapping[str, bool] = field(default_factory=lambda: optional_on(frozenset()))

    def role_on(self, name: str) -> bool:
        return bool(self.roles.get(name))

    def with_roles(self, on: frozenset[str]) -> Profile:
        """This profile for a stack whose configuration turns the optional roles ``on`` (and no others)."""
        roles = optional_on(on)
        if roles == dict(self.roles):
            return self
        switched = "+".join(sorted(r for r, v in roles.items() if v)) or "no optional roles"
        return replace(self, name=f"{self.name} ({switched})", roles=roles, source=f"{self.source} <- roles")

    def outcome(self, name: str, via: str = "sbc") -> Outcome:
        """The outcome of a call sent through the SBC, or straight to the media role (its @media variant
        when the profile has one)."""
        for key in (f"{name}@{via}", name) if via != "sbc" else (name,):
            if key in self.outcomes:
                return self.outcomes[key]
        known = sorted({o.name for o in self.outcomes.values()})
        raise ProfileError(f"profile {self.name!r} has no outcome {name!r} (known: {', '.join(known)})")

    def names(self) -> list[str]:
        return sorted({o.name for o in self.outcomes.values()})

    def drop_outcomes(self) -> list[Outcome]:
        """The outcomes a drop line proves, through the SBC."""
        return [o for o in self.outcomes.values() if o.via == "sbc" and o.drop_lines]


class ProfileError(ValueError):
    """A profile that cannot be found, read or checked."""


# -- the schema of profile files ----------------------------------------------------------------------


def _pattern_ok(value: Any, _context: Mapping[str, Any]) -> str | None:
    unknown = undeclared(str(value))
    if unknown:
        names = ", ".join("{" + n + "}" for n in sorted(unknown))
        return f"unknown placeholder(s) {names} (known: {', '.join(PLACEHOLDERS)})"
    try:
        re.compile(_PLACEHOLDER.sub("x", str(value)))
    except re.error as exc:
        return f"not a valid regex: {exc}"
    return None


def _outcome_key_ok(value: Any, _context: Mapping[str, Any]) -> str | None:
    for key in value:
        name, _, via = str(key).partition("@")
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or (via and via not in VIAS):
            return f"outcome {key!r}: a name in lower_case, optionally @media"
    return None


def _codes_ok(value: Any, _context: Mapping[str, Any]) -> str | None:
    codes = value if isinstance(value, list) else [value]
    if not codes or not all(
        isinstance(c, int) and not isinstance(c, bool) and 100 <= c <= 699 for c in codes
    ):
        return f"expected a SIP status code (100-699) or a list of them, got {value!r}"
    return None


def _delay_ok(value: Any, _context: Mapping[str, Any]) -> str | None:
    if value == "route_timeout" or (isinstance(value, int | float) and not isinstance(value, bool)):
        return None
    return f"expected seconds or 'route_timeout', got {value!r}"


PATTERN = checked(STR, _pattern_ok)
LOG_PATTERN = m(("pattern", PATTERN, True), ("source", STR, False), ("count", INT, False))


def leg_spec(header_pattern: Spec, source: Spec) -> Spec:
    """The schema of a captured leg (from/to a role, message, headers, count, source, capture_id); the
    scenario schema checks the source against its target's log sources."""
    return m(
        ("from", enum(*LEG_ROLES), False),
        ("to", enum(*LEG_ROLES), False),
        ("message", STR_OR_INT, False),
        ("headers", m(free=header_pattern), False),
        ("count", INT, False),
        ("source", source, False),
        ("capture_id", INT, False),
    )


def capture_spec(leg: Spec) -> Spec:
    return m(("present", lst(leg), False), ("absent", lst(leg), False))


OUTCOME = m(
    ("cause", enum(*VERDICTS), True),
    ("final", m(("code", checked(ANY, _codes_ok), True), ("reason", PATTERN, False)), False),
    ("provisional", lst(CODE), False),
    ("silence", BOOL, False),
    ("closed", BOOL, False),
    ("headers", m(free=PATTERN), False),
    ("min_delay", checked(ANY, _delay_ok), False),
    ("logs", m(("present", lst(LOG_PATTERN), False), ("absent", lst(LOG_PATTERN), False)), False),
    ("capture", capture_spec(leg_spec(PATTERN, STR)), False),
)
PROFILE = m(
    ("name", STR, False),
    ("release", enum(*RELEASE_NAMES), False),
    ("extends", STR, False),
    ("description", STR, False),
    ("outcomes", checked(m(free=OUTCOME), _outcome_key_ok), False),
    ("never", m(free=LOG_PATTERN), False),
    ("roles", m(*((name, BOOL, False) for name in OPTIONAL_ROLES)), False),
)


def _outcome(key: str, spec: Mapping[str, Any]) -> Outcome:
    name, _, via = key.partition("@")
    final = spec.get("final") or {}
    code = final.get("code")
    logs = spec.get("logs") or {}
    return Outcome(
        name=name,
        cause=str(spec["cause"]),
        via=via or "sbc",
        final_codes=tuple(code) if isinstance(code, list) else ((int(code),) if code is not None else ()),
        final_reason=final.get("reason"),
        provisional=tuple(spec.get("provisional") or ()),
        silence=bool(spec.get("silence")),
        closed=bool(spec.get("closed")),
        headers=tuple((str(k), str(v)) for k, v in (spec.get("headers") or {}).items()),
        min_delay=spec.get("min_delay"),
        logs_present=tuple(LogPattern.from_dict(p) for p in logs.get("present") or ()),
        logs_absent=tuple(LogPattern.from_dict(p) for p in logs.get("absent") or ()),
        capture=leg_patterns(spec.get("capture")),
    )


def shipped_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def load_profile(name_or_path: str | Path | None = None, _seen: tuple[str, ...] = ()) -> Profile:
    """A shipped profile by name (default: the default release's), or a user profile file by path."""
    ref = str(name_or_path or DEFAULT_RELEASE.name)
    path = PROFILE_DIR / f"{ref}.yaml" if ref in shipped_profiles() else Path(ref)
    if not path.is_file():
        raise ProfileError(
            f"unknown profile {ref!r}: use one of {', '.join(shipped_profiles())} or a path to a profile file"
        )
    if str(path.resolve()) in _seen:
        raise ProfileError(f"profile {ref!r} extends itself")
    try:
        data = check(compose(path), PROFILE, str(path), "")
    except SchemaError as exc:
        raise ProfileError(str(exc)) from exc
    outcomes: dict[str, Outcome] = {}
    never: dict[str, LogPattern] = {}
    roles = optional_on(frozenset())
    source = str(path)
    release_name = data.get("release")
    if data.get("extends"):
        base = load_profile(str(data["extends"]), (*_seen, str(path.resolve())))
        outcomes.update(base.outcomes)
        never.update(base.never)
        roles.update(base.roles)
        source = f"{base.source} <- {path}"
        release_name = release_name or base.release.name
    if release_name is None:
        raise ProfileError(f"{path}: name the release ({', '.join(RELEASE_NAMES)}) or a profile to extend")
    for key, spec in (data.get("outcomes") or {}).items():
        outcomes[str(key)] = _outcome(str(key), spec)
    never.update({word: LogPattern.from_dict(p) for word, p in (data.get("never") or {}).items()})
    roles.update(data.get("roles") or {})
    return Profile(
        name=str(data.get("name") or path.stem),
        release=release(release_name),
        outcomes=outcomes,
        never=never,
        source=source,
        roles=roles,
    )


def profile_for(release_name: str) -> Profile:
    """The shipped profile of a release."""
    return load_profile(release(release_name).name)
