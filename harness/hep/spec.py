"""The HEP wire grammar, written once. Every other module in harness.hep reads its layout from here.

Sources: the HEP3 (EEP) specification (sipcapture/HEP, docs/HEP3_Network_Protocol_Specification_REV_37:
the chunk header, the generic chunk types, the protocol types), checked against two implementations,
sipcapture/heplify-server decoder/hep.go and Kamailio's siptrace; for HEP v1/v2, which have no written
specification, Kamailio's
src/modules/sipcapture/hep.h (the structs) and src/modules/siptrace/siptrace_hep.c (how Kamailio writes
them), and the Erlang hep library Kazoo ships (deps/hep_erlang-1.3.0/src/hep_v2.erl).

HEP3 (all integers in network byte order):

    packet  = "HEP3" total-length:uint16 *chunk        ; total-length counts the whole packet
    chunk   = vendor-id:uint16 type-id:uint16 length:uint16 value
                                                      ; length counts the 6 header bytes too
    vendor-id 0x0000 is the generic (spec) namespace; other vendors' chunks are kept, not interpreted.

HEP v1 and v2 (a fixed header, then the payload to the end of the datagram: no length, so HEP v1/v2
cannot be framed on a stream):

    v1v2    = version:uint8 header-length:uint8 family:uint8 ip-protocol:uint8
              src-port:uint16 dst-port:uint16            ; ports in network order
              src-address dst-address                  ; 4 bytes each (IPv4) or 16 (IPv6)
              [time]                                   ; version 2 only
              payload
    time    = seconds:uint32 microseconds:uint32 capture-id:uint16 pad:2
                                                      ; C struct hep_timehdr: 10 bytes + 2 of padding

Two writers disagree on v2 and both are in the field: Kamailio (and captagent) set header-length to the
8-byte header plus the addresses (16 or 40) and write the time fields in host order, little endian on
every platform they run on ("to_le" in siptrace_hep.c); the Erlang library counts the time header in
header-length (28 or 52) and writes network order. The decoder accepts both (see decode.py).
"""

from __future__ import annotations

import struct
from enum import IntEnum

HEP3_ID = b"HEP3"
HEP3_HEADER = struct.Struct("!4sH")  # id, total length
CHUNK_HEADER = struct.Struct("!HHH")  # vendor id, type id, length (header included)
MAX_PACKET = 0xFFFF  # total-length is a uint16

VENDOR_GENERIC = 0x0000
# Vendor ids (the spec's "chunk vendor id" table); informational: only generic chunks are interpreted.
VENDORS = {0x0001: "FreeSWITCH", 0x0002: "Kamailio/SER", 0x0003: "OpenSIPS", 0x0004: "Asterisk",
           0x0005: "Homer", 0x0006: "SipXecs"}  # fmt: skip


class ChunkType(IntEnum):
    """Generic chunk types (vendor 0x0000), the spec's "generic chunk types" table."""

    IP_FAMILY = 0x0001  # uint8: 0x02 IPv4, 0x0a IPv6
    IP_PROTOCOL = 0x0002  # uint8: the IP protocol number (0x11 UDP, 0x06 TCP, ...)
    IPV4_SRC = 0x0003  # 4 octets
    IPV4_DST = 0x0004
    IPV6_SRC = 0x0005  # 16 octets
    IPV6_DST = 0x0006
    SRC_PORT = 0x0007  # uint16
    DST_PORT = 0x0008  # uint16
    TIME_SECONDS = 0x0009  # uint32, Unix time
    TIME_MICROSECONDS = 0x000A  # uint32, offset in microseconds
    PROTOCOL_TYPE = 0x000B  # uint8: what the payload is (0x01 SIP, ...)
    CAPTURE_ID = 0x000C  # uint32: the capture agent's id
    KEEP_ALIVE = 0x000D  # uint16: keep-alive timer, seconds
    AUTH_KEY = 0x000E  # octets: authenticate key (plain text)
    PAYLOAD = 0x000F  # octets: the captured packet payload
    COMPRESSED_PAYLOAD = 0x0010  # octets: the payload, compressed (zlib or gzip)
    CORRELATION_ID = 0x0011  # octets: internal correlation id
    VLAN = 0x0012  # uint16
    NODE_NAME = 0x0013  # octets: the capture node's name (heplify, sngrep, Kamailio 5.x hep_capture_group)


# Value sizes of the fixed-size generic chunks; any other generic chunk is octets of any length.
FIXED_SIZE: dict[ChunkType, int] = {
    ChunkType.IP_FAMILY: 1,
    ChunkType.IP_PROTOCOL: 1,
    ChunkType.IPV4_SRC: 4,
    ChunkType.IPV4_DST: 4,
    ChunkType.IPV6_SRC: 16,
    ChunkType.IPV6_DST: 16,
    ChunkType.SRC_PORT: 2,
    ChunkType.DST_PORT: 2,
    ChunkType.TIME_SECONDS: 4,
    ChunkType.TIME_MICROSECONDS: 4,
    ChunkType.PROTOCOL_TYPE: 1,
    ChunkType.CAPTURE_ID: 4,
    ChunkType.KEEP_ALIVE: 2,
    ChunkType.VLAN: 2,
}

FAMILY_IPV4 = 0x02
FAMILY_IPV6 = 0x0A  # Linux's AF_INET6; Kamailio writes the host's value (28 on FreeBSD, 30 on macOS)

# Protocol types (chunk 0x000b, the spec's "protocol types" table): the harness acts on SIP and LOG;
# the other names only label what it keeps without reading.
PROTO_SIP = 0x01
PROTO_LOG = 0x64  # 100: a log line (Kamailio's hlog(), heplify's log capture)
PROTOCOL_TYPES = {0x01: "SIP", 0x05: "RTCP", 0x35: "DNS", 0x64: "LOG"}

# IP protocol numbers (chunk 0x0002 / v2 header) as transport names. Kamailio writes 22 (IPPROTO_IDP,
# its "fake proto type" in siptrace_hep.c pipport2su) for TLS, WS and WSS alike.
IP_PROTOCOLS = {0x06: "tcp", 0x11: "udp", 0x84: "sctp", 0x16: "tls"}

# HEP v1/v2 (see the module docstring).
V1V2_HEADER = struct.Struct("!BBBBHH")  # version, header length, family, ip protocol, src port, dst port
V2_TIME_LE = struct.Struct("<IIH2x")  # seconds, microseconds, capture id, padding (Kamailio, captagent)
V2_TIME_BE = struct.Struct(">IIH2x")  # the same in network order (Kazoo's Erlang hep library)
# header-length -> (address length, header-length counts the time header)
V1V2_HEADER_LENGTHS = {16: (4, False), 40: (16, False), 28: (4, True), 52: (16, True)}
MICROSECONDS = 1_000_000


def protocol_type_name(value: int | None) -> str:
    if value is None:
        return "none"
    return PROTOCOL_TYPES.get(value, f"type {value}")


def transport_name(ip_protocol: int | None) -> str | None:
    """The transport an IP protocol number stands for, None when not known."""
    if ip_protocol is None:
        return None
    return IP_PROTOCOLS.get(ip_protocol)
