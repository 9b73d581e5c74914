"""Pre-rendered messages for the load path: a scenario's INVITE built once, per source address, with
slots where each call's Call-ID, branch and From tag go.

The builder (:mod:`harness.sip.builder`) and the mutators (:mod:`harness.sip.mutators`) run once, on
an INVITE whose Call-ID, branch and tag are placeholder tokens of the same width as the real values, so
byte-exact mutators (``pad=N``, ``truncate=N``, ``drop-header=...``) give the same bytes a call would
have had from the scenario UA. The ACK for a non-2xx final and the CANCEL come from the same rules as the
scenario UA's (:func:`harness.sip.transaction.ack_for_non_2xx`, :func:`harness.sip.builder.build_cancel`)
applied to the tokenised INVITE; the ACK's To is a slot filled from each final response.

Filling a template is one ``bytes % dict``: no parsing, no objects per call beyond the bytes sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from harness.sip import builder
from harness.sip.errors import SipParseError
from harness.sip.message import Request, Response, parse_message
from harness.sip.mutators import apply_mutators
from harness.sip.response import make_response
from harness.sip.transaction import ack_for_non_2xx

# Token widths equal the value widths (see LoadIds), and tokens use letters no hex value contains.
CALL_ID_TOKEN = "QCALLIDQQQQQQQQQ"  # 16 hex digits per call
BRANCH_TOKEN = "QBRANCHQQQQQQQQQQQQQQQQQ"  # 24 hex digits per call (after z9hG4bK)
TAG_TOKEN = "QTAGQQQQ"  # 8 hex digits
TO_TOKEN = "QTOVALUEQ"  # the final response's To value (any length)
_SLOTS = {CALL_ID_TOKEN: b"cid", BRANCH_TOKEN: b"br", TAG_TOKEN: b"tag", TO_TOKEN: b"to"}
_TOKEN = re.compile(b"|".join(re.escape(t.encode()) for t in _SLOTS))
BRANCH_PREFIX = builder.BRANCH_COOKIE.encode()


class TemplateError(ValueError):
    """The scenario's message cannot be pre-rendered for load."""


def _format(data: bytes) -> bytes:
    """``data`` as a ``bytes % dict`` format: literal ``%`` escaped, each token a named slot."""
    escaped = data.replace(b"%", b"%%")
    return _TOKEN.sub(lambda m: b"%(" + _SLOTS[m.group(0).decode()] + b")s", escaped)


@dataclass(frozen=True)
class CallTemplates:
    """The formats of one source address's messages. ``ack``/``cancel`` are None when the (mutated)
    INVITE is not a parsable request, ``has_branch`` False when no branch slot survived the mutators
    (responses then cannot be matched to calls)."""

    invite: bytes
    ack: bytes | None
    cancel: bytes | None
    has_branch: bool
    invite_size: int

    def render_invite(self, ids: dict[bytes, bytes]) -> bytes:
        return self.invite % ids


def source_fields(
    fields: dict[str, Any], destination: tuple[str, int], ip: str, *, sip_port: int, rtp_port: int
) -> dict[str, Any]:
    """A plan's InviteSpec fields for one source address: its socket's port, its RTP port (none when the
    scenario sends no SDP), the destination."""
    out = dict(fields)
    out.update(
        target_host=destination[0],
        target_port=destination[1],
        transport="udp",
        local_ip=ip,
        local_port=sip_port,
        rtp_port=rtp_port if fields.get("rtp_port", 0) is not None else None,
    )
    return out


def sample_ids() -> dict[bytes, bytes]:
    """Ids of the width a call's have (harness.load.engine), for rendering one INVITE to look at."""
    return {b"cid": b"0" * len(CALL_ID_TOKEN), b"br": b"0" * len(BRANCH_TOKEN), b"tag": b"0" * len(TAG_TOKEN)}


def build_templates(fields: dict[str, Any], mutators: list[str], seed: int) -> CallTemplates:
    """The templates for an InviteSpec made of ``fields`` (target, local address, users, headers...).

    ``seed`` fixes every generated part that is not a per-call slot (caller name and number, SDP
    session), as the scenario UA's seed does.
    """
    spec = builder.InviteSpec(
        **fields,
        call_id=f"{CALL_ID_TOKEN}@{fields['local_ip']}",
        branch=builder.BRANCH_COOKIE + BRANCH_TOKEN,
        from_tag=TAG_TOKEN,
        seed=seed,
    )
    try:
        built = builder.build_invite(spec)
    except ValueError as exc:
        raise TemplateError(f"the scenario's INVITE cannot be built: {exc}") from exc
    data = built.to_bytes()
    if mutators:
        data = apply_mutators(data, mutators, seed=seed)
    try:
        parsed = parse_message(data)
    except SipParseError:
        parsed = None
    request = parsed if isinstance(parsed, Request) and parsed.method == "INVITE" else None
    ack = cancel = None
    if request is not None:
        response = make_response(request, 604, "Template").replace_header("To", TO_TOKEN)
        assert isinstance(response, Response)
        try:
            ack = _format(ack_for_non_2xx(request, response))
            cancel = _format(builder.build_cancel(request).to_bytes())
        except (ValueError, SipParseError):
            ack = cancel = None
    return CallTemplates(
        invite=_format(data),
        ack=ack,
        cancel=cancel,
        has_branch=BRANCH_TOKEN.encode() in data,
        invite_size=len(data),
    )
