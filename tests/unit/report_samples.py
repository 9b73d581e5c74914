"""Sample SIP messages and exchange records shared by the report and replay tests."""

from __future__ import annotations

from harness.net.exchange import Address, Exchange, WireEvent
from harness.sip.message import Response, parse_message

CARRIER: Address = ("127.0.0.10", 5060)
TARGET: Address = ("127.0.0.2", 5060)
WALL0 = 1_764_130_000.0


def invite(
    call_id: str = "abc123@127.0.0.10",
    *,
    transport: str = "UDP",
    body_size: int = 0,
    src: Address = CARRIER,
    dst: Address = TARGET,
) -> bytes:
    sdp = (
        b"v=0\r\no=carrier 1 1 IN IP4 127.0.0.10\r\ns=-\r\nc=IN IP4 127.0.0.10\r\nt=0 0\r\n"
        b"m=audio 40000 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\n"
    )
    sdp += b"".join(b"a=x-pad:%05d\r\n" % i for i in range(body_size // 16))
    head = (
        f"INVITE sip:+14155550100@{dst[0]}:{dst[1]} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} {src[0]}:{src[1]};branch=z9hG4bK-orig-1;rport\r\n"
        "Max-Forwards: 70\r\n"
        f'From: "Carrier" <sip:+12125550123@{src[0]}>;tag=orig-tag\r\n'
        f"To: <sip:+14155550100@{dst[0]}>\r\n"
        f"Call-ID: {call_id}\r\n"
        "CSeq: 1 INVITE\r\n"
        f"Contact: <sip:+12125550123@{src[0]}:{src[1]}>\r\n"
        "X-Custom:   odd   spacing  \r\n"
        "Content-Type: application/sdp\r\n"
        f"Content-Length: {len(sdp)}\r\n\r\n"
    )
    return head.encode() + sdp


def response(request: bytes, code: int, reason: str, *, to_tag: str | None = "tgt-1") -> bytes:
    req = parse_message(request)
    lines = [f"SIP/2.0 {code} {reason}"]
    lines += [f"Via: {v}" for v in req.values("via")]
    lines.append(f"From: {req.get('from')}")
    to = req.get("to") or ""
    lines.append(f"To: {to};tag={to_tag}" if to_tag and code > 100 else f"To: {to}")
    lines += [f"Call-ID: {req.get('call-id')}", f"CSeq: {req.get('cseq')}", "Content-Length: 0"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def ack(request: bytes) -> bytes:
    req = parse_message(request)
    text = (
        f"ACK {getattr(req, 'uri_text', '')} SIP/2.0\r\n"
        f"Via: {req.get('via')}\r\nMax-Forwards: 70\r\nFrom: {req.get('from')}\r\n"
        f"To: {req.get('to')};tag=tgt-1\r\nCall-ID: {req.get('call-id')}\r\n"
        "CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
    )
    return text.encode()


def event(
    direction: str,
    t: float,
    data: bytes,
    transport: str = "udp",
    *,
    src: Address = CARRIER,
    dst: Address = TARGET,
) -> WireEvent:
    if direction == "received":
        src, dst = dst, src
    return WireEvent(direction, t, WALL0 + t, src, dst, transport, data)  # type: ignore[arg-type]


def rejected_exchange(
    transport: str = "udp",
    *,
    call_id: str = "abc123@127.0.0.10",
    local: Address = CARRIER,
    remote: Address = TARGET,
    body_size: int = 0,
) -> Exchange:
    """INVITE -> 100 -> 404 -> ACK."""
    inv = invite(call_id, transport=transport.upper(), body_size=body_size, src=local, dst=remote)
    trying, final = response(inv, 100, "Trying"), response(inv, 404, "Not Found")
    x = Exchange(call_id, "INVITE", transport, local, remote, WALL0)
    x.events = [
        event("sent", 0.0, inv, transport, src=local, dst=remote),
        event("received", 0.0012, trying, transport, src=local, dst=remote),
        event("received", 0.0123, final, transport, src=local, dst=remote),
        event("sent", 0.0125, ack(inv), transport, src=local, dst=remote),
    ]
    parsed = parse_message(final)
    assert isinstance(parsed, Response)
    x.final, x.outcome, x.duration = parsed, "response", 0.0125
    p = parse_message(trying)
    assert isinstance(p, Response)
    x.provisional = [p]
    return x


def silent_exchange() -> Exchange:
    """An INVITE and its retransmissions, never answered."""
    inv = invite("silent-1@127.0.0.10")
    x = Exchange("silent-1@127.0.0.10", "INVITE", "udp", CARRIER, TARGET, WALL0)
    x.events = [event("sent", t, inv) for t in (0.0, 0.5, 1.5)]
    x.outcome, x.duration = "silence", 4.0
    x.notes.append("no line for this Call-ID in kamailio.log <&>")
    return x
