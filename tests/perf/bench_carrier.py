"""Benchmark: sequential carrier INVITE -> 486 -> ACK exchanges over loopback UDP and TCP.

Run: .venv/bin/python tests/perf/bench_carrier.py [N]. Prints exchanges per second and the median
exchange duration per transport; no assertion (speed is read, not tested).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time

from harness.net.carrier import CarrierUA
from harness.sip import builder
from harness.sip.framing import StreamFramer
from harness.sip.message import Request, parse_message
from harness.sip.response import make_response
from harness.targets.gate import own_stack_gate

GATE = own_stack_gate("the harness's own tests")  # these tests send to their own peers


def answer(data: bytes) -> bytes | None:
    msg = parse_message(data)
    if isinstance(msg, Request) and msg.method == "INVITE":
        return make_response(msg, 486, "Busy Here", to_tag="bench").to_bytes()
    return None


class _Udp(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.DatagramTransport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | bytes, int]) -> None:
        out = answer(data)
        if out is not None:
            self.transport.sendto(out, addr)


async def _serve_tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    framer = StreamFramer()
    while chunk := await reader.read(65536):
        for message in framer.feed(chunk):
            out = answer(message)
            if out is not None:
                writer.write(out)
    writer.close()


async def bench(transport: str, count: int) -> None:
    loop = asyncio.get_running_loop()
    if transport == "udp":
        udp, _ = await loop.create_datagram_endpoint(_Udp, local_addr=("127.0.0.1", 0))
        target = udp.get_extra_info("sockname")[:2]
        close = udp.close
    else:
        server = await asyncio.start_server(_serve_tcp, "127.0.0.1", 0)
        target = server.sockets[0].getsockname()[:2]
        close = server.close
    durations = []
    async with CarrierUA("127.0.0.66", transport=transport, gate=GATE) as ua:
        started = time.perf_counter()
        for i in range(count):
            invite = builder.build_invite(ua.spec(target, seed=i))
            exchange = await ua.invite(invite, target, timeout=2)
            assert exchange.final_code == 486, (i, exchange.outcome, exchange.error)
            durations.append(exchange.duration)
        elapsed = time.perf_counter() - started
    close()
    print(
        f"{transport}: {count} exchanges in {elapsed:.2f} s = {count / elapsed:.0f}/s "
        f"(build included), median exchange {statistics.median(durations) * 1000:.2f} ms"
    )


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    for transport in ("udp", "tcp"):
        asyncio.run(bench(transport, count))


if __name__ == "__main__":
    main()
