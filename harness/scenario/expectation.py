"""What a scenario expects: an outcome from the profile, with the scenario's overrides on top."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from harness.kazoo.profile import LegPattern, LogPattern, Outcome, Profile, leg_patterns


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
    # captured legs (docs/hep.md): the scenario's own are checked wherever the target captures; the
    # profile outcome's only where the capture is complete and the call goes through the SBC
    capture: tuple[LegPattern, ...] = ()
    outcome_capture: tuple[LegPattern, ...] = ()
    never: tuple[str, ...] = ()
    timeout: float | None = None
    origin: dict[str, str] = field(default_factory=dict)  # field -> "profile kazoo-4.3" | "scenario"

    @property
    def expects_final(self) -> bool:
        return bool(self.final_codes)

    @property
    def log_sources(self) -> set[str]:
        """Every log source a pattern names."""
        return {p.source for p in (*self.logs_present, *self.logs_absent) if p.source is not None}

    def describe(self) -> str:
        if self.silence:
            return "silence"
        if self.closed:
            return "connection closed"
        codes = "/".join(str(c) for c in self.final_codes) or "?"
        return f"{codes} {self.final_reason or ''}".strip().replace("^", "").replace("$", "")


def _from_outcome(outcome: Outcome, origin: str) -> Expectation:
    fields = {
        "final_codes": outcome.final_codes,
        "final_reason": outcome.final_reason,
        "provisional": outcome.provisional,
        "silence": outcome.silence,
        "closed": outcome.closed,
        "headers": outcome.headers,
        "min_delay": outcome.min_delay,
        "logs_present": outcome.logs_present,
        "logs_absent": outcome.logs_absent,
        "outcome_capture": outcome.capture,
    }
    return Expectation(outcome=outcome.name, origin={k: origin for k in fields}, **fields)  # type: ignore[arg-type]


def _apply(exp: Expectation, spec: dict[str, Any]) -> Expectation:
    """The scenario's own fields on top; its log patterns add to the profile's."""
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
    if "present" in logs:
        changes["logs_present"] = exp.logs_present + tuple(LogPattern.from_dict(p) for p in logs["present"])
    if "absent" in logs:
        changes["logs_absent"] = exp.logs_absent + tuple(LogPattern.from_dict(p) for p in logs["absent"])
    if "ordered" in logs:
        changes["logs_ordered"] = bool(logs["ordered"])
    if "capture" in spec:
        changes["capture"] = leg_patterns(spec["capture"])
    if "never" in spec:
        changes["never"] = tuple(spec["never"])
    if "timeout" in spec:
        changes["timeout"] = float(spec["timeout"])
    origins = dict(exp.origin)
    origins.update({k: "scenario" for k in changes})
    return replace(exp, origin=origins, **changes)


def resolve(expect: dict[str, Any], profile: Profile, via: str) -> Expectation:
    """The profile's outcome (when named) with the scenario's explicit fields on top."""
    base = Expectation()
    if expect.get("outcome"):
        base = _from_outcome(profile.outcome(str(expect["outcome"]), via), f"profile {profile.name}")
    return _apply(base, {k: v for k, v in expect.items() if k != "outcome"})
