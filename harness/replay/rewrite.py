"""Find and rewrite the addresses a SIP element would send to: Via, Contact, Record-Route, Route, SDP.

A customer's INVITE names the customer's hosts. Replayed as is at a real Kamailio or FreeSWITCH, a
response, a BYE or RTP could go there. The harness refuses such an INVITE unless asked to rewrite
those addresses to the local carrier address; other headers (From, To, User-Agent...) are not
destinations and stay untouched.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from harness.replay.refresh import non_loopback_addresses
from harness.sip.errors import SipParseError
from harness.sip.headers import parse_name_addr, parse_via, split_commas
from harness.sip.message import Header, SipMessage, decode, encode, parse_message

ROUTING_HEADERS = ("via", "contact", "record-route", "route")
_SDP_ADDRESS = re.compile(r"^((?:c|o|a=rtcp)[=:].*?IN IP)([46]) (\S+)", re.M)
_IP_LITERAL = re.compile(r"\[[0-9A-Fa-f:.]+\]|(?<![\w.-])\d{1,3}(?:\.\d{1,3}){3}(?![\w-]|\.\d)")


@dataclass(frozen=True)
class Foreign:
    where: str  # "Via", "Contact", "SDP", ...
    host: str  # as written (an IPv6 literal with its brackets)

    def __str__(self) -> str:
        return f"{self.where} {self.host}"


def is_local(host: str) -> bool:
    """A loopback address (or ``localhost``): the only place the harness lets messages point to."""
    bare = host.strip("[]")
    if bare.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(bare).is_loopback
    except ValueError:
        return False  # a host name: it resolves somewhere we do not control


def _header_hosts(header: Header) -> list[str]:
    """The hosts a header names, from the parser; IP literals when it does not parse."""
    try:
        if header.key == "via":
            hosts = []
            for via in parse_via(header.value):
                hosts.append(via.host)
                hosts += [str(via.params[p]) for p in ("received", "maddr") if via.params.get(p)]
            return hosts
        values = [v for v in split_commas(header.value) if v.strip() != "*"]
        out = []
        for value in values:
            uri = parse_name_addr(value).uri
            out.append(uri.host)
            if uri.params.get("maddr"):
                out.append(str(uri.params["maddr"]))
        return out
    except SipParseError:
        return _IP_LITERAL.findall(header.value)


def _sdp_hosts(body: str) -> list[str]:
    return [m.group(3) for m in _SDP_ADDRESS.finditer(body)]


def foreign_addresses(data: bytes) -> list[Foreign]:
    """Non-loopback hosts in the headers that route (Via, Contact, Record-Route, Route) and the SDP."""
    try:
        msg = parse_message(data)
    except SipParseError:
        # unparsable bytes: be conservative and report every non-loopback IP written anywhere
        return [Foreign("message", a) for a in non_loopback_addresses(data)]
    found: list[Foreign] = []
    for header in msg.headers:
        if header.key in ROUTING_HEADERS:
            where = header.name if header.key != "via" else "Via"
            found += [Foreign(where, h) for h in _header_hosts(header) if h and not is_local(h)]
    found += [Foreign("SDP", h) for h in _sdp_hosts(decode(msg.body)) if not is_local(h)]
    unique: list[Foreign] = []
    for f in found:
        if f not in unique:
            unique.append(f)
    return unique


def _host_regex(host: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w.\-\[]){re.escape(host)}(?![\w\-\]]|\.\w)")


def rewrite_foreign(data: bytes, local_ip: str) -> tuple[bytes, list[Foreign]]:
    """``data`` with every foreign routing address replaced by ``local_ip`` (SDP: ``IN IP4 local_ip``).

    Content-Length follows the body when it was right before; returns the new bytes and what changed.
    """
    foreign = foreign_addresses(data)
    if not foreign:
        return data, []
    try:
        msg = parse_message(data)
    except SipParseError:
        text = decode(data)
        for f in foreign:
            text = _host_regex(f.host).sub(local_ip, text)
        return encode(text), foreign
    hosts = {f.host for f in foreign if f.where != "SDP"}
    headers = []
    for h in msg.headers:
        if h.key in ROUTING_HEADERS and hosts:
            raw, value = decode(h.raw), h.value
            for host in hosts:
                raw, value = _host_regex(host).sub(local_ip, raw), _host_regex(host).sub(local_ip, value)
            h = Header(encode(raw), h.name, value)
        headers.append(h)
    out: SipMessage = msg.with_headers(headers)
    body = decode(msg.body)

    def sdp_sub(m: re.Match[str]) -> str:
        return m.group(0) if is_local(m.group(3)) else f"{m.group(1)}4 {local_ip}"

    new_body = encode(_SDP_ADDRESS.sub(sdp_sub, body))
    if new_body != msg.body:
        declared_right = msg.content_length == len(msg.body)
        out = out.with_body(new_body, content_length=declared_right)
    return out.to_bytes(), foreign


__all__ = ["Foreign", "foreign_addresses", "is_local", "rewrite_foreign"]
