"""UDP + TCP listeners shared by the model's SIP roles: bytes in, a reply path out.

A role gets every datagram or framed stream message through one callback together with a
:class:`ReplyPath` that answers the peer on the transport the message came in on (UDP replies go
to the source address, like ``rport``). The listener never lets a callback error stop it.

UDP is read by :class:`UdpSocket`, not asyncio's datagram transport: that one reads a single datagram
per loop iteration (an epoll wait each), while under load several are queued; this one drains up to
``READ_BATCH`` per wake-up and sends with a plain ``sendto``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from harness.sip.errors import SipParseError
from harness.sip.framing import FramingError, StreamFramer
from harness.sip.message import Request
from harness.sip.response import render_response

Address = tuple[str, int]
_log = logging.getLogger(__name__)
UDP_BUFFER = 4 * 1024 * 1024  # a burst of small datagrams overflows the default (~90 queued on lo)
READ_BATCH = 64  # datagrams read per wake-up at most, so one busy socket cannot starve the others
MAX_DATAGRAM = 65535


class UdpSocket:
    """A non-blocking UDP socket on the running loop: each wake-up reads what is queued (up to
    ``READ_BATCH``), handing each datagram and its source to ``on_datagram``; errors the kernel reports
    for earlier sends (ICMP port unreachable, on a connected socket) go to ``on_error``."""

    def __init__(
        self,
        local: Address,
        on_datagram: Callable[[bytes, Address], None],
        *,
        remote: Address | None = None,
        on_error: Callable[[OSError], None] | None = None,
    ) -> None:
        self.sock = socket.socket(socket.AF_INET6 if ":" in local[0] else socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.setblocking(False)
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_BUFFER)
            except OSError:  # refused: keep the default
                pass
            self.sock.bind(local)
            if remote is not None:
                self.sock.connect(remote)
        except OSError:
            self.sock.close()
            raise
        name = self.sock.getsockname()
        self.address: Address = (str(name[0]), int(name[1]))
        self._on_datagram = on_datagram
        self._on_error = on_error
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.sock.fileno(), self._readable)
        self._closed = False

    def _readable(self) -> None:
        recvfrom, handle = self.sock.recvfrom, self._on_datagram
        for _ in range(READ_BATCH):
            try:
                data, addr = recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # a pending error of an earlier send: report it, read on
                self._error(exc)
                continue
            handle(data, (str(addr[0]), int(addr[1])))

    def _error(self, exc: OSError) -> None:
        if self._on_error is not None:
            self._on_error(exc)

    def sendto(self, data: bytes, addr: Address | None = None) -> None:
        """Send now; a full socket buffer drops the datagram (UDP), other errors go to ``on_error``."""
        if self._closed:
            raise RuntimeError("the socket is closed")
        try:
            if addr is None:
                self.sock.send(data)
            else:
                self.sock.sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            _log.debug("UDP send buffer full: a datagram to %s dropped", addr)
        except OSError as exc:
            self._error(exc)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if not self._loop.is_closed():
                self._loop.remove_reader(self.sock.fileno())
            self.sock.close()


@dataclass(slots=True)
class ReplyPath:
    """Where an answer to one received message goes. One is made per message and a finished call keeps
    its own for the linger time, so it is slotted and its sender is shared (no closure per message)."""

    proto: str  # "udp" | "tcp"
    peer: Address
    _send: Callable[[bytes, Address], None] = field(repr=False)  # (data, peer)
    _close: Callable[[], None] | None = field(default=None, repr=False)
    _before_send: Callable[[], None] | None = field(default=None, repr=False)  # the log bus's flush

    def send(self, data: bytes) -> None:
        if self._before_send is not None:
            self._before_send()
        try:
            self._send(data, self.peer)
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
            data = render_response(request, code, reason, headers=headers, to_tag=to_tag)
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
        before_send: Callable[[], None] | None = None,
        accept_no_content_length: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.on_message = on_message
        self.max_stream_message = max_stream_message
        self.on_framing_error = on_framing_error
        self.before_send = before_send  # called before every answer goes out (the log bus's flush)
        self.accept_no_content_length = accept_no_content_length
        self._udp: UdpSocket | None = None
        self._udp_send: Callable[[bytes, Address], None] | None = None  # its bound sendto, made once
        self._tcp: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def address(self) -> Address:
        return (self.host, self.port)

    async def start(self) -> Address:
        last_error: OSError | None = None
        for _attempt in range(20):  # port 0: the free UDP port may be taken for TCP; pick another
            transport = UdpSocket((self.host, self.port), self._datagram)
            port = transport.address[1]
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
            self._udp, self._udp_send = transport, transport.sendto
            self.port = port
            return self.address
        raise OSError(f"no free port pair on {self.host}: {last_error}")

    def _datagram(self, data: bytes, peer: Address) -> None:
        send = self._udp_send
        if send is None:
            return
        path = ReplyPath("udp", peer, send, _before_send=self.before_send)
        try:
            self.on_message(data, path)
        except Exception:  # a role bug must not stop the listener
            _log.exception("UDP handler failed on a message from %s:%d", *peer)

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
        path = ReplyPath("tcp", peer, lambda data, _peer: writer.write(data), writer.close, self.before_send)
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
