"""SIP messages out of capture files (pcap and pcapng), for replaying a customer's captured INVITE.

scapy reads the file (pcap or pcapng, any mix of link types: Ethernet, Linux cooked SLL/SLL2, raw IP,
BSD loopback) and decodes down to the IP layer. From there this module works on the packets' raw bytes so
that what comes out is byte exact: IPv4/IPv6 fragments are put back together, TCP segments are ordered by
sequence number and the stream is cut into messages with :class:`~harness.sip.framing.StreamFramer`.
Only payloads that start like a SIP message are kept (RTP, HTTP and TLS records are skipped), and the
SIP messages inside HEP packets (a HEP stream saved to a file: datagrams, or HEP3 over TCP), with the
addresses, transport and capture time the HEP packet names.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

from scapy.error import Scapy_Exception
from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment
from scapy.packet import Packet
from scapy.utils import PcapReader

from harness.hep import HepError, HepPacket, HepStreamDecoder, decode_packet, looks_like_hep
from harness.net.exchange import Address
from harness.sip.errors import SipParseError
from harness.sip.framing import FramingError, StreamFramer
from harness.sip.message import Request, parse_message

_SIP_START = re.compile(rb"^(?:SIP/[0-9]\.[0-9] [0-9]{3}|[A-Za-z]+ \S+ SIP/[0-9]\.[0-9]\r?\n)")
_START_LINE = re.compile(rb"^(?:SIP/[0-9]\.[0-9] [0-9]{3} |[A-Za-z]+ [^ \r\n]+ SIP/[0-9]\.[0-9]\r?\n)", re.M)
_RESYNC_TAIL = 512
# a HEP3 packet start on a stream: the id, a length, then a generic chunk (every writer puts the
# address family first: vendor 0x0000, type 0x00xx); used to join a HEP stream mid-connection
_HEP3_START = re.compile(rb"HEP3[\s\S]{2}\x00\x00\x00")
_PROTO_TCP, _PROTO_UDP = 6, 17
MAX_STREAM_MESSAGE = 1 << 20  # a TCP stream that has not framed a message within 1 MiB is not SIP


@dataclass(frozen=True)
class CapturedMessage:
    """One SIP message as captured. ``time`` is epoch seconds (pcap) or as the source gives it."""

    time: float
    src: Address
    dst: Address
    transport: str  # "udp" | "tcp" (pcap) or the trace's own name ("tls", "ws", ...)
    data: bytes

    @property
    def first_line(self) -> str:
        return self.data.split(b"\n", 1)[0].rstrip(b"\r")[:200].decode("utf-8", "replace")


def looks_like_sip(data: bytes) -> bool:
    return bool(_SIP_START.match(data))


# -- IP layer --------------------------------------------------------------------------------------


@dataclass
class _Fragments:
    parts: dict[int, bytes] = field(default_factory=dict)  # byte offset -> data
    total: int | None = None  # known once the last fragment (MF=0) arrived

    def add(self, offset: int, data: bytes, last: bool) -> bytes | None:
        self.parts[offset] = data
        if last:
            self.total = offset + len(data)
        if self.total is None:
            return None
        out = bytearray()
        for off in sorted(self.parts):
            if off > len(out):
                return None  # a hole: wait for more fragments
            out[off : off + len(self.parts[off])] = self.parts[off]
        return bytes(out[: self.total]) if len(out) >= self.total else None


@dataclass(frozen=True)
class _Datagram:
    """A whole IP payload (after reassembly) with its addresses and protocol number."""

    src: str
    dst: str
    proto: int
    payload: bytes


class _Defragmenter:
    def __init__(self) -> None:
        self._pending: dict[tuple[object, ...], _Fragments] = {}

    def _add(self, key: tuple[object, ...], offset: int, data: bytes, last: bool) -> bytes | None:
        frags = self._pending.setdefault(key, _Fragments())
        whole = frags.add(offset, data, last)
        if whole is not None:
            del self._pending[key]
        return whole

    def feed(self, pkt: Packet) -> _Datagram | None:
        if IP in pkt:
            return self._ipv4(bytes(pkt[IP]))
        if IPv6 in pkt:
            return self._ipv6(pkt)
        return None

    def _ipv4(self, raw: bytes) -> _Datagram | None:
        if len(raw) < 20:
            return None
        ihl = (raw[0] & 0x0F) * 4
        total, ident, flags_frag = struct.unpack("!HHH", raw[2:8])
        proto = raw[9]
        src, dst = ".".join(map(str, raw[12:16])), ".".join(map(str, raw[16:20]))
        # total length 0 appears in captures of segmentation-offloaded packets: trust the captured size
        payload = raw[ihl:total] if total else raw[ihl:]
        offset, more = (flags_frag & 0x1FFF) * 8, bool(flags_frag & 0x2000)
        if offset or more:
            whole = self._add(("4", src, dst, ident, proto), offset, payload, not more)
            if whole is None:
                return None
            payload = whole
        return _Datagram(src, dst, proto, payload)

    def _ipv6(self, pkt: Packet) -> _Datagram | None:
        ip6 = pkt[IPv6]
        src, dst = str(ip6.src), str(ip6.dst)
        if IPv6ExtHdrFragment in pkt:
            frag = pkt[IPv6ExtHdrFragment]
            whole = self._add(
                ("6", src, dst, int(frag.id)), int(frag.offset) * 8, bytes(frag.payload), not frag.m
            )
            return None if whole is None else _Datagram(src, dst, int(frag.nh), whole)
        layer = ip6.payload
        while layer is not None and layer.name.startswith("IPv6 Extension Header"):
            layer = layer.payload
        proto = {"UDP": _PROTO_UDP, "TCP": _PROTO_TCP}.get(getattr(layer, "name", ""), -1)
        return None if proto < 0 else _Datagram(src, dst, proto, bytes(layer))


# -- transport layer -------------------------------------------------------------------------------


def _seq_diff(a: int, b: int) -> int:
    """a - b in 32-bit sequence space (negative when a is before b)."""
    d = (a - b) & 0xFFFFFFFF
    return d - (1 << 32) if d >= 1 << 31 else d


@dataclass
class _TcpFlow:
    """One direction of one TCP connection."""

    next_seq: int | None = None
    ahead: dict[int, bytes] = field(default_factory=dict)  # out-of-order segments by sequence number
    framer: StreamFramer = field(default_factory=lambda: StreamFramer(MAX_STREAM_MESSAGE))
    in_sync: bool = True  # False: skip bytes up to the next SIP start line (joined mid-stream, or lost)
    skipped: bytes = b""  # the tail of skipped bytes, in case a start line straddles two segments
    hep: HepStreamDecoder | None = None  # a HEP3 stream (a capture agent's connection to its collector)

    def segment(self, seq: int, data: bytes) -> list[bytes]:
        if self.next_seq is None:  # capture started mid-connection, maybe mid-message
            self.next_seq, self.in_sync = seq, False
        self.ahead[seq] = data
        ordered = bytearray()
        progressed = True
        while progressed:
            progressed = False
            for s in list(self.ahead):
                d = _seq_diff(s, self.next_seq)
                chunk = self.ahead[s]
                if d > 0:
                    continue
                del self.ahead[s]
                if -d < len(chunk):  # drop what a retransmission repeats, keep what is new
                    ordered += chunk[-d:]
                    self.next_seq = (self.next_seq + len(chunk) + d) & 0xFFFFFFFF
                    progressed = True
        return self._frame(bytes(ordered)) if ordered else []

    def _frame(self, data: bytes) -> list[bytes]:
        """SIP messages; for a HEP stream, its packets (framed by their length, decoded by the reader)."""
        if self.hep is None and self.in_sync and not self.framer.pending and data.startswith(b"HEP3"):
            self.hep = HepStreamDecoder()
        elif self.hep is None and not self.in_sync and (m := _HEP3_START.search(self.skipped + data)):
            # joined a capture agent's long-lived connection mid-stream: pick up at a packet start
            data, self.skipped, self.in_sync = (self.skipped + data)[m.start() :], b"", True
            self.hep = HepStreamDecoder()
        if self.hep is not None:
            try:
                return self.hep.feed_frames(data)
            except HepError:  # out of step for good: the rest of this connection cannot be read
                return []
        if not self.in_sync:
            data = self.skipped + data
            m = _START_LINE.search(data)
            if m is None:
                self.skipped = data[-_RESYNC_TAIL:]
                return []
            data, self.skipped, self.in_sync = data[m.start() :], b"", True
        try:
            return self.framer.feed(data)
        except FramingError:  # not SIP, or a message cut: resynchronize on the next start line
            self.framer = StreamFramer(MAX_STREAM_MESSAGE)
            self.in_sync = False
            return []


class _Reader:
    def __init__(self) -> None:
        self.defrag = _Defragmenter()
        self.flows: dict[tuple[Address, Address], _TcpFlow] = {}
        self.out: list[CapturedMessage] = []

    def packet(self, pkt: Packet) -> None:
        dgram = self.defrag.feed(pkt)
        if dgram is None:
            return
        t = float(pkt.time)
        if dgram.proto == _PROTO_UDP and len(dgram.payload) >= 8:
            sport, dport, length = struct.unpack("!HHH", dgram.payload[:6])
            data = dgram.payload[8:length] if length >= 8 else dgram.payload[8:]
            if looks_like_sip(data):
                self.out.append(CapturedMessage(t, (dgram.src, sport), (dgram.dst, dport), "udp", data))
            elif looks_like_hep(data):
                self._hep(t, data)
        elif dgram.proto == _PROTO_TCP and len(dgram.payload) >= 20:
            self._tcp(t, dgram)

    def _tcp(self, t: float, dgram: _Datagram) -> None:
        sport, dport, seq = struct.unpack("!HHI", dgram.payload[:8])
        offset, flags = (dgram.payload[12] >> 4) * 4, dgram.payload[13]
        key = ((dgram.src, sport), (dgram.dst, dport))
        if flags & 0x02:  # SYN: a new connection; data starts after the SYN's sequence number
            self.flows[key] = _TcpFlow(next_seq=(seq + 1) & 0xFFFFFFFF)
            return
        data = dgram.payload[offset:]
        if not data:
            return
        flow = self.flows.setdefault(key, _TcpFlow())
        for msg in flow.segment(seq, data):
            if flow.hep is not None:
                self._hep(t, msg)
            elif looks_like_sip(msg):
                self.out.append(CapturedMessage(t, key[0], key[1], "tcp", msg))

    def _hep(self, t: float, data: bytes) -> None:
        """The SIP message a HEP packet carries; packets that do not decode, and keep-alives, logs or
        RTCP reports, are skipped like any other payload that is not SIP."""
        try:
            packet = decode_packet(data)
        except HepError:
            return
        if packet.is_sip:
            self.out.append(hep_message(packet, t))


def hep_message(packet: HepPacket, fallback_time: float) -> CapturedMessage:
    """A captured SIP message as the HEP packet names it: its own addresses, transport and time. An
    unknown transport is taken as UDP (the replay says when it sends over another than captured)."""
    stamp = packet.timestamp
    return CapturedMessage(
        time=stamp if stamp is not None else fallback_time,
        src=packet.src or ("", 0),
        dst=packet.dst or ("", 0),
        transport=packet.transport or "udp",
        data=packet.payload,
    )


def read_messages(path: str | Path) -> list[CapturedMessage]:
    """Every SIP message in a pcap or pcapng file, in capture order (a TCP message at its last segment)."""
    reader = _Reader()
    try:
        packets = PcapReader(str(path))
    except Scapy_Exception as exc:
        raise ValueError(f"{path}: not a pcap or pcapng file ({exc})") from exc
    with packets:
        for pkt in packets:
            reader.packet(pkt)
    return reader.out


def find_invites(
    messages: list[CapturedMessage], call_id: str | None = None, *, unique: bool = True
) -> list[CapturedMessage]:
    """The INVITE requests among ``messages`` (optionally of one Call-ID); ``unique`` drops retransmissions
    (a later message with the same bytes)."""
    out: list[CapturedMessage] = []
    seen: set[bytes] = set()
    for m in messages:
        if not m.data.startswith(b"INVITE "):
            continue
        try:
            msg = parse_message(m.data)
            if not isinstance(msg, Request) or (call_id is not None and msg.call_id != call_id):
                continue
        except SipParseError:
            continue
        if unique and m.data in seen:
            continue
        seen.add(m.data)
        out.append(m)
    return out


__all__ = ["CapturedMessage", "find_invites", "hep_message", "looks_like_sip", "read_messages"]
