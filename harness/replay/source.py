"""What the customer sent us, whatever its form: a pcap/pcapng file, a FreeSWITCH sip-trace log, or one
pasted SIP message (a text file or stdin). Picks the INVITE to replay and the response it got then."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from harness.replay.capture import CapturedMessage, find_invites, read_messages
from harness.replay.siptrace import read_raw, read_siptrace
from harness.sip.errors import SipParseError
from harness.sip.message import Request, Response, parse_message

# pcap (both byte orders, micro- and nanosecond) and pcapng section header magic numbers
_CAPTURE_MAGIC = (
    b"\xd4\xc3\xb2\xa1",
    b"\xa1\xb2\xc3\xd4",
    b"\x4d\x3c\xb2\xa1",
    b"\xa1\xb2\x3c\x4d",
    b"\x0a\x0d\x0d\x0a",
)
_TRACE_BLOCK = re.compile(r"^\s*(?:recv|send) \d+ bytes (?:from|to) \S+/\[", re.M)


class SourceError(ValueError):
    """The source holds no usable INVITE, or several and no Call-ID chooses."""


@dataclass(frozen=True)
class Capture:
    kind: str  # "pcap" | "siptrace" | "raw"
    name: str  # file name, or "-" for stdin
    messages: list[CapturedMessage]


def read_source(name: str, data: bytes) -> Capture:
    """Recognise the form of ``data`` (read from file ``name``) and read its SIP messages."""
    if data[:4] in _CAPTURE_MAGIC:
        return Capture("pcap", name, read_messages(name))
    text = data.decode("utf-8", "surrogateescape")
    if _TRACE_BLOCK.search(text):
        return Capture("siptrace", name, read_siptrace(text))
    if not text.strip():
        raise SourceError(f"{name}: empty")
    return Capture("raw", name, [read_raw(data)])


def load_source(path: str, stdin: bytes | None = None) -> Capture:
    """Read ``path`` (``-`` = ``stdin``)."""
    if path == "-":
        return read_source("-", stdin or b"")
    file = Path(path)
    if not file.is_file():
        raise SourceError(f"no such file: {path}")
    return read_source(path, file.read_bytes())


def _call_id(data: bytes) -> str | None:
    try:
        return parse_message(data).call_id
    except SipParseError:
        return None


def pick_invite(capture: Capture, call_id: str | None = None) -> CapturedMessage:
    """The INVITE to replay: the call's first INVITE (a retry with credentials comes later), of
    ``call_id`` when the capture holds several calls."""
    invites = find_invites(capture.messages, call_id)
    if not invites and capture.kind == "raw":
        raw = capture.messages[0]
        if not raw.data.lstrip().upper().startswith(b"INVITE"):
            raise SourceError(f"{capture.name}: the pasted message is not an INVITE: {raw.first_line!r}")
        return raw  # a malformed INVITE is still what the customer sent
    if not invites:
        which = f" with Call-ID {call_id}" if call_id else ""
        raise SourceError(f"{capture.name}: no INVITE{which} among {len(capture.messages)} SIP messages")
    calls = list(dict.fromkeys(_call_id(m.data) for m in invites))
    if len(calls) > 1:
        listing = "\n".join(
            f"  {cid}  ({inv.first_line})" for cid, inv in zip(calls, _first_per_call(invites), strict=True)
        )
        raise SourceError(f"{capture.name}: {len(calls)} calls; choose one with --call-id:\n{listing}")
    return invites[0]


def _first_per_call(invites: list[CapturedMessage]) -> list[CapturedMessage]:
    seen: dict[str | None, CapturedMessage] = {}
    for m in invites:
        seen.setdefault(_call_id(m.data), m)
    return list(seen.values())


def captured_final(capture: Capture, invite: CapturedMessage) -> Response | None:
    """The final response the captured INVITE got (same Call-ID and CSeq), if the capture holds it."""
    try:
        request = parse_message(invite.data)
        if not isinstance(request, Request):
            return None
        cseq = request.cseq
    except SipParseError:
        return None
    for m in capture.messages:
        try:
            msg = parse_message(m.data)
            if (
                isinstance(msg, Response)
                and msg.code >= 200
                and msg.call_id == request.call_id
                and msg.cseq.number == cseq.number
                and msg.cseq.method == "INVITE"
            ):
                return msg
        except SipParseError:
            continue
    return None


__all__ = ["Capture", "SourceError", "captured_final", "load_source", "pick_invite", "read_source"]
