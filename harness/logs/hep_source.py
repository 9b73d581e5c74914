"""A HEP collector as a log source: what the stack's own capture agents (Kamailio's siptrace, FreeSWITCH's
sofia capture-server, heplify) saw, as evidence for one test call.

``HepReceiver`` listens (UDP and/or TCP) for as long as a target lives, because the capture agents are
configured with its address once; it decodes every packet (harness.hep) in its own thread and hands the
result to whoever subscribed. ``receiver.source()`` is the per-scenario :class:`LogSource`: it delivers
what arrives after it is entered, like every other source. Each captured SIP message becomes a
:class:`HepLine` whose ``raw`` is a one-line summary (capture point, transport, addresses, start line,
Call-ID: what log patterns and the correlator read) and whose ``packet`` keeps the bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType

from harness.hep import HepError, HepPacket, HepStreamDecoder, decode_packet
from harness.hep.framing import HepStreamError
from harness.kazoo.logformat import ParsedLine
from harness.logs.line import LogLine
from harness.sip.errors import SipParseError
from harness.sip.message import parse_message

Address = tuple[str, int]
RECEIVE_BUFFER = 4 * 1024 * 1024  # a burst of captures must not overflow the kernel's default buffer
_CALL_ID = re.compile(rb"^(?:call-id|i)[ \t]*:[ \t]*(\S+)", re.I | re.M)


@dataclass(frozen=True)
class Listen:
    transport: str  # "udp" | "tcp"
    host: str
    port: int  # 0: a free port, see HepReceiver.addresses

    @classmethod
    def parse(cls, text: str) -> Listen:
        """``udp:IP:PORT`` or ``tcp:IP:PORT`` (``[v6]:PORT`` for IPv6)."""
        transport, sep, rest = text.partition(":")
        host, sep2, port = rest.rpartition(":")
        if not sep or not sep2 or transport not in ("udp", "tcp") or not port.isdigit():
            raise ValueError(f"expected udp:IP:PORT or tcp:IP:PORT, got {text!r}")
        host = host.strip("[]")
        if not 0 <= int(port) < 65536:
            raise ValueError(f"port out of range in {text!r}")
        return cls(transport, host, int(port))

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport}:{host}:{self.port}"


@dataclass(frozen=True)
class HepLine(LogLine):
    """A captured message as a log line; ``packet`` is None for a packet that did not decode (its
    ``raw`` then says why)."""

    packet: HepPacket | None = None
    peer: Address | None = None  # who sent the HEP packet (the capture agent)

    @property
    def data(self) -> bytes:
        return self.packet.payload if self.packet is not None else b""


def sip_call_id(data: bytes) -> str | None:
    """The Call-ID of a captured message; read from the raw header when the message does not parse
    (an insane message the SBC dropped still names its call)."""
    try:
        return parse_message(data).call_id
    except SipParseError:
        match = _CALL_ID.search(data)
        return match.group(1).decode("utf-8", "replace") if match else None


def first_line(data: bytes) -> str:
    return data.split(b"\n", 1)[0].rstrip(b"\r")[:200].decode("utf-8", "replace")


def hep_line(source: str, packet: HepPacket, peer: Address | None, received: float) -> HepLine:
    """The log line for one decoded packet (a SIP message, a HEP log event, or anything else)."""
    if packet.is_log:
        text = packet.payload.decode("utf-8", "replace").rstrip("\r\n")
        call_id = packet.correlation_id.decode("utf-8", "replace") if packet.correlation_id else None
        raw = f"{packet.describe()} | {text}"
    elif packet.is_sip:
        call_id = sip_call_id(packet.payload)
        raw = f"{packet.describe()} | {first_line(packet.payload)} | call-id {call_id or '-'}"
    else:
        call_id = None
        raw = packet.describe()
    parsed = ParsedLine("raw", None, None, None, call_id, raw, packet.timestamp)
    return HepLine(source, received, raw, parsed, packet, peer)


def bad_packet_line(source: str, error: HepError, peer: Address | None, received: float) -> HepLine:
    where = f"{peer[0]}:{peer[1]}" if peer else "?"
    raw = f"bad HEP packet from {where}: {error}"
    return HepLine(
        source, received, raw, ParsedLine("raw", "WARNING", None, None, None, raw, None), None, peer
    )


Subscriber = Callable[[HepLine], None]


class HepReceiver:
    """Listens on ``listens`` from ``start()`` to ``stop()``; every packet becomes a HepLine handed to the
    subscribers, in the receiver's thread."""

    def __init__(self, listens: Sequence[Listen | str], name: str = "hep") -> None:
        self.name = name
        self.listens = [Listen.parse(x) if isinstance(x, str) else x for x in listens]
        if not self.listens:
            raise ValueError("a HEP receiver needs at least one udp:/tcp: listen address")
        self.addresses: list[Listen] = []  # bound addresses (a port 0 filled in)
        self.received = 0  # packets decoded
        self.errors: list[str] = []  # the last bad packets, newest last
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None

    # -- lifetime ---------------------------------------------------------------------------------

    def start(self) -> HepReceiver:
        """Bind every address now (errors surface here, in the caller), then serve in a thread."""
        if self._thread is not None:
            return self
        sockets = [self._bind(listen) for listen in self.listens]
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(sockets, ready), name=f"hep-{self.name}", daemon=True
        )
        self._thread.start()
        if not ready.wait(5.0):
            raise RuntimeError(f"HEP receiver {self.name} did not start within 5 s")
        return self

    def _bind(self, listen: Listen) -> socket.socket:
        family = socket.AF_INET6 if ":" in listen.host else socket.AF_INET
        kind = socket.SOCK_DGRAM if listen.transport == "udp" else socket.SOCK_STREAM
        sock = socket.socket(family, kind)
        try:
            if kind == socket.SOCK_DGRAM:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            else:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((listen.host, listen.port))
            if kind == socket.SOCK_STREAM:
                sock.listen(16)
        except OSError as exc:
            sock.close()
            raise OSError(
                exc.errno, f"HEP receiver {self.name} cannot listen on {listen}: {exc.strerror}"
            ) from exc
        sock.setblocking(False)
        self.addresses.append(Listen(listen.transport, listen.host, int(sock.getsockname()[1])))
        return sock

    def address(self, transport: str = "udp") -> Address:
        """The bound (host, port) of the first listener of ``transport``."""
        for listen in self.addresses:
            if listen.transport == transport:
                return listen.host, listen.port
        raise LookupError(f"HEP receiver {self.name} has no {transport} listener (started: {self.addresses})")

    def stop(self, timeout: float = 5.0) -> None:
        loop, thread, stopped = self._loop, self._thread, self._stopped
        if loop is None or thread is None or stopped is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop already ended
            loop.call_soon_threadsafe(stopped.set)
        thread.join(timeout)
        self._thread = self._loop = None

    def _run(self, sockets: list[socket.socket], ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(sockets, ready))
        finally:
            loop.close()
            for sock in sockets:
                sock.close()

    async def _serve(self, sockets: list[socket.socket], ready: threading.Event) -> None:
        loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        closers: list[Callable[[], object]] = []
        for sock in sockets:
            if sock.type == socket.SOCK_DGRAM:
                transport, _ = await loop.create_datagram_endpoint(lambda: _Datagrams(self), sock=sock)
                closers.append(transport.close)
            else:
                server = await asyncio.start_server(self._stream, sock=sock)
                closers.append(server.close)
        ready.set()
        await self._stopped.wait()
        for close in closers:
            close()

    # -- packets ----------------------------------------------------------------------------------

    def _deliver(self, line: HepLine) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
            if line.packet is None:
                self.errors = [*self.errors[-99:], line.raw]
            else:
                self.received += 1
        for subscriber in subscribers:
            subscriber(line)

    def datagram(self, data: bytes, peer: Address) -> None:
        received = time.time()
        try:
            packet = decode_packet(data)
        except HepError as exc:
            self._deliver(bad_packet_line(self.name, exc, peer, received))
            return
        self._deliver(hep_line(self.name, packet, peer, received))

    async def _stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer_info = writer.get_extra_info("peername")
        peer = (str(peer_info[0]), int(peer_info[1])) if peer_info else None
        decoder = HepStreamDecoder()
        try:
            while data := await reader.read(65536):
                received = time.time()
                try:
                    packets = decoder.feed(data)
                except HepStreamError as exc:
                    for packet in exc.decoded:
                        self._deliver(hep_line(self.name, packet, peer, received))
                    self._deliver(bad_packet_line(self.name, exc, peer, received))
                    if exc.fatal:
                        return  # out of step: nothing later on this connection can be read
                    continue
                for packet in packets:
                    self._deliver(hep_line(self.name, packet, peer, received))
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    # -- subscribers ------------------------------------------------------------------------------

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        with self._lock:
            self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._subscribers.remove(subscriber)

        return unsubscribe

    def source(self) -> HepSource:
        """A fresh log source over this receiver (one per scenario); entering it starts the receiver
        when it is not running yet (a bind error then lands in the hub's errors, like any source's)."""
        return HepSource(self)


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, receiver: HepReceiver) -> None:
        self.receiver = receiver

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.receiver.datagram(data, (str(addr[0]), int(addr[1])))


class HepSource:
    """The log source: HepLines received after ``__aenter__``, until ``__aexit__``."""

    def __init__(self, receiver: HepReceiver) -> None:
        self.receiver = receiver
        self.name = receiver.name
        self._queue: asyncio.Queue[LogLine | None] = asyncio.Queue()
        self._unsubscribe: Callable[[], None] | None = None

    async def __aenter__(self) -> HepSource:
        self.receiver.start()
        loop = asyncio.get_running_loop()

        def deliver(line: HepLine) -> None:
            with contextlib.suppress(RuntimeError):  # the scenario's loop is gone: nobody listens
                loop.call_soon_threadsafe(self._queue.put_nowait, line)

        self._unsubscribe = self.receiver.subscribe(deliver)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._queue.put_nowait(None)

    def __aiter__(self) -> AsyncIterator[LogLine]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[LogLine]:
        while (line := await self._queue.get()) is not None:
            yield line


@dataclass
class HepCapture:
    """A target's capture point as its log-source factory: calling it gives a fresh :class:`HepSource`.

    ``complete`` says the capture agent mirrors every message the element reads and writes, before its
    script runs (Kamailio's siptrace with ``trace_mode`` 1, Kazoo 5.x's SIP_TRACE_ALL_ROLE): only then
    may a missing leg count as proof (a drop, a message that was never relayed) and may the capture be
    held to parity with the carrier's own wire. Kazoo's SIP_TRACE_ROLE traces from the script, after
    the sanity checks, and is not complete.
    """

    receiver: HepReceiver
    complete: bool = False

    @property
    def name(self) -> str:
        return self.receiver.name

    def __call__(self) -> HepSource:
        return self.receiver.source()

    def close(self) -> None:
        self.receiver.stop()
