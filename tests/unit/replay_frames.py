"""Hand-built packets and capture files for the capture-reader tests.

Headers are packed with struct here (not with the library the reader uses), so the tests check the
reader against an independent construction. Transport checksums are left 0 (the reader ignores them).
"""

from __future__ import annotations

import ipaddress
import struct
from pathlib import Path

from scapy.utils import RawPcapNgWriter, RawPcapWriter

LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_SLL, LINKTYPE_SLL2 = 1, 101, 113, 276
ETH_IPV4, ETH_IPV6 = 0x0800, 0x86DD


def _checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4(
    src: str, dst: str, proto: int, payload: bytes, *, ident: int = 1, offset: int = 0, more: bool = False
) -> bytes:
    flags_frag = (0x2000 if more else 0) | (offset // 8)
    head = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(payload),
        ident,
        flags_frag,
        64,
        proto,
        0,
        ipaddress.IPv4Address(src).packed,
        ipaddress.IPv4Address(dst).packed,
    )
    head = head[:10] + struct.pack("!H", _checksum(head)) + head[12:]
    return head + payload


def ipv4_fragments(src: str, dst: str, proto: int, payload: bytes, size: int, *, ident: int) -> list[bytes]:
    """``payload`` (a whole UDP datagram) cut into IPv4 fragments of ``size`` bytes (a multiple of 8)."""
    return [
        ipv4(
            src,
            dst,
            proto,
            payload[off : off + size],
            ident=ident,
            offset=off,
            more=off + size < len(payload),
        )
        for off in range(0, len(payload), size)
    ]


def ipv6(src: str, dst: str, next_header: int, payload: bytes) -> bytes:
    return (
        struct.pack(
            "!IHBB16s16s",
            6 << 28,
            len(payload),
            next_header,
            64,
            ipaddress.IPv6Address(src).packed,
            ipaddress.IPv6Address(dst).packed,
        )
        + payload
    )


def ipv6_fragment(
    src: str, dst: str, next_header: int, chunk: bytes, *, ident: int, offset: int, more: bool
) -> bytes:
    frag = struct.pack("!BBHI", next_header, 0, offset | (1 if more else 0), ident)
    return ipv6(src, dst, 44, frag + chunk)


def udp(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def tcp(sport: int, dport: int, seq: int, payload: bytes = b"", *, ack: int = 0, flags: int = 0x18) -> bytes:
    return (
        struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack, 5 << 4, flags, 65535, 0, 0) + payload
    )


def ether(ip: bytes) -> bytes:
    ethertype = ETH_IPV6 if ip[0] >> 4 == 6 else ETH_IPV4
    return b"\x00" * 12 + struct.pack("!H", ethertype) + ip


def sll(ip: bytes) -> bytes:
    """Linux cooked v1 (what ``tshark -i any`` wrote before SLL2)."""
    ethertype = ETH_IPV6 if ip[0] >> 4 == 6 else ETH_IPV4
    return struct.pack("!HHH8sH", 0, 772, 6, b"\x00" * 8, ethertype) + ip


def sll2(ip: bytes) -> bytes:
    """Linux cooked v2 (``tshark -i any`` today)."""
    ethertype = ETH_IPV6 if ip[0] >> 4 == 6 else ETH_IPV4
    return struct.pack("!HHIHBB8s", ethertype, 0, 1, 772, 0, 6, b"\x00" * 8) + ip


def write_pcap(path: Path, linktype: int, frames: list[bytes], t0: float = 1_764_130_000.0) -> Path:
    writer = RawPcapWriter(str(path), linktype=linktype, sync=True)
    writer.linktype = linktype  # scapy reads linktype=0 (DLT_NULL) as "not given"
    writer.write_header(None)
    for i, frame in enumerate(frames):
        t = t0 + i / 1000
        writer.write_packet(frame, sec=int(t), usec=round((t % 1) * 1e6))
    writer.close()
    return path


def write_pcapng(path: Path, frames: list[tuple[int, str, bytes]], t0: float = 1_764_130_000.0) -> Path:
    """``frames``: (linktype, interface name, frame) — one interface block per name."""
    writer = RawPcapNgWriter(str(path))
    writer.linktype = frames[0][0]  # known: scapy need not guess (and warn)
    writer.write_header(None)  # the section header block
    for i, (linktype, ifname, frame) in enumerate(frames):
        t = t0 + i / 1000
        writer._write_packet(frame, linktype, sec=t, ifname=ifname.encode())
    writer.close()
    return path
