"""A tiny raw SIP client for the model's integration tests: crafted bytes out, parsed responses in.

Silence is proven with a barrier: an OPTIONS sent after the message under test on the same socket.
Each role handles the datagrams of one socket in order, so when the OPTIONS' answer arrives, any answer
to (and any log line about) the earlier message has already been sent and written.
"""

from __future__ import annotations

import secrets
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.model.stack import RunningModel
from harness.sip.errors import SipParseError
from harness.sip.message import Response, parse_message

Address = tuple[str, int]
DEADLINE = 5.0

SDP_TEMPLATE = (
    "v=0\r\no=carrier 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
    "m=audio {port} RTP/AVP {pts}\r\n{rtpmaps}a=ptime:20\r\na=sendrecv\r\n"
)


def sdp(ip: str, port: int, codecs: tuple[tuple[int, str], ...] = ((0, "PCMU/8000"),)) -> bytes:
    pts = " ".join(str(pt) for pt, _ in codecs)
    rtpmaps = "".join(f"a=rtpmap:{pt} {name}\r\n" for pt, name in codecs)
    return SDP_TEMPLATE.format(ip=ip, port=port, pts=pts, rtpmaps=rtpmaps).encode()


@dataclass
class Invite:
    """The parts of a crafted INVITE; ``render()`` gives its bytes (``headers`` may override any)."""

    number: str
    source: Address
    target: Address
    transport: str = "UDP"
    method: str = "INVITE"
    ruri: str | None = None
    to_user: str | None = None
    from_host: str | None = None  # default: the source address
    call_id: str = field(default_factory=lambda: f"model-{secrets.token_hex(8)}@127.0.0.10")
    branch: str = field(default_factory=lambda: f"z9hG4bK{secrets.token_hex(8)}")
    from_tag: str = field(default_factory=lambda: secrets.token_hex(4))
    cseq: int = 1
    body: bytes | None = None  # None: a PCMU offer pointing at the source address
    extra: list[str] = field(default_factory=list)
    drop: tuple[str, ...] = ()  # header names to leave out

    def render(self) -> bytes:
        ip, port = self.source
        host, tport = self.target
        ruri = self.ruri or f"sip:{self.number}@{host}:{tport}"
        body = sdp(ip, 40000) if self.body is None else self.body
        headers = [
            ("Via", f"SIP/2.0/{self.transport} {ip}:{port};branch={self.branch};rport"),
            ("Max-Forwards", "70"),
            ("From", f"<sip:+14155551234@{self.from_host or ip}>;tag={self.from_tag}"),
            ("To", f"<sip:{self.to_user or self.number}@{host}>"),
            ("Call-ID", self.call_id),
            ("CSeq", f"{self.cseq} {self.method}"),
            ("Contact", f"<sip:+14155551234@{ip}:{port}>"),
            ("User-Agent", "kazoo-harness-model-test"),
        ]
        if body:
            headers.append(("Content-Type", "application/sdp"))
        headers.append(("Content-Length", str(len(body))))
        lines = [f"{self.method} {ruri} SIP/2.0"]
        lines += [f"{name}: {value}" for name, value in headers if name.lower() not in self.lower_drop]
        lines += self.extra
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    @property
    def lower_drop(self) -> set[str]:
        return {name.lower() for name in self.drop}


def options(source: Address, target: Address, call_id: str | None = None) -> bytes:
    ip, port = source
    host, tport = target
    cid = call_id or f"barrier-{secrets.token_hex(8)}"
    return (
        f"OPTIONS sip:{host}:{tport} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {ip}:{port};branch=z9hG4bK{secrets.token_hex(8)};rport\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:probe@{ip}>;tag={secrets.token_hex(4)}\r\nTo: <sip:{host}>\r\n"
        f"Call-ID: {cid}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ).encode()


class UdpPeer:
    """A UDP socket bound to a loopback source address (any 127.x.y.z)."""

    def __init__(self, ip: str = "127.0.0.10", port: int = 0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((ip, port))
        self.address: Address = self.sock.getsockname()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> UdpPeer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def send(self, data: bytes, target: Address) -> None:
        self.sock.sendto(data, target)

    def recv(self, timeout: float = DEADLINE) -> Response | None:
        """The next response within ``timeout`` s (unparsable datagrams are skipped), or None."""
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(70000)
            except TimeoutError:
                return None
            try:
                message = parse_message(data)
            except SipParseError:
                continue
            if isinstance(message, Response):
                return message
        return None

    def final(self, call_id: str, timeout: float = DEADLINE) -> tuple[list[Response], Response | None]:
        """Responses for ``call_id`` up to the first final one (the list includes provisionals)."""
        seen: list[Response] = []
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            response = self.recv(left)
            if response is None:
                break
            if response.get("call-id") != call_id:
                continue
            seen.append(response)
            if response.code >= 200:
                return seen, response
        return seen, None

    def barrier(self, target: Address, timeout: float = DEADLINE) -> list[Response]:
        """Send an OPTIONS and return every response that arrived before its answer."""
        call_id = f"barrier-{secrets.token_hex(8)}"
        self.send(options(self.address, target, call_id), target)
        before: list[Response] = []
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            response = self.recv(left)
            if response is None:
                break
            if response.get("call-id") == call_id:
                return before
            before.append(response)
        raise AssertionError(f"no answer to the barrier OPTIONS from {target} within {timeout} s")


def log_text(model: RunningModel, source: str) -> str:
    path = Path(model.log_dir) / f"{source}.log"
    return path.read_text(encoding="utf-8") if path.exists() else ""


def log_lines(model: RunningModel, source: str, needle: str) -> list[str]:
    return [line for line in log_text(model, source).splitlines() if needle in line]
