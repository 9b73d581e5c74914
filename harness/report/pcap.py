"""A libpcap file of the harness's own traffic, synthesized from exchange records (no capture privileges).

Every wire event becomes Ethernet/IP packets with correct lengths and checksums (built by scapy) and the
event's ``wall`` time as timestamp, so Wireshark/tshark show the test call as if captured on ``lo``:

- UDP: one datagram per message, as one IP packet (what a loopback capture holds, since ``lo``'s MTU is
  64 KiB, and what tshark dissects directly). ``mtu=`` splits bigger ones into IP fragments instead, as
  they would travel over an Ethernet path; tshark reassembles those too.
- TCP and TLS: each connection gets a synthesized SYN / SYN-ACK / ACK handshake before its first message,
  then PSH/ACK segments with consistent sequence and acknowledgement numbers. TLS messages are written in
  clear (the exchange holds the plaintext), on their real ports.
"""

from __future__ import annotations

import hashlib
import io
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from scapy.layers.inet import IP, TCP, UDP, fragment
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw
from scapy.utils import PcapWriter

from harness.net.exchange import Address, Exchange, WireEvent

LINKTYPE_ETHERNET = 1
MAX_SEGMENT = 65000  # data bytes per synthesized TCP segment (loopback's MSS is 65483)
_HANDSHAKE_STEP = 1e-6  # the synthesized handshake is placed just before the first data segment


def _ip(src: Address, dst: Address, ident: int, **kw: Any) -> Packet:
    if ipaddress.ip_address(src[0]).version == 6:
        return IPv6(src=src[0], dst=dst[0])
    return IP(src=src[0], dst=dst[0], id=ident & 0xFFFF, **kw)


def _isn(a: Address, b: Address) -> int:
    """A stable initial sequence number per direction, so the same exchange gives the same file."""
    digest = hashlib.sha256(f"{a[0]}:{a[1]}>{b[0]}:{b[1]}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


@dataclass
class _Stream:
    """One synthesized TCP connection: the next sequence number to send in each direction."""

    next_seq: dict[Address, int] = field(default_factory=dict)


@dataclass
class _Synth:
    mtu: int | None
    ident: int = 0
    streams: dict[tuple[Address, Address], _Stream] = field(default_factory=dict)

    def frame(self, src: Address, dst: Address, l4: Packet, t: float, **ip_kw: Any) -> Packet:
        self.ident += 1
        pkt = (
            Ether(src="00:00:00:00:00:00", dst="00:00:00:00:00:00") / _ip(src, dst, self.ident, **ip_kw) / l4
        )
        pkt.time = t
        return pkt

    def udp(self, e: WireEvent) -> list[Packet]:
        pkt = self.frame(e.src, e.dst, UDP(sport=e.src[1], dport=e.dst[1]) / Raw(e.data), e.wall)
        if self.mtu is None or IP not in pkt or len(pkt[IP]) <= self.mtu:
            return [pkt]
        frags: list[Packet] = []
        for frag in fragment(pkt[IP], fragsize=(self.mtu - 20) // 8 * 8):
            f = Ether(src="00:00:00:00:00:00", dst="00:00:00:00:00:00") / frag
            f.time = e.wall
            frags.append(f)
        return frags

    def tcp(self, e: WireEvent) -> list[Packet]:
        key = (min(e.src, e.dst), max(e.src, e.dst))
        out: list[Packet] = []
        stream = self.streams.get(key)
        if stream is None:  # the first sender is the client: it opened the connection
            stream = self.streams[key] = _Stream()
            c, s = e.src, e.dst
            ic, is_ = _isn(c, s), _isn(s, c)
            t0 = e.wall - 3 * _HANDSHAKE_STEP
            out.append(
                self.frame(c, s, TCP(sport=c[1], dport=s[1], flags="S", seq=ic, window=65495), t0, flags="DF")
            )
            out.append(
                self.frame(
                    s,
                    c,
                    TCP(sport=s[1], dport=c[1], flags="SA", seq=is_, ack=ic + 1, window=65483),
                    t0 + _HANDSHAKE_STEP,
                    flags="DF",
                )
            )
            out.append(
                self.frame(
                    c,
                    s,
                    TCP(sport=c[1], dport=s[1], flags="A", seq=ic + 1, ack=is_ + 1, window=65495),
                    t0 + 2 * _HANDSHAKE_STEP,
                    flags="DF",
                )
            )
            stream.next_seq = {c: (ic + 1) & 0xFFFFFFFF, s: (is_ + 1) & 0xFFFFFFFF}
        for start in range(0, max(len(e.data), 1), MAX_SEGMENT):
            chunk = e.data[start : start + MAX_SEGMENT]
            seq, ack = stream.next_seq[e.src], stream.next_seq[e.dst]
            seg = TCP(sport=e.src[1], dport=e.dst[1], flags="PA", seq=seq, ack=ack, window=65495) / Raw(chunk)
            out.append(self.frame(e.src, e.dst, seg, e.wall, flags="DF"))
            stream.next_seq[e.src] = (seq + len(chunk)) & 0xFFFFFFFF
        return out

    def packets(self, e: WireEvent) -> list[Packet]:
        return self.udp(e) if e.transport == "udp" else self.tcp(e)


def _events(exchanges: Iterable[Exchange]) -> list[WireEvent]:
    events = [e for x in exchanges for e in x.events]
    events.sort(key=lambda e: e.wall)  # stable: same-time events keep their order
    return events


def _write(exchanges: Iterable[Exchange], out: BinaryIO, mtu: int | None) -> int:
    synth = _Synth(mtu)
    writer = PcapWriter(out, linktype=LINKTYPE_ETHERNET, sync=False)
    count = 0
    for e in _events(exchanges):
        for pkt in synth.packets(e):
            writer.write(pkt)
            count += 1
    if count == 0:  # an empty capture still needs its file header
        writer.write_header(None)
    writer.flush()
    return count


def pcap_bytes(exchanges: Iterable[Exchange], *, mtu: int | None = None) -> bytes:
    """The capture file's bytes (see :func:`write_pcap`)."""
    buf = io.BytesIO()
    _write(exchanges, buf, mtu)
    return buf.getvalue()


def write_pcap(exchanges: Iterable[Exchange], path: str | Path, *, mtu: int | None = None) -> int:
    """Write the exchanges' traffic as a classic pcap (LINKTYPE_ETHERNET); returns the packets written.

    ``mtu`` (e.g. 1500) fragments UDP datagrams whose IP packet is larger; None keeps them whole.
    """
    with open(path, "wb") as f:
        return _write(exchanges, f, mtu)


__all__ = ["LINKTYPE_ETHERNET", "pcap_bytes", "write_pcap"]
