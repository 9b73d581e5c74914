"""A load plan: everything a sender needs to place a scenario's calls at rate, resolved once against the
target and the profile, as JSON (it travels from the harness to Locust's master, and from the master to
every worker inside Locust's own spawn messages, so a remote worker needs no scenario file or target).

``make_plan(case, target, spec)`` resolves the carrier role to a pool of source addresses, the number
roles to users, the scenario's expectation to the outcomes a call may have without counting as a
failure, and the per-call timeout; it raises :class:`PlanError` for what the load path cannot do (TCP,
credentials, a replayed capture) and :class:`~harness.load.safety.LoadRefused` where the target forbids
the load.
"""

from __future__ import annotations

import ipaddress
import json
import random
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.load.safety import check_load
from harness.load.spec import LoadSpec
from harness.scenario.case import ScenarioCase
from harness.scenario.expectation import Expectation, resolve
from harness.scenario.runner import _resolve_user, case_seed
from harness.scenario.target import Target

SILENCE = "silence"
NO_FINAL = "no final"


class PlanError(ValueError):
    """The scenario cannot be run at rate (the message says why and what to do instead)."""


@dataclass(frozen=True)
class Matcher:
    """Which call outcomes an expectation covers: final codes (and a reason regex), or outcomes named
    exactly (`silence`: no response at all; `no final`: provisional responses only)."""

    label: str  # what the verdict calls it: the outcome name, or the code as written
    codes: tuple[int, ...] = ()
    reason: str | None = None
    names: tuple[str, ...] = ()

    def matches(self, name: str) -> bool:
        """``name`` is a call's outcome as reported: "604 Nope Nope Nope", "silence", "no final"."""
        if self.names:
            return name in self.names
        code, _, reason = name.partition(" ")
        if not code.isdigit() or int(code) not in self.codes:
            return False
        return self.reason is None or re.search(self.reason, reason) is not None

    def describe(self) -> str:
        if self.names:
            return " or ".join(self.names)
        codes = "/".join(str(c) for c in self.codes)
        return f"{codes} /{self.reason}/" if self.reason else codes


def matcher_for(label: str, expectation: Expectation) -> Matcher:
    if expectation.silence or expectation.closed:
        return Matcher(label, names=(SILENCE,))
    return Matcher(label, expectation.final_codes, expectation.final_reason)


def outcome_matcher(name: str, case: ScenarioCase, target: Target) -> Matcher:
    """A threshold's outcome: `silence`, `no final`, a status code (`604`), or a profile outcome."""
    if name in (SILENCE, NO_FINAL):
        return Matcher(name, names=(name,))
    if name.isdigit():
        return Matcher(name, (int(name),))
    from harness.kazoo.profiles import ProfileError

    try:
        return matcher_for(name, resolve({"outcome": name}, target.profile, case.via))
    except ProfileError as exc:
        raise PlanError(f"load.expect.outcomes: {exc}") from exc


@dataclass
class LoadPlan:
    scenario: str
    destination: tuple[str, int]
    sources: list[str]
    invite_fields: dict[str, Any]
    mutators: list[str]
    seed: int
    schedule: dict[str, Any]
    senders: int
    concurrency: int  # per sender
    t1: float
    timeout: float
    run_id: int
    accepted: list[dict[str, Any]]  # Matcher fields: outcomes that are not failures
    expected: str  # the scenario's expectation in words, for failure messages
    web: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> LoadPlan:
        data = json.loads(text)
        data["destination"] = tuple(data["destination"])
        return cls(**data)

    def matchers(self) -> list[Matcher]:
        return [
            Matcher(**{**m, "codes": tuple(m["codes"]), "names": tuple(m["names"])}) for m in self.accepted
        ]


def source_pool(case: ScenarioCase, target: Target, spec: LoadSpec) -> list[str]:
    """The local addresses that play the carrier role: the role's own, then the next ones up."""
    if spec.source_addresses:
        return list(spec.source_addresses)
    carrier = case.carrier
    ip, _ = target.carrier(carrier.get("role"), carrier.get("address"), carrier.get("port"))
    base = ipaddress.IPv4Address(ip)
    pool = [str(base + i) for i in range(spec.sources)]
    if base.is_loopback and not ipaddress.IPv4Address(pool[-1]).is_loopback:
        raise PlanError(f"a pool of {spec.sources} addresses from {ip} leaves 127.0.0.0/8")
    return pool


def invite_fields(case: ScenarioCase, target: Target, seed: int) -> dict[str, Any]:
    """The InviteSpec fields of the case, as the scenario runner resolves them (users, hosts, headers)."""
    send = case.send
    fmt = str(send.get("format", "e164"))
    number = _resolve_user(target, str(send.get("number", "routed")), fmt) or ""
    ruri_user = _resolve_user(target, send.get("ruri_user"), fmt) or number
    to_user = _resolve_user(target, send.get("to_user"), fmt) or ruri_user
    fields: dict[str, Any] = {"ruri_user": ruri_user, "to_user": to_user}
    for key in ("ruri_host", "to_host", "from_display"):
        if key in send:
            fields[key] = str(send[key])
    if "from_user" in send:
        fields["from_user"] = _resolve_user(target, str(send["from_user"]), "e164")
    if send.get("sdp") is False:
        fields["rtp_port"] = None
    if "codecs" in send:
        fields["codecs"] = list(send["codecs"])
    fields["extra_headers"] = [[str(k), str(v)] for k, v in (send.get("headers") or {}).items()]
    fields["remove_headers"] = [str(h) for h in send.get("remove_headers") or []]
    return fields


def _unsupported(case: ScenarioCase) -> str | None:
    send, carrier = case.send, case.carrier
    if case.method != "INVITE":
        return f"load runs place INVITEs; this scenario sends {case.method}"
    if str(carrier.get("transport", "udp")) != "udp":
        return "the load path speaks UDP only (TCP/TLS at rate is not built yet)"
    if "raw" in send:
        return "a replayed capture (send.raw) cannot be pre-rendered for load"
    if send.get("credentials"):
        return "digest credentials are not answered at rate (the first 401/407 is the outcome)"
    if send.get("cancel_after_provisional"):
        return "cancel_after_provisional is not supported at rate"
    return None


def make_plan(
    case: ScenarioCase,
    target: Target,
    spec: LoadSpec,
    *,
    senders: int,
    session_seed: int = 0,
    web: bool = False,
) -> LoadPlan:
    reason = _unsupported(case)
    if reason:
        raise PlanError(f"{case.path}:{case.line}: {case.name}: {reason}")
    destination = target.media if case.via == "media" else target.sbc
    if destination is None:
        raise PlanError(f"target {target.name!r} does not expose its media role for direct INVITEs")
    seed = case_seed(case, session_seed)
    expectation = resolve(case.expect, target.profile, case.via)
    if expectation.silence or expectation.closed:
        timeout = target.silence_window
    else:
        timeout = expectation.timeout if expectation.timeout is not None else target.route_timeout + 3.0
    timeout = spec.timeout if spec.timeout is not None else timeout
    check_load(target, spec, destination, timeout)
    accepted = [matcher_for(expectation.outcome or "expected", expectation)]
    accepted += [outcome_matcher(name, case, target) for name in spec.thresholds.outcomes]
    schedule = spec.schedule
    senders = max(1, senders)
    per_sender = max(1, -(-spec.concurrency // senders))
    return LoadPlan(
        scenario=case.test_id,
        destination=(destination[0], int(destination[1])),
        sources=source_pool(case, target, spec),
        invite_fields=invite_fields(case, target, seed),
        mutators=[str(m) for m in case.send.get("mutators") or []],
        seed=seed,
        schedule={
            "shape": schedule.shape,
            "rate": schedule.rate,
            "start_rate": schedule.start_rate,
            "duration": schedule.duration,
            "calls": schedule.calls,
            "within": schedule.within,
        },
        senders=senders,
        concurrency=per_sender,
        t1=0.5,
        timeout=timeout,
        run_id=random.Random(f"{seed}:{case.test_id}:run").randrange(1 << 24) ^ (random.getrandbits(24)),
        accepted=[asdict(m) for m in accepted],
        expected=expectation.describe(),
        web=web,
    )
