"""asyncio client transports (UDP, TCP, TLS) bound to a chosen source address.

One small interface for the three: ``await send(data)``, ``await receive(timeout)`` giving a
:class:`Packet`, a :class:`PeerClosed` or None at the deadline, ``local``/``remote`` and ``close()``.
Errors are :class:`TransportError` subclasses so the carrier UA can turn them into outcomes.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass

from harness.sip.framing import FramingError, StreamFramer

Address = tuple[str, int]

# IPv4: 65,535 minus the 20-byte IP header and the 8-byte UDP header.
MAX_UDP_PAYLOAD = 65_507


class TransportError(Exception):
    """The transport could not do what was asked."""


class TargetUnreachable(TransportError):
    """ICMP port unreachable (UDP) or connection refused (TCP/TLS): nothing listens there."""


class MessageTooLarge(TransportError):
    """The message does not fit in one UDP datagram."""


@dataclass(frozen=True)
class Packet:
    """One message received: a datagram, or one message framed out of a stream."""

    data: bytes
    src: Address
    dst: Address
    mono: float  # time.monotonic() at arrival
    wall: float  # time.time() at arrival


@dataclass(frozen=True)
class PeerClosed:
    """The stream ended: the peer closed or reset the connection, or sent bytes that cannot be framed."""

    reason: str


Incoming = Packet | PeerClosed


class Transport(ABC):
    name: str  # "udp" | "tcp" | "tls"

    def __init__(self, local: Address, remote: Address) -> None:
        self.local = local
        self.remote = remote
        self._queue: asyncio.Queue[Incoming | BaseException] = asyncio.Queue()

    @property
    def reliable(self) -> bool:
        return self.name != "udp"

    @abstractmethod
    async def send(self, data: bytes) -> None: ...

    async def receive(self, timeout: float) -> Incoming | None:
        """The next message or stream end; None when nothing came within ``timeout`` seconds.
        Raises :class:`TargetUnreachable` when the network said nobody listens."""
        try:
            item = await asyncio.wait_for(self._queue.get(), max(timeout, 0.0))
        except TimeoutError:
            return None
        if isinstance(item, BaseException):
            raise item
        return item

    @abstractmethod
    def close(self) -> None: ...

    async def wait_closed(self, timeout: float = 1.0) -> None:
        """After :meth:`close`: wait (bounded) until the socket is really released, so the same source
        address and port can be bound again at once."""
        with contextlib.suppress(TimeoutError, ConnectionError, OSError, ssl.SSLError):
            await asyncio.wait_for(asyncio.shield(self._closed()), timeout)

    async def _closed(self) -> None:
        return None

    def _arrived(self, data: bytes, src: Address) -> None:
        self._queue.put_nowait(Packet(data, src, self.local, time.monotonic(), time.time()))


class _DatagramProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: UdpTransport) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: tuple[str | bytes, int]) -> None:
        self.owner._arrived(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        self.owner._failed(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.owner._lost.done():
            self.owner._lost.set_result(None)


class UdpTransport(Transport):
    """A connected UDP socket: only the target's datagrams arrive, and ICMP errors are reported."""

    name = "udp"

    def __init__(self, local: Address, remote: Address) -> None:
        super().__init__(local, remote)
        self._transport: asyncio.DatagramTransport | None = None
        self._lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @classmethod
    async def open(
        cls, local: Address, remote: Address, *, sock: socket.socket | None = None
    ) -> UdpTransport:
        """Bind ``local`` and connect to ``remote``; or, with ``sock`` (an already bound socket that this
        transport owns and closes, e.g. a ``dup()`` of the UA's held socket), connect that one and drop
        what an earlier exchange left queued in it."""
        self = cls(local, remote)
        loop = asyncio.get_running_loop()
        if sock is None:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _DatagramProtocol(self), local_addr=local, remote_addr=remote
            )
        else:
            sock.setblocking(False)
            sock.connect(remote)
            _drain(sock)
            transport, _ = await loop.create_datagram_endpoint(lambda: _DatagramProtocol(self), sock=sock)
        self._transport = transport
        host, port = transport.get_extra_info("sockname")[:2]
        self.local = (host, port)
        return self

    async def send(self, data: bytes) -> None:
        if len(data) > MAX_UDP_PAYLOAD:
            raise MessageTooLarge(
                f"a {len(data)}-byte message does not fit in one UDP datagram (max {MAX_UDP_PAYLOAD}); "
                "use --transport tcp"
            )
        assert self._transport is not None, "open() first"
        self._transport.sendto(data)

    def _failed(self, exc: Exception) -> None:
        if isinstance(exc, ConnectionRefusedError):
            err: TransportError = TargetUnreachable(
                f"{self.remote[0]}:{self.remote[1]}/udp: port unreachable (ICMP)"
            )
        else:
            err = TransportError(f"udp socket error: {exc}")
        self._queue.put_nowait(err)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    async def _closed(self) -> None:
        if self._transport is not None:
            await self._lost


def _drain(sock: socket.socket) -> None:
    """Discard datagrams already queued (late answers to an earlier exchange on the same socket)."""
    while True:
        try:
            sock.recv(MAX_UDP_PAYLOAD)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            continue  # a queued ICMP error from the earlier exchange: consumed, go on


class StreamTransport(Transport):
    """TCP, or TLS when an SSLContext is given. The connection starts from the bound source address;
    a reader task frames the incoming stream (Content-Length, RFC 3261 §18.3)."""

    def __init__(self, local: Address, remote: Address, tls: bool) -> None:
        super().__init__(local, remote)
        self.name = "tls" if tls else "tcp"
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._fixed_port = local[1] != 0

    @classmethod
    async def open(
        cls,
        local: Address,
        remote: Address,
        *,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        connect_timeout: float = 5.0,
    ) -> StreamTransport:
        self = cls(local, remote, tls=ssl_context is not None)
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            # a fixed source port must be reusable right after the previous call's connection closed
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(local)
            sock.setblocking(False)
            await asyncio.wait_for(loop.sock_connect(sock, remote), connect_timeout)
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    sock=sock,
                    ssl=ssl_context,
                    server_hostname=(server_hostname or remote[0]) if ssl_context else None,
                ),
                connect_timeout,
            )
        except ConnectionRefusedError as exc:
            sock.close()
            raise TargetUnreachable(f"{remote[0]}:{remote[1]}/{self.name}: connection refused") from exc
        except TimeoutError as exc:
            sock.close()
            raise TransportError(
                f"{remote[0]}:{remote[1]}/{self.name}: no connection within {connect_timeout} s"
            ) from exc
        except (OSError, ssl.SSLError) as exc:
            sock.close()
            raise TransportError(f"{remote[0]}:{remote[1]}/{self.name}: {exc}") from exc
        self._reader, self._writer = reader, writer
        host, port = writer.get_extra_info("sockname")[:2]
        self.local = (host, port)
        self._task = asyncio.create_task(self._read_loop(), name=f"{self.name}-reader")
        return self

    async def send(self, data: bytes) -> None:
        assert self._writer is not None, "open() first"
        try:
            self._writer.write(data)
            await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            raise TransportError(f"{self.name} send failed: {exc}") from exc

    async def _read_loop(self) -> None:
        assert self._reader is not None
        framer = StreamFramer()
        try:
            while True:
                chunk = await self._reader.read(65536)
                if not chunk:
                    self._queue.put_nowait(PeerClosed("peer closed the connection"))
                    return
                for message in framer.feed(chunk):
                    self._arrived(message, self.remote)
        except FramingError as exc:
            self._queue.put_nowait(PeerClosed(f"unframable stream from the peer: {exc}"))
        except (ConnectionError, OSError, ssl.SSLError) as exc:
            self._queue.put_nowait(PeerClosed(f"connection lost: {exc}"))

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._writer is not None and self._fixed_port:
            # Reset instead of FIN: closing first would leave this 4-tuple in TIME_WAIT and the next
            # call from the same fixed source port to the same target could not connect for a minute.
            sock = self._writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        if self._writer is not None:
            with contextlib.suppress(RuntimeError):  # the event loop may already be closing
                self._writer.close()

    async def _closed(self) -> None:
        if self._writer is not None:
            await self._writer.wait_closed()


async def open_transport(
    kind: str,
    local: Address,
    remote: Address,
    *,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    connect_timeout: float = 5.0,
    udp_socket: socket.socket | None = None,
) -> Transport:
    """Open a ``udp``/``tcp``/``tls`` transport from ``local`` (port 0 = ephemeral) to ``remote``;
    ``udp_socket``: a bound socket the UDP transport takes over instead of binding ``local`` itself."""
    if kind == "udp":
        return await UdpTransport.open(local, remote, sock=udp_socket)
    if kind == "tcp":
        return await StreamTransport.open(local, remote, connect_timeout=connect_timeout)
    if kind == "tls":
        if ssl_context is None:
            raise TransportError("transport tls needs an SSLContext")
        return await StreamTransport.open(
            local,
            remote,
            ssl_context=ssl_context,
            server_hostname=server_hostname,
            connect_timeout=connect_timeout,
        )
    raise TransportError(f"unknown transport {kind!r} (udp, tcp or tls)")
