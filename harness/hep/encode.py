"""Write HEP packets (the layout is spec.py's). For tests and for tools that send a capture as HEP."""

from __future__ import annotations

import ipaddress
import zlib

from harness.hep import spec
from harness.hep.errors import HepError
from harness.hep.packet import Address, HepPacket
from harness.hep.spec import ChunkType


def _chunk(ctype: int, value: bytes, vendor: int = spec.VENDOR_GENERIC) -> bytes:
    length = spec.CHUNK_HEADER.size + len(value)
    if length > spec.MAX_PACKET:
        raise HepError(
            f"a chunk of {length} bytes does not fit its 16-bit length (HEP3 packets are 16-bit)", 4
        )
    return spec.CHUNK_HEADER.pack(vendor, ctype, length) + value


def _uint(ctype: ChunkType, value: int) -> bytes:
    return _chunk(ctype, value.to_bytes(spec.FIXED_SIZE[ctype], "big"))


def _family(packet: HepPacket) -> int:
    if packet.family is not None:
        return packet.family
    for address in (packet.src, packet.dst):
        if address is not None:
            return spec.FAMILY_IPV6 if ":" in address[0] else spec.FAMILY_IPV4
    return spec.FAMILY_IPV4


def _address_chunks(address: Address | None, v4: ChunkType, v6: ChunkType) -> bytes:
    if address is None:
        return b""
    ip = ipaddress.ip_address(address[0])
    return _chunk(v4 if ip.version == 4 else v6, ip.packed)


def encode_v3(packet: HepPacket, *, compress: bool | None = None) -> bytes:
    """A HEP3 packet, chunks in the order Kamailio's siptrace writes them. ``compress`` (default: the
    packet's own ``compressed``) sends the payload zlib-compressed in chunk 0x0010."""
    compress = packet.compressed if compress is None else compress
    parts = [
        _uint(ChunkType.IP_FAMILY, _family(packet)),
        _uint(ChunkType.IP_PROTOCOL, packet.ip_protocol) if packet.ip_protocol is not None else b"",
        _address_chunks(packet.src, ChunkType.IPV4_SRC, ChunkType.IPV6_SRC),
        _address_chunks(packet.dst, ChunkType.IPV4_DST, ChunkType.IPV6_DST),
        _uint(ChunkType.SRC_PORT, packet.src[1]) if packet.src is not None else b"",
        _uint(ChunkType.DST_PORT, packet.dst[1]) if packet.dst is not None else b"",
    ]
    optional_uints = (
        (ChunkType.TIME_SECONDS, packet.seconds),
        (ChunkType.TIME_MICROSECONDS, packet.microseconds),
        (ChunkType.PROTOCOL_TYPE, packet.protocol_type),
        (ChunkType.CAPTURE_ID, packet.capture_id),
        (ChunkType.KEEP_ALIVE, packet.keep_alive),
        (ChunkType.VLAN, packet.vlan),
    )
    parts += [_uint(ctype, value) for ctype, value in optional_uints if value is not None]
    for ctype, octets in (
        (ChunkType.CORRELATION_ID, packet.correlation_id),
        (ChunkType.AUTH_KEY, packet.auth_key),
        (ChunkType.NODE_NAME, packet.node_name.encode() if packet.node_name is not None else None),
    ):
        if octets is not None:
            parts.append(_chunk(ctype, octets))
    if packet.payload or not packet.keep_alive:
        if compress:
            parts.append(_chunk(ChunkType.COMPRESSED_PAYLOAD, zlib.compress(packet.payload)))
        else:
            parts.append(_chunk(ChunkType.PAYLOAD, packet.payload))
    parts += [_chunk(c.type, c.value, c.vendor) for c in packet.extra]
    body = b"".join(parts)
    total = spec.HEP3_HEADER.size + len(body)
    if total > spec.MAX_PACKET:
        raise HepError(f"a HEP3 packet of {total} bytes does not fit its 16-bit length", 4)
    return spec.HEP3_HEADER.pack(spec.HEP3_ID, total) + body


def encode_v2(packet: HepPacket, *, network_order: bool = False, version: int = 2) -> bytes:
    """A HEP v2 (or v1) packet as Kamailio writes it: header length without the time header, time in
    little endian. ``network_order=True`` writes it as Kazoo's Erlang library does instead."""
    if packet.src is None or packet.dst is None:
        raise HepError("HEP v1/v2 needs both addresses", 0)
    src, dst = ipaddress.ip_address(packet.src[0]), ipaddress.ip_address(packet.dst[0])
    if src.version != dst.version:
        raise HepError("HEP v1/v2 addresses must be of one family", 0)
    address_size = 4 if src.version == 4 else 16
    family = packet.family if packet.family is not None else _family(packet)
    header_length = spec.V1V2_HEADER.size + 2 * address_size
    if version == 2 and network_order:
        header_length += spec.V2_TIME_BE.size
    head = spec.V1V2_HEADER.pack(
        version, header_length, family, packet.ip_protocol or 0x11, packet.src[1], packet.dst[1]
    )
    out = head + src.packed + dst.packed
    if version == 2:
        layout = spec.V2_TIME_BE if network_order else spec.V2_TIME_LE
        out += layout.pack(packet.seconds or 0, packet.microseconds or 0, (packet.capture_id or 0) & 0xFFFF)
    return out + packet.payload
