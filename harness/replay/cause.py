"""Name the cause of a replayed call's failure from what came back and what the stack logged.

The knowledge is the expectation profile (harness/kazoo/profiles/kazoo-4.3.yaml): every outcome there
says what it looks like on the wire and in the logs. The exchange is matched against each outcome; the
best match (log evidence beats the wire alone) names the outcome, and the outcome names the cause.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from harness.kazoo.numbers import is_reconcilable
from harness.kazoo.profiles import Profile, load_profile
from harness.logs.line import LogLine
from harness.net.exchange import Exchange
from harness.sip.errors import SipParseError
from harness.sip.message import Request

CAUSES = ("acl", "number_format", "number_mapping", "malformed_invite", "none", "unknown")

# Profile outcome (without its @media suffix) -> cause. An outcome missing here is "unknown".
OUTCOME_CAUSE: dict[str, str] = {
    "acl_rejected": "acl",
    "auth_failed": "acl",
    "not_reconcilable": "number_format",
    "unknown_number": "number_mapping",
    "no_callflow": "number_mapping",
    "dropped_insane": "malformed_invite",
    "dropped_no_via": "malformed_invite",
    "dropped_garbage": "malformed_invite",
    "dropped_second_to": "malformed_invite",
    "dropped_scanner": "malformed_invite",
    "too_many_hops": "malformed_invite",
    "preloaded_route": "malformed_invite",
    "unsupported_extension": "malformed_invite",
    "codec_rejected": "malformed_invite",
    "bad_request": "malformed_invite",
    "bad_version": "malformed_invite",
    "unknown_scheme": "malformed_invite",
    "too_large": "malformed_invite",
    "connection_closed": "malformed_invite",
    "buffer_overrun": "malformed_invite",
    "routed": "none",
    "busy": "none",
    "ringing_forever": "none",
    "options_ok": "none",
}

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


@dataclass(frozen=True)
class Diagnosis:
    cause: str  # one of CAUSES
    outcome: str | None  # the profile outcome that matched best, e.g. "acl_rejected"
    evidence: tuple[str, ...] = ()  # the log lines that proved it


def loose_pattern(pattern: str, values: Mapping[str, str | None]) -> str:
    """Fill ``{name}`` placeholders with regex-escaped values; an unknown one matches anything."""

    def sub(m: re.Match[str]) -> str:
        value = values.get(m.group(1))
        return re.escape(value) if value else ".*?"

    return _PLACEHOLDER.sub(sub, pattern)


def exchange_values(exchange: Exchange) -> dict[str, str | None]:
    """Placeholder values the exchange itself provides (what the profile's log patterns name)."""
    values: dict[str, str | None] = {
        "call_id": exchange.call_id,
        "source_ip": exchange.local[0],
        "source_port": str(exchange.local[1]),
        "number": exchange.dialed,
        "dialed": exchange.dialed,
    }
    first = exchange.sent[0].parsed() if exchange.sent else None
    if isinstance(first, Request):
        try:
            values["to_user"] = first.to.uri.user
            values["to_host"] = first.to.uri.host
            values["dialed"] = first.uri.user or exchange.dialed
        except SipParseError:  # a broken To or R-URI is evidence of its own, not a reason to stop
            pass
    return values


def _wire_matches(spec: Mapping[str, Any], exchange: Exchange) -> bool:
    if spec.get("silence"):
        return exchange.outcome == "silence"
    if spec.get("closed"):
        return exchange.outcome == "closed"
    final = spec.get("final")
    if final is None:
        return False
    codes = final["code"] if isinstance(final["code"], list) else [final["code"]]
    if exchange.final is None or exchange.final.code not in codes:
        return False
    reason = final.get("reason")
    return reason is None or re.search(str(reason), exchange.final.reason) is not None


def _log_evidence(
    spec: Mapping[str, Any], lines: list[LogLine], values: Mapping[str, str | None]
) -> list[str]:
    """The lines proving every "present" pattern of the outcome, or [] when one is missing."""
    proof: list[str] = []
    for p in (spec.get("logs") or {}).get("present") or []:
        regex = re.compile(loose_pattern(str(p["pattern"]), values))
        hit = next(
            (
                ln
                for ln in lines
                if (not p.get("source") or ln.source == p["source"]) and regex.search(ln.raw)
            ),
            None,
        )
        if hit is None:
            return []
        proof.append(str(hit))
    return proof


def _refine(outcome: str, exchange: Exchange, values: Mapping[str, str | None]) -> str:
    """A 604 for a number that cannot be normalized is a format problem, not a mapping one."""
    cause = OUTCOME_CAUSE.get(outcome, "unknown")
    dialed = values.get("dialed")
    if cause == "number_mapping" and outcome == "unknown_number" and dialed and not is_reconcilable(dialed):
        return "number_format"
    return cause


def diagnose_exchange(
    exchange: Exchange, log_lines: Iterable[LogLine], profile: Profile | None = None
) -> Diagnosis:
    """The best-matching profile outcome for ``exchange`` and the cause it names."""
    profile = profile or load_profile()
    lines = list(log_lines)
    values = exchange_values(exchange)
    best: tuple[int, str, list[str]] | None = None
    for name, spec in profile.outcomes.items():
        if not _wire_matches(spec, exchange):
            continue
        wanted = (spec.get("logs") or {}).get("present") or []
        proof = _log_evidence(spec, lines, values) if wanted else []
        if wanted and not proof and lines:
            continue  # the logs are there and do not show this outcome's lines
        # log evidence first, then the more specific wire description (a reason, headers)
        score = 10 * len(proof) + len(spec.get("final") or {}) + len(spec.get("headers") or {})
        if name.endswith("@media"):
            score -= 1  # the replay goes to the SBC unless told otherwise
        if best is None or score > best[0]:
            best = (score, name, proof)
    if best is None:
        return Diagnosis("unknown", None)
    outcome = best[1].split("@")[0]
    return Diagnosis(_refine(outcome, exchange, values), outcome, tuple(best[2]))


def classify_exchange(exchange: Exchange, log_lines: Iterable[LogLine]) -> str:
    """acl | number_format | number_mapping | malformed_invite | none | unknown (kazoo-4.3 profile)."""
    return diagnose_exchange(exchange, log_lines).cause


__all__ = ["CAUSES", "OUTCOME_CAUSE", "Diagnosis", "classify_exchange", "diagnose_exchange", "loose_pattern"]
