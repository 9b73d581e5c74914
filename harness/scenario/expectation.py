"""What a scenario expects: an outcome from the profile, with the scenario's overrides on top."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from harness.kazoo.profiles import Profile


@dataclass(frozen=True)
class LogPattern:
    pattern: str
    source: str | None = None
    count: int | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LogPattern:
        return cls(pattern=str(d["pattern"]), source=d.get("source"), count=d.get("count"))

    def describe(self) -> str:
        src = f"[{self.source}] " if self.source else ""
        cnt = f" (x{self.count})" if self.count is not None else ""
        return f"{src}/{self.pattern}/{cnt}"


@dataclass(frozen=True)
class Expectation:
    outcome: str | None = None
    final_codes: tuple[int, ...] = ()
    final_reason: str | None = None  # regex
    provisional: tuple[int, ...] = ()
    silence: bool = False
    closed: bool = False
    headers: tuple[tuple[str, str], ...] = ()
    absent_headers: tuple[str, ...] = ()
    min_delay: float | str | None = None  # seconds, or "route_timeout"
    logs_present: tuple[LogPattern, ...] = ()
    logs_absent: tuple[LogPattern, ...] = ()
    logs_ordered: bool = False
    never: tuple[str, ...] = ()
    timeout: float | None = None
    origin: dict[str, str] = field(default_factory=dict)  # field -> "profile kazoo-4.3" | "scenario"

    @property
    def expects_final(self) -> bool:
        return bool(self.final_codes)

    def describe(self) -> str:
        if self.silence:
            return "silence"
        if self.closed:
            return "connection closed"
        codes = "/".join(str(c) for c in self.final_codes) or "?"
        return f"{codes} {self.final_reason or ''}".strip().replace("^", "").replace("$", "")


def _apply(exp: Expectation, spec: dict[str, Any], origin: str, *, extend_logs: bool = False) -> Expectation:
    changes: dict[str, Any] = {}
    if "final" in spec:
        code = spec["final"]["code"]
        changes["final_codes"] = tuple(code) if isinstance(code, list) else (int(code),)
        changes["final_reason"] = spec["final"].get("reason")
        changes["silence"] = False
        changes["closed"] = False
    if "provisional" in spec:
        changes["provisional"] = tuple(int(c) for c in spec["provisional"])
    for flag in ("silence", "closed"):
        if spec.get(flag):
            changes[flag] = True
            changes["final_codes"] = ()
            changes["final_reason"] = None
    if "headers" in spec:
        changes["headers"] = tuple((str(k), str(v)) for k, v in spec["headers"].items())
    if "absent_headers" in spec:
        changes["absent_headers"] = tuple(spec["absent_headers"])
    if "min_delay" in spec:
        changes["min_delay"] = spec["min_delay"]
    logs = spec.get("logs") or {}
    # a scenario's log patterns add to the profile's; a profile's replace what it inherits
    if "present" in logs:
        base = exp.logs_present if extend_logs else ()
        changes["logs_present"] = base + tuple(LogPattern.from_dict(p) for p in logs["present"])
    if "absent" in logs:
        base_absent = exp.logs_absent if extend_logs else ()
        changes["logs_absent"] = base_absent + tuple(LogPattern.from_dict(p) for p in logs["absent"])
    if "ordered" in logs:
        changes["logs_ordered"] = bool(logs["ordered"])
    if "never" in spec:
        changes["never"] = tuple(spec["never"])
    if "timeout" in spec:
        changes["timeout"] = float(spec["timeout"])
    origins = dict(exp.origin)
    origins.update({k: origin for k in changes})
    return replace(exp, origin=origins, **changes)


def resolve(expect: dict[str, Any], profile: Profile, via: str) -> Expectation:
    """The profile's outcome (when named) with the scenario's explicit fields on top."""
    exp = Expectation(outcome=expect.get("outcome"))
    if expect.get("outcome"):
        exp = _apply(exp, profile.outcome(str(expect["outcome"]), via), f"profile {profile.name}")
    return _apply(exp, {k: v for k, v in expect.items() if k != "outcome"}, "scenario", extend_logs=True)
