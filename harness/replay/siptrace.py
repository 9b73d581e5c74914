"""SIP messages out of text: FreeSWITCH ``sofia global siptrace`` dumps and single pasted messages.

A siptrace block, as sofia-sip's ``tport_log_msg`` writes it (libsofia-sip-ua/tport/tport_logging.c)::

    recv 1234 bytes from udp/[127.0.0.10]:5060 at 12:34:56.123456:
       ------------------------------------------------------------------------
       INVITE sip:+14155550100@127.0.0.2 SIP/2.0
       Via: SIP/2.0/UDP 127.0.0.10:5060;branch=z9hG4bK-1
       ...
       ------------------------------------------------------------------------

``send N bytes to ...`` for the other direction. Each message line is indented by three spaces and its
line end is written as LF; the message's CRLFs are restored here and the byte count decides whether
the message ended with a line end. The stamp gives local time of day only: ``day`` (epoch of local
midnight) turns it into epoch seconds. The trace names only the remote address; ``local`` fills in the
other side. On stream transports one block may hold part of a message or several, so blocks are framed
per connection with :class:`~harness.sip.framing.StreamFramer`.
"""

from __future__ import annotations

import re

from harness.net.exchange import Address
from harness.replay.capture import CapturedMessage, looks_like_sip
from harness.sip.framing import FramingError, StreamFramer

_STAMP = re.compile(
    r"(?P<what>recv|send) (?P<n>\d+) bytes (?:from|to) "
    r"(?P<proto>[A-Za-z0-9]+)/\[(?P<host>[^\]]*)\]:(?P<port>\d+)"
    r"(?:/\d+)?(?:;comp=sigcomp)? at (?P<h>\d\d):(?P<m>\d\d):(?P<s>\d\d)\.(?P<us>\d{6}):\s*$"
)
_SEPARATOR = re.compile(r"^\s*-{20,}\s*$")
UNKNOWN: Address = ("", 0)


def _unindent(line: str) -> str:
    line = line.rstrip("\r")
    return line[3:] if line.startswith("   ") else line.lstrip(" ")


def _block_bytes(lines: list[str], declared: int) -> bytes:
    data = ("\r\n".join(_unindent(line) for line in lines) + "\r\n").encode("utf-8", "surrogateescape")
    # the trace does not show whether the last line had a line end: the declared size does
    if len(data) == declared + 2 and data.endswith(b"\r\n"):
        data = data[:-2]
    return data


def read_siptrace(text: str, *, local: Address = UNKNOWN, day: float = 0.0) -> list[CapturedMessage]:
    """The messages of a sofia siptrace dump, in order. Lines before, between and after blocks (other
    log output) are ignored; a block cut short by the end of the text is dropped."""
    out: list[CapturedMessage] = []
    framers: dict[tuple[str, str, Address], StreamFramer] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = _STAMP.search(lines[i])
        i += 1
        if m is None:
            continue
        if i < len(lines) and _SEPARATOR.match(lines[i]):
            i += 1
        body: list[str] = []
        while i < len(lines) and not _SEPARATOR.match(lines[i]):
            body.append(lines[i])
            i += 1
        if i >= len(lines):
            break
        i += 1  # the closing separator
        remote = (m["host"], int(m["port"]))
        src, dst = (remote, local) if m["what"] == "recv" else (local, remote)
        t = day + int(m["h"]) * 3600 + int(m["m"]) * 60 + int(m["s"]) + int(m["us"]) / 1e6
        proto = m["proto"].lower()
        data = _block_bytes(body, int(m["n"]))
        if proto == "udp":
            if looks_like_sip(data):
                out.append(CapturedMessage(t, src, dst, proto, data))
            continue
        framer = framers.setdefault((proto, m["what"], remote), StreamFramer())
        try:
            messages = framer.feed(data)
        except FramingError:
            framers.pop((proto, m["what"], remote))
            continue
        out.extend(CapturedMessage(t, src, dst, proto, msg) for msg in messages if looks_like_sip(msg))
    return out


def read_raw(message: str | bytes, *, transport: str = "udp") -> CapturedMessage:
    """One pasted SIP message: leading blank lines dropped, bare LF line ends made CRLF, and a missing
    blank line after the headers added. Nothing else (Content-Length included) is recomputed."""
    data = message.encode("utf-8", "surrogateescape") if isinstance(message, str) else bytes(message)
    data = data.lstrip(b"\r\n")
    data = re.sub(rb"(?<!\r)\n", b"\r\n", data)
    if b"\r\n\r\n" not in data:
        data = data.rstrip(b"\r\n") + b"\r\n\r\n"
    return CapturedMessage(0.0, UNKNOWN, UNKNOWN, transport, data)


__all__ = ["UNKNOWN", "read_raw", "read_siptrace"]
