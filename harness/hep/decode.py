"""Decode one HEP packet (v1, v2 or v3) from bytes. The layout is in spec.py; this module only reads it.

``decode_packet(data)`` wants exactly one packet: a HEP3 packet whose declared length differs from
``len(data)`` is an error (HepTruncated when bytes are missing). Every failure is a HepError with the
offset where it was found, and nothing else escapes.
"""

from __future__ import annotations

import ipaddress
import socket
import zlib
from collections.abc import Callable
from typing import Any

from harness.hep import spec
from harness.hep.errors import HepError, HepTruncated
from harness.hep.packet import Chunk, HepPacket
from harness.hep.spec import ChunkType

MAX_DECOMPRESSED = 1 << 20  # a compressed payload inflating past 1 MiB is not a SIP message


def looks_like_hep(data: bytes) -> bool:
    """Whether ``data`` starts like a HEP packet (a cheap test before decoding, for capture files)."""
    if data[:4] == spec.HEP3_ID:
        return True
    if len(data) < spec.V1V2_HEADER.size or data[0] not in (1, 2):
        return False
    return data[1] in spec.V1V2_HEADER_LENGTHS and data[3] in spec.IP_PROTOCOLS


def decode_packet(data: bytes) -> HepPacket:
    """The packet in ``data`` (HEP3 by its "HEP3" id, HEP v1/v2 by their version byte)."""
    if data[:4] == spec.HEP3_ID:
        return decode_v3(data)
    if len(data) < 4 and spec.HEP3_ID.startswith(data):
        raise HepTruncated(f"{len(data)} bytes: too short for a HEP3 header", len(data))
    if data[:1] in (b"\x01", b"\x02"):
        return decode_v1v2(data)
    if not data:
        raise HepTruncated("no bytes", 0)
    raise HepError(f"not a HEP packet: starts with {data[:4]!r} (HEP3 id, or version byte 1 or 2)", 0)


# -- HEP3 ------------------------------------------------------------------------------------------


def decode_v3(data: bytes) -> HepPacket:
    if len(data) < spec.HEP3_HEADER.size:
        raise HepTruncated(f"{len(data)} bytes: the HEP3 header is {spec.HEP3_HEADER.size}", len(data))
    ident, total = spec.HEP3_HEADER.unpack_from(data)
    if ident != spec.HEP3_ID:
        raise HepError(f"bad HEP3 id {ident!r}", 0)
    if total < spec.HEP3_HEADER.size:
        raise HepError(f"declared length {total} is shorter than the HEP3 header", 4)
    if len(data) < total:
        raise HepTruncated(f"declared length {total}, only {len(data)} bytes", len(data))
    if len(data) > total:
        raise HepError(f"{len(data) - total} bytes after the declared length {total}", total)
    fields: dict[str, Any] = {}
    where: dict[str, int] = {}  # field -> offset of its chunk, for errors found when assembling
    extra: list[Chunk] = []
    offset = spec.HEP3_HEADER.size
    while offset < total:
        if total - offset < spec.CHUNK_HEADER.size:
            raise HepError(f"{total - offset} bytes left, too few for a chunk header", offset)
        vendor, ctype, length = spec.CHUNK_HEADER.unpack_from(data, offset)
        if length < spec.CHUNK_HEADER.size:
            raise HepError(f"chunk 0x{ctype:04x} length {length} is shorter than its header", offset + 4)
        if offset + length > total:
            raise HepError(
                f"chunk 0x{ctype:04x} of {length} bytes runs past the packet's end ({total})", offset + 4
            )
        value = data[offset + spec.CHUNK_HEADER.size : offset + length]
        known = _READERS.get(ctype) if vendor == spec.VENDOR_GENERIC else None
        if known is not None:
            name, reader, member = known
            if name in fields:
                raise HepError(f"chunk 0x{ctype:04x} ({name}) given twice", offset)
            fields[name] = reader(member, value, offset + spec.CHUNK_HEADER.size)
            where[name] = offset
        else:
            extra.append(Chunk(vendor, ctype, value))
        offset += length
    return _assemble(fields, where, extra)


def _fixed(ctype: ChunkType, value: bytes, at: int) -> None:
    size = spec.FIXED_SIZE[ctype]
    if len(value) != size:
        raise HepError(f"chunk 0x{ctype:04x} ({ctype.name}) holds {len(value)} bytes, expected {size}", at)


def _uint(ctype: ChunkType, value: bytes, at: int) -> int:
    _fixed(ctype, value, at)
    return int.from_bytes(value, "big")


def _ip(ctype: ChunkType, value: bytes, at: int) -> str:
    _fixed(ctype, value, at)
    return socket.inet_ntop(socket.AF_INET if len(value) == 4 else socket.AF_INET6, value)


def _octets(ctype: ChunkType, value: bytes, at: int) -> bytes:
    return value


def _text(ctype: ChunkType, value: bytes, at: int) -> str:
    return value.decode("utf-8", "replace")


def _inflate(ctype: ChunkType, value: bytes, at: int) -> bytes:
    # wbits 47: zlib or gzip, told apart by their headers (capture agents use either)
    inflater = zlib.decompressobj(47)
    try:
        out = inflater.decompress(value, MAX_DECOMPRESSED)
    except zlib.error as exc:
        raise HepError(f"compressed payload does not inflate: {exc}", at) from exc
    if inflater.unconsumed_tail:
        raise HepError(f"compressed payload inflates past {MAX_DECOMPRESSED} bytes", at)
    if not inflater.eof:
        raise HepError("compressed payload is cut short", at + len(value))
    return out


_Reader = Callable[[ChunkType, bytes, int], Any]
_FIELDS: dict[ChunkType, tuple[str, _Reader]] = {
    ChunkType.IP_FAMILY: ("family", _uint),
    ChunkType.IP_PROTOCOL: ("ip_protocol", _uint),
    ChunkType.IPV4_SRC: ("src4", _ip),
    ChunkType.IPV4_DST: ("dst4", _ip),
    ChunkType.IPV6_SRC: ("src6", _ip),
    ChunkType.IPV6_DST: ("dst6", _ip),
    ChunkType.SRC_PORT: ("src_port", _uint),
    ChunkType.DST_PORT: ("dst_port", _uint),
    ChunkType.TIME_SECONDS: ("seconds", _uint),
    ChunkType.TIME_MICROSECONDS: ("microseconds", _uint),
    ChunkType.PROTOCOL_TYPE: ("protocol_type", _uint),
    ChunkType.CAPTURE_ID: ("capture_id", _uint),
    ChunkType.KEEP_ALIVE: ("keep_alive", _uint),
    ChunkType.AUTH_KEY: ("auth_key", _octets),
    ChunkType.PAYLOAD: ("payload", _octets),
    ChunkType.COMPRESSED_PAYLOAD: ("compressed_payload", _inflate),
    ChunkType.CORRELATION_ID: ("correlation_id", _octets),
    ChunkType.VLAN: ("vlan", _uint),
    ChunkType.NODE_NAME: ("node_name", _text),
}


# by the chunk type's number: what the loop meets (an IntEnum lookup per chunk costs more than the read)
_READERS: dict[int, tuple[str, _Reader, ChunkType]] = {
    int(member): (name, reader, member) for member, (name, reader) in _FIELDS.items()
}


def _assemble(fields: dict[str, Any], where: dict[str, int], extra: list[Chunk]) -> HepPacket:
    if "payload" in fields and "compressed_payload" in fields:
        later = max(where["payload"], where["compressed_payload"])
        raise HepError("both a payload and a compressed payload chunk", later)
    compressed = "compressed_payload" in fields
    payload = fields.pop("compressed_payload") if compressed else fields.pop("payload", b"")
    src_ip = _one_address(fields, where, "src")
    dst_ip = _one_address(fields, where, "dst")
    src_port, dst_port = fields.pop("src_port", None), fields.pop("dst_port", None)
    return HepPacket(
        version=3,
        payload=payload,
        compressed=compressed,
        src=(src_ip, src_port or 0) if src_ip is not None else None,
        dst=(dst_ip, dst_port or 0) if dst_ip is not None else None,
        extra=tuple(extra),
        **fields,
    )


def _one_address(fields: dict[str, Any], where: dict[str, int], side: str) -> str | None:
    v4, v6 = fields.pop(f"{side}4", None), fields.pop(f"{side}6", None)
    if v4 is not None and v6 is not None:
        later = max(where[f"{side}4"], where[f"{side}6"])
        raise HepError(f"both an IPv4 and an IPv6 {side} address chunk", later)
    return v4 if v4 is not None else v6


# -- HEP v1 / v2 -----------------------------------------------------------------------------------


def decode_v1v2(data: bytes) -> HepPacket:
    head = spec.V1V2_HEADER
    if len(data) < head.size:
        raise HepTruncated(f"{len(data)} bytes: the HEP v1/v2 header is {head.size}", len(data))
    version, header_length, family, ip_protocol, src_port, dst_port = head.unpack_from(data)
    if version not in (1, 2):
        raise HepError(f"HEP version {version}: only 1, 2 (this header) and 3 exist", 0)
    layout = spec.V1V2_HEADER_LENGTHS.get(header_length)
    if layout is None:
        known = ", ".join(str(n) for n in spec.V1V2_HEADER_LENGTHS)
        raise HepError(f"header length {header_length} is none of {known}", 1)
    address_size, counts_time = layout
    if counts_time and version == 1:
        raise HepError(f"header length {header_length} counts a time header, which v1 has not", 1)
    offset = head.size
    end = offset + 2 * address_size
    if len(data) < end:
        raise HepTruncated(f"addresses end at byte {end}, only {len(data)} bytes", len(data))
    src = str(ipaddress.ip_address(data[offset : offset + address_size]))
    dst = str(ipaddress.ip_address(data[offset + address_size : end]))
    seconds = microseconds = capture_id = None
    if version == 2:
        time_end = end + spec.V2_TIME_LE.size
        if len(data) < time_end:
            raise HepTruncated(f"the v2 time header ends at byte {time_end}, only {len(data)}", len(data))
        seconds, microseconds, capture_id = _v2_time(data, end)
        end = time_end
    return HepPacket(
        version=version,
        payload=data[end:],
        src=(src, src_port),
        dst=(dst, dst_port),
        family=family,
        ip_protocol=ip_protocol,
        seconds=seconds,
        microseconds=microseconds,
        capture_id=capture_id,
        protocol_type=spec.PROTO_SIP,
    )


def _v2_time(data: bytes, at: int) -> tuple[int, int, int]:
    """Seconds, microseconds, capture id in whichever byte order gives microseconds below a second
    (spec.py: Kamailio writes little endian, the Erlang library network order); little endian when
    both do."""
    little = spec.V2_TIME_LE.unpack_from(data, at)
    if little[1] < spec.MICROSECONDS:
        return little
    big: tuple[int, int, int] = spec.V2_TIME_BE.unpack_from(data, at)
    if big[1] < spec.MICROSECONDS:
        return big
    raise HepError(f"v2 microseconds {little[1]} (or {big[1]}) is a second or more", at + 4)


__all__ = ["decode_packet", "decode_v1v2", "decode_v3", "looks_like_hep"]
