"""A scripted SIP peer on real loopback sockets for the carrier tests: it records every message with
the address it came from and answers through a handler the test writes."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.sip.errors import SipParseError
from harness.sip.framing import StreamFramer
from harness.sip.message import Request, parse_message
from harness.sip.response import make_response

Address = tuple[str, int]
CLOSE = b"<close the connection>"  # a handler returns this to make a stream peer hang up
# handler(request or None when the bytes do not parse, raw bytes) -> replies (CLOSE allowed on streams)
Handler = Callable[[Request | None, bytes], list[bytes]]


def reply(request: Request, code: int, reason: str, **kwargs: object) -> bytes:
    return make_response(request, code, reason, to_tag="peer-tag", **kwargs).to_bytes()  # type: ignore[arg-type]


def final_for_invite(code: int, reason: str) -> Handler:
    """Answer every INVITE with ``code``; every BYE/CANCEL with 200; nothing to ACK."""

    def handle(req: Request | None, data: bytes) -> list[bytes]:
        if req is None or req.method == "ACK":
            return []
        if req.method == "INVITE":
            return [reply(req, code, reason)]
        return [reply(req, 200, "OK")]

    return handle


def silent(req: Request | None, data: bytes) -> list[bytes]:
    return []


@dataclass
class Responder:
    handler: Handler
    transport: str = "udp"
    ssl_context: ssl.SSLContext | None = None
    host: str = "127.0.0.1"
    received: list[tuple[bytes, Address]] = field(default_factory=list)
    address: Address = ("127.0.0.1", 0)
    _arrived: asyncio.Condition | None = None
    _closers: list[Callable[[], None]] = field(default_factory=list)
    _connections: list[asyncio.Task[object]] = field(default_factory=list)

    async def __aenter__(self) -> Responder:
        self._arrived = asyncio.Condition()
        loop = asyncio.get_running_loop()
        if self.transport == "udp":
            udp, _ = await loop.create_datagram_endpoint(lambda: _Udp(self), local_addr=(self.host, 0))
            self._closers.append(udp.close)
            self.address = udp.get_extra_info("sockname")[:2]
        else:
            server = await asyncio.start_server(self._serve, self.host, 0, ssl=self.ssl_context)
            self._closers.append(server.close)
            self.address = server.sockets[0].getsockname()[:2]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for close in self._closers:
            close()
        if self._connections:  # closed writers end the readers: let the handlers finish
            await asyncio.wait(self._connections, timeout=2)

    def requests(self, method: str | None = None) -> list[Request]:
        out = []
        for data, _ in self.received:
            try:
                msg = parse_message(data)
            except SipParseError:
                continue
            if isinstance(msg, Request) and (method is None or msg.method == method):
                out.append(msg)
        return out

    async def wait_for(self, predicate: Callable[[Responder], bool], timeout: float = 3.0) -> None:
        assert self._arrived is not None
        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(lambda: predicate(self)), timeout)

    def _record(self, data: bytes, src: Address) -> list[bytes]:
        self.received.append((data, src))
        try:
            msg = parse_message(data)
        except SipParseError:
            msg = None
        replies = self.handler(msg if isinstance(msg, Request) else None, data)
        asyncio.get_running_loop().create_task(self._notify())
        return replies

    async def _notify(self) -> None:
        assert self._arrived is not None
        async with self._arrived:
            self._arrived.notify_all()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")[:2]
        task = asyncio.current_task()
        if task is not None:
            self._connections.append(task)
        framer = StreamFramer()
        self._closers.append(writer.close)
        try:
            while chunk := await reader.read(65536):
                for message in framer.feed(chunk):
                    for out in self._record(message, peer):
                        if out == CLOSE:
                            writer.close()
                            return
                        writer.write(out)
                    await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, owner: Responder) -> None:
        self.owner = owner

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str | bytes, int]) -> None:
        src = (str(addr[0]), int(addr[1]))
        for out in self.owner._record(data, src):
            self.transport.sendto(out, src)  # type: ignore[attr-defined]


def self_signed_tls(tmp: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context trusting it) for a certificate made with the openssl binary."""
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert),
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )  # fmt: skip
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return server, client
