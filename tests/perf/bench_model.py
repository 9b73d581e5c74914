"""How many INVITE transactions per second the embedded model sustains (a benchmark, not a test).

A loopback client keeps ``--window`` calls in flight through the SBC role: routed number INVITE →
100/180/200 → ACK → BYE → 200 (the call's RTP stops with the BYE), or, with ``--number`` an unknown
number, INVITE → 604 → (the SBC absorbs the ACK). Prints calls per second and latency percentiles.

    .venv/bin/python tests/perf/bench_model.py [--calls 2000] [--window 32] [--profile kazoo-4.3]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import time

from harness.kazoo.release import release
from harness.model.stack import ModelConfig, start_model
from harness.sip.message import Response, parse_message

CLIENT_IP = "127.0.0.10"  # the demo data's listed carrier
DEADLINE = 10.0


def invite(number: str, local: tuple[str, int], target: tuple[str, int], call_id: str) -> bytes:
    ip, port = local
    body = (
        f"v=0\r\no=bench 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
        "m=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"  # port 9 (discard): RTP lands nowhere
    ).encode()
    head = (
        f"INVITE sip:{number}@{target[0]}:{target[1]} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {ip}:{port};branch=z9hG4bK{secrets.token_hex(8)};rport\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:+14155551234@{ip}>;tag={secrets.token_hex(4)}\r\n"
        f"To: <sip:{number}@{target[0]}>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
        f"Contact: <sip:bench@{ip}:{port}>\r\nContent-Type: application/sdp\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def in_dialog(
    method: str, cseq: int, answer: Response, local: tuple[str, int], target: tuple[str, int]
) -> bytes:
    ip, port = local
    return (
        f"{method} sip:bench@{target[0]}:{target[1]} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {ip}:{port};branch=z9hG4bK{secrets.token_hex(8)};rport\r\n"
        f"Max-Forwards: 70\r\nFrom: {answer.get('from')}\r\nTo: {answer.get('to')}\r\n"
        f"Call-ID: {answer.get('call-id')}\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n"
    ).encode()


class Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.waiters: dict[tuple[str, str], asyncio.Future[Response]] = {}
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        message = parse_message(data)
        if isinstance(message, Response) and message.code >= 200:
            waiter = self.waiters.pop((message.get("call-id") or "", message.cseq.method), None)
            if waiter is not None and not waiter.done():
                waiter.set_result(message)

    def expect(self, call_id: str, method: str) -> asyncio.Future[Response]:
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self.waiters[(call_id, method)] = future
        return future


async def run(calls: int, window: int, number: str, target: tuple[str, int]) -> list[float]:
    loop = asyncio.get_running_loop()
    transport, client = await loop.create_datagram_endpoint(Client, local_addr=(CLIENT_IP, 0))
    local = transport.get_extra_info("sockname")
    latencies: list[float] = []
    slots = asyncio.Semaphore(window)

    async def one(index: int) -> None:
        async with slots:
            call_id = f"bench-{index}-{secrets.token_hex(4)}@{CLIENT_IP}"
            started = time.perf_counter()
            final_future = client.expect(call_id, "INVITE")
            transport.sendto(invite(number, local, target, call_id), target)
            final = await asyncio.wait_for(final_future, DEADLINE)
            latencies.append(time.perf_counter() - started)
            if final.code == 200:
                transport.sendto(in_dialog("ACK", 1, final, local, target), target)
                bye_future = client.expect(call_id, "BYE")
                transport.sendto(in_dialog("BYE", 2, final, local, target), target)
                await asyncio.wait_for(bye_future, DEADLINE)

    await asyncio.gather(*(one(i) for i in range(calls)))
    transport.close()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--window", type=int, default=32, help="calls in flight at once")
    parser.add_argument("--number", default="+14155550100", help="dialed number (default: the routed one)")
    parser.add_argument("--profile", default="kazoo-4.3", choices=["kazoo-4.3", "kazoo-5"])
    args = parser.parse_args()
    model = start_model(
        ModelConfig(
            release=release(args.profile),
            sbc_port=0,
            media_port=0,
            esl_port=0,
            couch_port=0,
            route_timeout=2.6,
        )
    )
    try:
        asyncio.run(run(min(50, args.calls), args.window, args.number, model.sbc))  # warm-up
        started = time.perf_counter()
        latencies = asyncio.run(run(args.calls, args.window, args.number, model.sbc))
        elapsed = time.perf_counter() - started
    finally:
        model.stop()
    latencies.sort()
    pct = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000  # noqa: E731
    print(f"profile {args.profile}, number {args.number}, {args.calls} calls, window {args.window}")
    print(f"INVITE transactions per second: {args.calls / elapsed:.0f}")
    print(
        f"INVITE→final latency ms: median {statistics.median(latencies) * 1000:.2f}, "
        f"p90 {pct(0.90):.2f}, p99 {pct(0.99):.2f}, max {latencies[-1] * 1000:.2f}"
    )


if __name__ == "__main__":
    main()
