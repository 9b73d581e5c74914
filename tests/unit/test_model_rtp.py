"""The media role's RTP stream: packet layout, loopback-only sending, stop on ICMP."""

from __future__ import annotations

import asyncio
import socket

from harness.model.rtp import PCMU_SILENCE, RtpStream, is_loopback, rtp_packet


def test_packet_layout() -> None:
    packet = rtp_packet(7, 160, 0x01020304, 0, PCMU_SILENCE, marker=True)
    assert packet[:12] == bytes([0x80, 0x80, 0, 7, 0, 0, 0, 160, 1, 2, 3, 4])
    assert len(packet) == 12 + 160


def test_loopback_check() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("127.9.8.7")
    assert not is_loopback("192.0.2.1") and not is_loopback("not-an-ip")


def test_never_sends_off_the_machine() -> None:
    async def scenario() -> tuple[bool, int]:
        stream = RtpStream("127.0.0.1")
        stream.open()
        started = await stream.start("192.0.2.1", 40000)
        stream.stop()
        return started, stream.packets_sent

    assert asyncio.run(scenario()) == (False, 0)


def test_sends_pcmu_every_20_ms_until_stopped() -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.setblocking(False)

    async def scenario() -> list[bytes]:
        loop = asyncio.get_running_loop()
        stream = RtpStream("127.0.0.1")
        stream.open()
        assert await stream.start(*receiver.getsockname())
        packets = [await asyncio.wait_for(loop.sock_recv(receiver, 2048), 2.0) for _ in range(3)]
        stream.stop()
        stream.stop()  # idempotent
        return packets

    try:
        packets = asyncio.run(scenario())
    finally:
        receiver.close()
    sequence = [int.from_bytes(p[2:4], "big") for p in packets]
    assert sequence == [(sequence[0] + i) & 0xFFFF for i in range(3)]
    timestamps = [int.from_bytes(p[4:8], "big") for p in packets]
    assert timestamps[1] - timestamps[0] == 160
    assert packets[0][1] == 0x80 and packets[1][1] == 0x00  # marker on the first packet, PT 0


def test_stops_when_the_far_end_port_is_closed() -> None:
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closed.bind(("127.0.0.1", 0))
    target = closed.getsockname()
    closed.close()

    async def scenario() -> int:
        stream = RtpStream("127.0.0.1")
        stream.open()
        assert await stream.start(*target)
        stopped = asyncio.Event()
        original = stream.stop

        def stop() -> None:
            original()
            stopped.set()

        stream.stop = stop  # type: ignore[method-assign]
        await asyncio.wait_for(stopped.wait(), 2.0)  # ICMP port unreachable arrives within ms
        return stream.packets_sent

    assert asyncio.run(scenario()) < 10
