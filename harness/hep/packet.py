"""One decoded HEP packet: what a capture agent saw, where, when, and the bytes it saw."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.hep import spec

Address = tuple[str, int]


@dataclass(frozen=True)
class Chunk:
    """A HEP3 chunk kept as it came: a vendor's own chunk, or a generic one this decoder does not read."""

    vendor: int
    type: int
    value: bytes


@dataclass(frozen=True)
class HepPacket:
    """A HEP packet of any version. Fields a packet does not carry are None.

    ``payload`` is the captured message itself (decompressed when it came in a compressed-payload
    chunk, ``compressed`` then True); ``src``/``dst`` are the addresses of the captured message, not
    of the HEP datagram.
    """

    version: int  # 1, 2 or 3
    payload: bytes = b""
    src: Address | None = None
    dst: Address | None = None
    family: int | None = None  # spec.FAMILY_IPV4 / FAMILY_IPV6 (or the sender's own AF_INET6 value)
    ip_protocol: int | None = None  # 17 UDP, 6 TCP, 132 SCTP, 22 Kamailio's TLS/WS
    seconds: int | None = None
    microseconds: int | None = None
    protocol_type: int | None = None  # spec.PROTO_SIP, PROTO_LOG, ...
    capture_id: int | None = None
    keep_alive: int | None = None  # seconds
    auth_key: bytes | None = None
    correlation_id: bytes | None = None
    vlan: int | None = None
    node_name: str | None = None
    compressed: bool = False
    extra: tuple[Chunk, ...] = field(default=())  # chunks kept uninterpreted (vendor chunks, newer types)

    @property
    def timestamp(self) -> float | None:
        """Capture time, epoch seconds (None when the packet carries no time)."""
        if self.seconds is None:
            return None
        return self.seconds + (self.microseconds or 0) / spec.MICROSECONDS

    @property
    def transport(self) -> str | None:
        """``udp`` | ``tcp`` | ``sctp`` | ``tls`` (Kamailio: TLS or WS), None when not said or unknown."""
        return spec.transport_name(self.ip_protocol)

    @property
    def is_sip(self) -> bool:
        """A captured SIP message (HEP v1/v2 carry nothing else; HEP3 says so in its protocol type)."""
        if self.version < 3:
            return bool(self.payload)
        return self.protocol_type == spec.PROTO_SIP and bool(self.payload)

    @property
    def is_log(self) -> bool:
        return self.version == 3 and self.protocol_type == spec.PROTO_LOG

    def describe(self) -> str:
        """One line: capture point, transport, addresses, what the payload is."""
        where = f"capture {self.capture_id}" if self.capture_id is not None else "capture ?"
        if self.node_name:
            where += f" ({self.node_name})"
        src = _addr(self.src)
        dst = _addr(self.dst)
        return (
            f"HEP{self.version} {where} {self.transport or '?'} {src} -> {dst} "
            f"{spec.protocol_type_name(self.protocol_type if self.version == 3 else spec.PROTO_SIP)} "
            f"{len(self.payload)} bytes"
        )


def _addr(address: Address | None) -> str:
    if address is None:
        return "?"
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
