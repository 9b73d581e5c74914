"""Name the cause of a replayed call's failure from what came back and what the stack logged.

The knowledge is the expectation profile (harness.kazoo.profile): every outcome says what it looks like
on the wire and in the logs, and which cause it proves. The exchange is matched against each outcome;
the best match (log evidence beats the wire alone) names the outcome, and the outcome names the cause.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from harness.kazoo.causes import UNKNOWN, Cause
from harness.kazoo.numbers import is_reconcilable
from harness.kazoo.profile import Outcome, Profile, fill, load_profile, request_values
from harness.logs.correlate import correlate
from harness.logs.line import LogLine
from harness.net.exchange import Exchange
from harness.sip.errors import SipParseError
from harness.sip.message import Request


@dataclass(frozen=True)
class Diagnosis:
    cause: str  # one of harness.kazoo.causes.VERDICTS
    outcome: str | None  # the profile outcome that matched best, e.g. "acl_rejected"
    evidence: tuple[str, ...] = ()  # the log lines that proved it


def exchange_values(exchange: Exchange) -> dict[str, str | None]:
    """Placeholder values the exchange provides (what the profile's log patterns name)."""
    values: dict[str, str | None] = {
        "call_id": exchange.call_id,
        "source_ip": exchange.local[0],
        "source_port": str(exchange.local[1]),
        "dialed": exchange.dialed,
        "number": exchange.dialed,
    }
    first = exchange.sent[0].parsed() if exchange.sent else None
    if isinstance(first, Request):
        try:
            values.update(request_values(first))
        except SipParseError:  # a broken header is evidence of its own, not a reason to stop
            pass
    return values


def _wire_matches(outcome: Outcome, exchange: Exchange) -> bool:
    if outcome.silence:
        return exchange.outcome == "silence"
    if outcome.closed:
        return exchange.outcome == "closed"
    if not outcome.final_codes or exchange.final is None or exchange.final.code not in outcome.final_codes:
        return False
    return outcome.final_reason is None or re.search(outcome.final_reason, exchange.final.reason) is not None


def _log_evidence(outcome: Outcome, lines: list[LogLine], values: Mapping[str, str | None]) -> list[str]:
    """The lines proving every "present" pattern of the outcome, or [] when one is missing."""
    proof: list[str] = []
    for p in outcome.logs_present:
        regex = re.compile(fill(p.pattern, values, loose=True))
        hit = next(
            (ln for ln in lines if (not p.source or ln.source == p.source) and regex.search(ln.raw)), None
        )
        if hit is None:
            return []
        proof.append(str(hit))
    return proof


def _refine(outcome: Outcome, values: Mapping[str, str | None]) -> str:
    """A number lookup failure for a number that cannot be normalized is a format problem."""
    dialed = values.get("dialed")
    mapping = outcome.cause == Cause.NUMBER_MAPPING and outcome.name == "unknown_number"
    if mapping and dialed and not is_reconcilable(dialed):
        return Cause.NUMBER_FORMAT
    return outcome.cause


def diagnose_exchange(
    exchange: Exchange, log_lines: Iterable[LogLine], profile: Profile | None = None
) -> Diagnosis:
    """The best-matching profile outcome for ``exchange`` and the cause it names."""
    profile = profile or load_profile()
    lines = list(log_lines)
    values = exchange_values(exchange)
    best: tuple[int, Outcome, list[str]] | None = None
    for outcome in profile.outcomes.values():
        if not _wire_matches(outcome, exchange):
            continue
        proof = _log_evidence(outcome, lines, values) if outcome.logs_present else []
        if outcome.logs_present and not proof and lines:
            continue  # the logs are there and do not show this outcome's lines
        # log evidence first, then the more specific wire description (a reason, headers)
        score = (
            10 * len(proof) + bool(outcome.final_codes) + bool(outcome.final_reason) + len(outcome.headers)
        )
        if outcome.via != "sbc":
            score -= 1  # the replay goes to the SBC unless told otherwise
        if best is None or score > best[0]:
            best = (score, outcome, proof)
    if best is None:
        return Diagnosis(UNKNOWN, None)
    _, outcome, proof = best
    return Diagnosis(_refine(outcome, values), outcome.name, tuple(proof))


def diagnose_call(exchange: Exchange, lines: list[LogLine], profile: Profile | None = None) -> Diagnosis:
    """The cause of ``exchange`` from the lines the stack logged around it: the lines tied to the call
    first; when they prove nothing, every line (Kamailio logs some drops before it knows the Call-ID,
    "no via found")."""
    related = correlate(lines, exchange).related if lines else []
    diagnosis = diagnose_exchange(exchange, related, profile)
    if lines and not diagnosis.evidence:
        wider = diagnose_exchange(exchange, lines, profile)
        if wider.evidence or diagnosis.cause == UNKNOWN:
            diagnosis = wider
    return diagnosis
