"""Make a captured INVITE sendable again: fresh identifiers, our addresses, the rest left byte for byte.

A replayed INVITE must not collide with the original call (Call-ID, From tag, Via branch) and must be
routed to the harness's target from the harness's own source address (Request-URI host/port, top Via).
Everything else — header order, spelling, spacing, body, Content-Length — is what the customer's
carrier sent, because that is what is under test.
"""

from __future__ import annotations

import ipaddress
import random
import re

from harness.net.exchange import Address
from harness.sip.errors import SipParseError
from harness.sip.headers import split_commas
from harness.sip.message import Request, SipMessage, parse_message

_TAG = re.compile(r"(;[ \t]*tag[ \t]*=[ \t]*)[^;, \t]+", re.I)
_IPV4 = re.compile(r"(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3})(?![\d.])")
_IPV6 = re.compile(r"\[([0-9A-Fa-f:.]+)\]|IN IP6 ([0-9A-Fa-f:.]+)")


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def retarget_uri(uri_text: str, target: Address) -> str:
    """``uri_text`` with its host and port replaced by ``target``; user part, parameters and headers kept."""
    m = re.match(r"(?i)^(sips?:)(.*)$", uri_text)
    if not m:
        raise SipParseError(f"cannot retarget a non-SIP Request-URI {uri_text[:60]!r}")
    body, q, headers = m.group(2).partition("?")
    at = body.rfind("@")
    userinfo, hostpart = body[: at + 1], body[at + 1 :]
    _, semi, params = hostpart.partition(";")
    return m.group(1) + userinfo + _hostport(*target) + semi + params + q + headers


def _new_top_via(msg: SipMessage, via: str) -> SipMessage:
    """Replace the first Via value (which may share its header line with others) by ``via``."""
    first = msg.get("via")
    if first is None:
        return msg.add_header("Via", via, top=True)
    parts = split_commas(first)
    rest = first[len(parts[0]) :] if parts and first.startswith(parts[0]) else ""
    return msg.replace_header("Via", via + rest)


def _retag(from_value: str, tag: str) -> str:
    close = from_value.rfind(">")
    head, tail = from_value[: close + 1], from_value[close + 1 :]
    tail, n = _TAG.subn(lambda m: m.group(1) + tag, tail, count=1)
    return head + (tail if n else tail + f";tag={tag}")


def refresh_invite(
    data: bytes, *, target: Address, local: Address, transport: str = "udp", seed: int | None = None
) -> bytes:
    """A copy of the captured INVITE ``data`` with a new Call-ID, From tag and top-Via branch (drawn from
    ``seed``), the Request-URI pointed at ``target`` and the top Via naming ``local`` over ``transport``."""
    msg = parse_message(data)
    if not isinstance(msg, Request):
        raise SipParseError("not a request: cannot refresh a response")
    rng = random.Random(seed)
    call_id = f"{rng.getrandbits(64):016x}-replay@{local[0]}"
    branch = f"z9hG4bK-replay-{rng.getrandbits(48):012x}"
    tag = f"replay-{rng.getrandbits(32):08x}"
    uri = retarget_uri(msg.uri_text, target)
    out: SipMessage = msg.with_start_line(f"{msg.method} {uri} {msg.sip_version}".encode())
    out = _new_top_via(out, f"SIP/2.0/{transport.upper()} {_hostport(*local)};branch={branch};rport")
    out = out.replace_header("Call-ID", call_id)
    out = out.replace_header("From", _retag(msg.get("from") or f"<sip:replay@{local[0]}>", tag))
    return out.to_bytes()


def non_loopback_addresses(data: bytes) -> list[str]:
    """IP addresses written in the message that are not loopback (Contact, Via, Record-Route, SDP...).

    A captured INVITE carries the customer's addresses; the harness must not send one to a real element,
    which might send there. The replay runner decides whether to rewrite them or refuse.
    """
    text = data.decode("utf-8", "replace")
    found: list[str] = []
    candidates = [m.group(1) for m in _IPV4.finditer(text)]
    candidates += [m.group(1) or m.group(2) for m in _IPV6.finditer(text)]
    for c in candidates:
        try:
            if not ipaddress.ip_address(c).is_loopback and c not in found:
                found.append(c)
        except ValueError:
            continue
    return found


__all__ = ["non_loopback_addresses", "refresh_invite", "retarget_uri"]
