"""The media role's RTP: PCMU silence in 20 ms packets from a real UDP socket (RFC 3550, RFC 3551).

Only loopback destinations are ever sent to: an SDP offer naming any other address gets a bound
socket (so the answer has a real port) but no packets.
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import struct

PCMU_PAYLOAD_TYPE = 0
PACKET_INTERVAL = 0.020  # 20 ms of 8 kHz audio
SAMPLES_PER_PACKET = 160
PCMU_SILENCE = b"\xff" * SAMPLES_PER_PACKET


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def rtp_packet(seq: int, timestamp: int, ssrc: int, payload_type: int, payload: bytes, marker: bool) -> bytes:
    first = 0x80  # version 2, no padding, no extension, no CSRC
    second = (0x80 if marker else 0) | (payload_type & 0x7F)
    return struct.pack("!BBHII", first, second, seq & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc) + payload


class RtpStream:
    """One call's RTP socket; ``start(remote)`` begins sending, ``stop()`` ends it (idempotent)."""

    def __init__(self, local_ip: str, payload_type: int = PCMU_PAYLOAD_TYPE) -> None:
        self.local_ip = local_ip
        self.payload_type = payload_type
        self.local_port = 0
        self.packets_sent = 0
        self._transport: asyncio.DatagramTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._remote: tuple[str, int] | None = None
        self._seq = secrets.randbelow(0x10000)
        self._timestamp = secrets.randbelow(2**32)
        self._ssrc = secrets.randbelow(2**32)

    async def open(self) -> int:
        """Bind the socket (so its port can go into the SDP answer); returns the port."""
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=(self.local_ip, 0)
        )
        self._transport = transport
        self.local_port = int(transport.get_extra_info("sockname")[1])
        return self.local_port

    def start(self, remote_ip: str, remote_port: int) -> bool:
        """Send to ``remote_ip:remote_port`` every 20 ms; False (nothing sent) for non-loopback targets."""
        if self._transport is None or not is_loopback(remote_ip) or not 0 < remote_port < 65536:
            return False
        self._remote = (remote_ip, remote_port)
        self._send_next(marker=True)
        return True

    def _send_next(self, marker: bool = False) -> None:
        if self._transport is None or self._remote is None:
            return
        packet = rtp_packet(self._seq, self._timestamp, self._ssrc, self.payload_type, PCMU_SILENCE, marker)
        self._transport.sendto(packet, self._remote)
        self.packets_sent += 1
        self._seq += 1
        self._timestamp += SAMPLES_PER_PACKET
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(PACKET_INTERVAL, self._send_next)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._transport is not None:
            self._transport.close()
            self._transport = None
