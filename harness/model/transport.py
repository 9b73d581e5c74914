"""UDP + TCP listeners shared by the model's SIP roles: bytes in, a reply path out.

A role gets every datagram or framed stream message through one callback together with a
:class:`ReplyPath` that answers the peer on the transport the message came in on (UDP replies go
to the source address, like ``rport``). The listener never lets a callback error stop it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import cast

from harness.sip.errors import SipParseError
from harness.sip.framing import FramingError, StreamFramer
from harness.sip.message import Request
from harness.sip.response import make_response

Address = tuple[str, int]
_log = logging.getLogger(__name__)


@dataclass
class ReplyPath:
    """Where an answer to one received message goes."""

    proto: str  # "udp" | "tcp"
    peer: Address
    _send: Callable[[bytes], None] = field(repr=False)
    _close: Callable[[], None] | None = field(default=None, repr=False)

    def send(self, data: bytes) -> None:
        try:
            self._send(data)
        except (OSError, RuntimeError):  # peer gone or transport closed: nothing to answer any more
            pass

    def respond(
        self,
        request: Request,
        code: int,
        reason: str,
        *,
        headers: Sequence[tuple[str, str]] = (),
        to_tag: str | None = None,
    ) -> bytes:
        """Send a response to ``request`` down this path; returns its bytes (b"" when the request is too
        broken to answer: a role logs and carries on rather than raise)."""
        try:
            data = make_response(request, code, reason, headers=headers, to_tag=to_tag).to_bytes()
        except (SipParseError, ValueError):
            return b""
        self.send(data)
        return data

    def close(self) -> None:
        """Close the connection the message came on (Kamailio does on bytes it cannot parse); a
        datagram path has nothing to close."""
        if self._close is not None:
            self._close()


MessageHandler = Callable[[bytes, ReplyPath], None]
FramingHandler = Callable[[FramingError, Address], None]


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, on_message: MessageHandler) -> None:
        self.on_message = on_message
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        transport = self.transport
        if transport is None:
            return
        peer = (str(addr[0]), int(str(addr[1])))
        path = ReplyPath("udp", peer, lambda b: transport.sendto(b, peer))
        try:
            self.on_message(data, path)
        except Exception:  # a role bug must not stop the listener
            _log.exception("UDP handler failed on a message from %s:%d", *peer)

    def error_received(self, exc: Exception) -> None:  # ICMP for an earlier reply: ignore
        pass


class SipListener:
    """One role's SIP socket pair: UDP and TCP on the same ``host:port`` (port 0 = a free one)."""

    def __init__(
        self,
        host: str,
        port: int,
        on_message: MessageHandler,
        *,
        max_stream_message: int | None = None,
        on_framing_error: FramingHandler | None = None,
        accept_no_content_length: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.on_message = on_message
        self.max_stream_message = max_stream_message
        self.on_framing_error = on_framing_error
        self.accept_no_content_length = accept_no_content_length
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def address(self) -> Address:
        return (self.host, self.port)

    async def start(self) -> Address:
        loop = asyncio.get_running_loop()
        last_error: OSError | None = None
        for _attempt in range(20):  # port 0: the free UDP port may be taken for TCP; pick another
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Datagrams(self.on_message), local_addr=(self.host, self.port)
            )
            port = int(transport.get_extra_info("sockname")[1])
            try:
                self._tcp = await asyncio.start_server(
                    self._serve_stream, self.host, port, reuse_address=True
                )
            except OSError as exc:
                transport.close()
                last_error = exc
                if self.port != 0:
                    raise
                continue
            self._udp = transport
            self.port = port
            return self.address
        raise OSError(f"no free port pair on {self.host}: {last_error}")

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
        for writer in list(self._writers):
            writer.close()
        if self._tcp is not None:
            try:
                await asyncio.wait_for(self._tcp.wait_closed(), 2.0)
            except TimeoutError:
                pass

    async def _serve_stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        name = writer.get_extra_info("peername")
        peer = (str(name[0]), int(name[1]))
        framer = StreamFramer(
            max_message=self.max_stream_message, accept_no_content_length=self.accept_no_content_length
        )
        path = ReplyPath("tcp", peer, writer.write, writer.close)
        self._writers.add(writer)
        try:
            while chunk := await reader.read(65536):
                error: FramingError | None = None
                try:
                    messages = framer.feed(chunk)
                except FramingError as exc:
                    error, messages = exc, exc.framed
                # the messages before an unframable one are handled first, as Kamailio's reader does
                for message in messages:
                    try:
                        self.on_message(message, path)
                    except Exception:  # a role bug must not stop the listener
                        _log.exception("TCP handler failed on a message from %s:%d", *peer)
                if error is not None:
                    if self.on_framing_error is not None:
                        self.on_framing_error(error, peer)
                    break
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
