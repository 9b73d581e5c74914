"""Benchmark: HEP decoding, and packets from a capture agent to the hub through the receiver.

Run: .venv/bin/python tests/perf/bench_hep.py [N]. Prints packets decoded per second (Kamailio's recorded
HEP3 and HEP2 packets, and HEP3 streamed), and for N datagrams sent over loopback: how many reached the
hub, the rate, and the median / p95 latency from send to the hub. No assertion.
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import sys
import time
from pathlib import Path

from harness.hep import HepPacket, HepStreamDecoder, decode_packet, encode_v3
from harness.logs.hep_source import HepLine, HepReceiver
from harness.logs.hub import LogHub

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
import hep_samples as kamailio


def bench_decode(n: int) -> None:
    for name, samples in (("HEP3", kamailio.HEP3_UDP), ("HEP2", kamailio.HEP2_UDP)):
        started = time.perf_counter()
        for i in range(n):
            decode_packet(samples[i % len(samples)])
        print(f"decode_packet {name}: {n / (time.perf_counter() - started):,.0f} packets/s")
    stream = b"".join(kamailio.HEP3_TCP_CHUNKS)
    rounds = max(n // 8, 1)
    started = time.perf_counter()
    for _ in range(rounds):
        HepStreamDecoder().feed(stream)
    print(f"HepStreamDecoder: {rounds * 8 / (time.perf_counter() - started):,.0f} packets/s")


async def bench_receiver(n: int) -> None:
    """A burst of ``n`` datagrams (all of them must arrive), then 300 sent one at a time for latency."""
    receiver = HepReceiver(["udp:127.0.0.1:0"], "bench").start()
    template = decode_packet(kamailio.HEP3_UDP[2])
    datagrams = [encode_v3(HepPacket(**{**template.__dict__, "capture_id": i})) for i in range(n)]
    latencies: list[float] = []
    try:
        async with LogHub([receiver.source()]) as hub:
            cursor = hub.cursor(0.0)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as agent:
                started = time.perf_counter()
                for data in datagrams:
                    agent.sendto(data, receiver.address())
                got = 0
                while got < n and await cursor.next(time.time() + 10) is not None:
                    got += 1
                burst = time.perf_counter() - started
                for data in datagrams[:300]:
                    sent = time.time()  # the clock HepLine.received is on
                    agent.sendto(data, receiver.address())
                    line = await cursor.next(sent + 5)
                    assert isinstance(line, HepLine)
                    latencies.append(line.received - sent)
    finally:
        receiver.stop()
    latencies.sort()
    print(f"receiver burst: {got}/{n} datagrams reached the hub in {burst:.2f} s ({got / burst:,.0f}/s)")
    print(f"receiver latency, datagram sent to line in the hub (300 one at a time): median "
          f"{statistics.median(latencies) * 1000:.2f} ms, p95 {latencies[284] * 1000:.2f} ms")  # fmt: skip


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    bench_decode(n)
    asyncio.run(bench_receiver(min(n, 5_000)))


if __name__ == "__main__":
    main()
