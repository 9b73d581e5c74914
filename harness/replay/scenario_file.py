"""Write a replayed capture as a catalog scenario: the INVITE as a raw template (``send.raw``), the
response the replay observed as the expectation to confirm or edit."""

from __future__ import annotations

import re
from typing import Any

import yaml

from harness.kazoo.causes import CALL_FLOW, Cause
from harness.net.exchange import Exchange
from harness.replay.capture import CapturedMessage
from harness.replay.cause import Diagnosis
from harness.sip.template import PLACEHOLDERS, TemplateError, fill_template, to_template


def scenario_cause(cause: str) -> str:
    """The catalog's `cause` for a replay's verdict: the cause itself, or call_flow when there is none."""
    return cause if cause in {c.value for c in Cause} else CALL_FLOW


class _Literal(str):
    """A string dumped as a YAML literal block (``|``), the readable form of a SIP message."""


def _literal(dumper: yaml.SafeDumper, value: _Literal) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(value), style="|")


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Literal, _literal)


def template_text(data: bytes) -> str:
    """The template in its YAML form: LF line ends when every line end was CRLF (the runner sends them
    as CRLF), else exactly as captured. Raises TemplateError when neither form gives the bytes back."""
    template = to_template(data)
    probe = {name: f"<{name}>" for name in PLACEHOLDERS}
    wanted = fill_template(template, probe, exact=True)
    for form in (template.replace("\r\n", "\n"), template):
        if fill_template(form, probe) == wanted:
            return form
    raise TemplateError(
        "a message with LF-only line ends cannot be a raw template (it would be sent with CRLF)"
    )


def expectation(exchange: Exchange) -> dict[str, Any]:
    if exchange.final is not None:
        final: dict[str, Any] = {"code": exchange.final.code}
        if exchange.final.reason:
            final["reason"] = "^" + re.escape(exchange.final.reason).replace("\\ ", " ") + "$"
        return {"final": final}
    if exchange.outcome == "closed":
        return {"closed": True}
    return {"silence": True}


def scenario_yaml(
    invite: CapturedMessage,
    exchange: Exchange,
    diagnosis: Diagnosis,
    *,
    carrier: dict[str, Any],
    source_name: str,
) -> str:
    """The scenario file text. ``carrier`` is its carrier mapping ({role} or {address}, transport)."""
    raw = template_text(invite.data)
    call_id = exchange.call_id or "the captured call"
    outcome = f" (profile outcome {diagnosis.outcome})" if diagnosis.outcome else ""
    scenario: dict[str, Any] = {
        "name": f"replay of {call_id}",
        "cause": scenario_cause(diagnosis.cause),
        "description": (
            f"Replays the INVITE captured in {source_name} ({invite.first_line}). The replay got "
            f"{_got(exchange)}; cause: {diagnosis.cause}{outcome}. Confirm or edit the expectation."
        ),
        "carrier": carrier,
        "send": {"raw": _Literal(raw) if "\r" not in raw else raw},
        "expect": expectation(exchange),
    }
    head = (
        "# Written by `kazoo-harness replay --to-scenario`. The INVITE is sent as captured except for\n"
        "# the placeholders the runner fills:\n# " + ", ".join(f"{{{p}}}" for p in PLACEHOLDERS) + ".\n"
    )
    body = yaml.dump(scenario, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110)
    if yaml.safe_load(body)["send"]["raw"] != raw:  # the YAML form must give back the very same text
        raise TemplateError("the raw template does not survive YAML; please report this capture")
    return head + body


def _got(exchange: Exchange) -> str:
    if exchange.final is not None:
        return f"{exchange.final.code} {exchange.final.reason}".strip()
    return "no response" if exchange.outcome == "silence" else exchange.outcome


__all__ = ["expectation", "scenario_cause", "scenario_yaml", "template_text"]
