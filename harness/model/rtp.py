"""The media role's RTP: PCMU silence in 20 ms packets from a real UDP socket (RFC 3550, RFC 3551).

Only loopback destinations are ever sent to: an SDP offer naming any other address gets a bound
socket (so the answer has a real port) but no packets.
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import socket
import struct
from typing import Any

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


class _RtpProtocol(asyncio.DatagramProtocol):
    def __init__(self, stream: RtpStream) -> None:
        self.stream = stream

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        # the socket is connected to the offered address, so only the caller's packets arrive here
        if len(data) >= 12 and data[0] >> 6 == 2:
            self.stream.packets_received += 1

    def error_received(self, exc: Exception) -> None:  # port unreachable: the far end is gone
        self.stream.stop()


class RtpStream:
    """One call's RTP socket. ``open()`` binds it (its port goes into the SDP answer), ``start()``
    connects it to the offered address and sends every 20 ms, ``stop()`` ends it (idempotent). The
    stream also ends when the far end's port is closed (ICMP) or after ``max_seconds``."""

    def __init__(
        self, local_ip: str, payload_type: int = PCMU_PAYLOAD_TYPE, max_seconds: float = 3600.0
    ) -> None:
        self.local_ip = local_ip
        self.payload_type = payload_type
        self.max_seconds = max_seconds
        self.local_port = 0
        self.packets_sent = 0
        self.packets_received = 0
        self.send = True  # False: answer and receive, send nothing (dead air)
        self._sock: socket.socket | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._seq = secrets.randbelow(0x10000)
        self._timestamp = secrets.randbelow(2**32)
        self._ssrc = secrets.randbelow(2**32)

    def open(self) -> int:
        """Bind the socket on the media role's address; returns its port."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((self.local_ip, 0))
        sock.setblocking(False)
        self._sock = sock
        self.local_port = int(sock.getsockname()[1])
        return self.local_port

    async def start(self, remote_ip: str, remote_port: int) -> bool:
        """Send to ``remote_ip:remote_port``; False (nothing sent) for non-loopback targets."""
        sock = self._sock
        if sock is None or not is_loopback(remote_ip) or not 0 < remote_port < 65536:
            return False
        sock.connect((remote_ip, remote_port))
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _RtpProtocol(self), sock=sock)
        self._transport = transport
        self._deadline = loop.call_later(self.max_seconds, self.stop)
        self._send_next(marker=True)
        return True

    def _send_next(self, marker: bool = False) -> None:
        if self._transport is None or not self.send:
            return
        packet = rtp_packet(self._seq, self._timestamp, self._ssrc, self.payload_type, PCMU_SILENCE, marker)
        self._transport.sendto(packet)
        self.packets_sent += 1
        self._seq += 1
        self._timestamp += SAMPLES_PER_PACKET
        self._timer = asyncio.get_running_loop().call_later(PACKET_INTERVAL, self._send_next)

    def stop(self) -> None:
        for handle in (self._timer, self._deadline):
            if handle is not None:
                handle.cancel()
        self._timer = self._deadline = None
        if self._transport is not None:
            self._transport.close()  # closes the socket too
            self._transport = None
        elif self._sock is not None:
            self._sock.close()
        self._sock = None
