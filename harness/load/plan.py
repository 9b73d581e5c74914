"""A load plan: everything a sender needs to place a scenario's calls at rate, resolved once against the
target and the profile, as JSON (it travels from the harness to Locust's master, and from the master to
every worker inside Locust's own spawn messages, so a remote worker needs no scenario file or target).

``make_plan(case, target, spec)`` starts from the scenario's own plan (harness.scenario.plan: the
expectation, the number roles through the stack's inbound rules, the destination, the builder's fields,
the timeout), then resolves the carrier role to a pool of source addresses and the expectation to the
outcomes a call may have without counting as a failure. It raises :class:`PlanError` for what the load
path cannot do (TCP, credentials, a replayed capture), :class:`PlanSkipped` for a case that does not run
on this target (its releases or targets), and SendRefused (harness.net.gate) where the target's send gate
refuses the run: its shape, or the INVITE a source address would send (rendered here, once per address,
as the engine will: the engine then writes straight to its sockets).
"""

from __future__ import annotations

import ipaddress
import json
import random
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.kazoo.profile import ProfileError
from harness.load.spec import LoadSpec
from harness.load.template import build_templates, sample_ids, source_fields
from harness.net.gate import Outgoing
from harness.scenario.case import ScenarioCase
from harness.scenario.expectation import Expectation, resolve
from harness.scenario.plan import Plan, plan
from harness.scenario.plan import PlanError as ScenarioPlanError
from harness.scenario.runner import inbound_config
from harness.targets.target import Target

SILENCE = "silence"
NO_FINAL = "no final"


class PlanError(ValueError):
    """The scenario cannot be run at rate (the message says why and what to do instead)."""


class PlanSkipped(PlanError):
    """The case does not run on this target (it names other releases or target kinds)."""


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


def source_pool(planned: Plan, spec: LoadSpec) -> list[str]:
    """The local addresses that play the carrier role: the role's own, then the next ones up."""
    if spec.source_addresses:
        return list(spec.source_addresses)
    ip = planned.source[0]
    base = ipaddress.IPv4Address(ip)
    pool = [str(base + i) for i in range(spec.sources)]
    if base.is_loopback and not ipaddress.IPv4Address(pool[-1]).is_loopback:
        raise PlanError(f"a pool of {spec.sources} addresses from {ip} leaves 127.0.0.0/8")
    return pool


def invite_fields(planned: Plan) -> dict[str, Any]:
    """The InviteSpec fields of the plan (users, hosts, headers) as JSON: the seed travels on its own."""
    fields: dict[str, Any] = {k: v for k, v in planned.fields.items() if k != "seed"}
    fields["extra_headers"] = [[str(k), str(v)] for k, v in fields.get("extra_headers") or ()]
    fields["remove_headers"] = [str(h) for h in fields.get("remove_headers") or ()]
    if "codecs" in fields:
        fields["codecs"] = list(fields["codecs"])
    return fields


def _unsupported(planned: Plan) -> str | None:
    if planned.method != "INVITE":
        return f"load runs place INVITEs; this scenario sends {planned.method}"
    if planned.transport != "udp":
        return "the load path speaks UDP only (TCP/TLS at rate is not built yet)"
    if planned.raw is not None:
        return "a replayed capture (send.raw) cannot be pre-rendered for load"
    if planned.credentials is not None:
        return "digest credentials are not answered at rate (the first 401/407 is the outcome)"
    if planned.cancel_after_provisional:
        return "cancel_after_provisional is not supported at rate"
    return None


def admit(target: Target, planned: Plan, spec: LoadSpec, sources: list[str], timeout: float) -> None:
    """The target's gate on this run (SendRefused): its shape, and each source address's INVITE as the
    engine will render it (ids and ports are the only bytes that differ between its calls)."""
    fields = invite_fields(planned)
    invites = []
    for ip in sources:
        templates = build_templates(
            source_fields(fields, planned.destination, ip, sip_port=5060, rtp_port=40000),
            list(planned.mutators),
            planned.seed,
        )
        data = templates.render_invite(sample_ids())
        invites.append(Outgoing(planned.destination, data, "udp", mutated=bool(planned.mutators)))
    schedule = spec.schedule
    target.gate.admit_load(invites, peak_rate=schedule.peak_rate, lasts=schedule.span + timeout)


def make_plan(
    case: ScenarioCase,
    target: Target,
    spec: LoadSpec,
    *,
    senders: int,
    session_seed: int = 0,
    web: bool = False,
) -> LoadPlan:
    try:
        planned = plan(case, target, inbound_config(target), session_seed=session_seed)
    except (ScenarioPlanError, ProfileError) as exc:
        raise PlanError(f"{case.path}:{case.line}: {case.name}: {exc}") from exc
    if planned.skip is not None:
        raise PlanSkipped(planned.skip)
    reason = _unsupported(planned)
    if reason:
        raise PlanError(f"{case.path}:{case.line}: {case.name}: {reason}")
    destination, seed, expectation = planned.destination, planned.seed, planned.expectation
    timeout = spec.timeout if spec.timeout is not None else planned.timeout
    sources = source_pool(planned, spec)
    admit(target, planned, spec, sources, timeout)
    accepted = [matcher_for(expectation.outcome or "expected", expectation)]
    accepted += [outcome_matcher(name, case, target) for name in spec.thresholds.outcomes]
    schedule = spec.schedule
    senders = max(1, senders)
    per_sender = max(1, -(-spec.concurrency // senders))
    return LoadPlan(
        scenario=case.test_id,
        destination=(destination[0], int(destination[1])),
        sources=sources,
        invite_fields=invite_fields(planned),
        mutators=list(planned.mutators),
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
