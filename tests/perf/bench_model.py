"""How many INVITE transactions per second the embedded model sustains (a benchmark, not a test).

    .venv/bin/python tests/perf/bench_model.py [--rates 500,1000,1500,2000,2500,3000] [--seconds 4]
                                               [--profile kazoo-4.3] [--routed-calls 2000] [--skip-routed]

Failure transactions (the model's capacity figure): the model runs as its own process
(``kazoo-harness model``), SIPp (another process; ~30,000 calls per CPU-second here, so never the
bottleneck) places INVITE -> 604 -> ACK calls (harness/interop/scenarios/uac_rejected_call.xml, 486 on
kazoo-5) from the trusted carrier 127.0.0.10 to the unknown number +14155550199 at stepped rates. Per step:
the rate SIPp achieved with no failed call, the model process's CPU seconds per transaction (user + system,
from /proc) and SIPp's, and the log lines the model wrote (each call writes its stepswitch line, so a
model that stopped logging would show), and its resident memory at the step's end (a finished call is
remembered 32 s, so memory grows with the rate). The capacity on one core is 1 / (CPU per transaction).
The ramp stops at the first step with failures or under 90% of the offered rate. To measure other code
with this script: PYTHONPATH=<that checkout> (the model process runs from the harness imported).

Routed calls (the older figure): an in-process client keeps 32 calls in flight through the SBC role:
INVITE -> 100/180/200 -> ACK -> BYE -> 200 (it shares the model's interpreter, so it is a floor).

The machine is shared: every figure is provisional; CPU per transaction moves less than the rate.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import secrets
import selectors
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import harness
from harness.interop.sipp import UAS_BUFFER, SippOptions, run_sipp, scenario_path, sipp_available
from harness.kazoo.release import DEFAULT_RELEASE, RELEASE_NAMES, release
from harness.model.stack import ModelConfig, start_model
from harness.sip.message import Response, parse_message

CLIENT_IP = "127.0.0.10"  # the demo data's listed carrier
UNKNOWN = "+14155550199"  # no number document: reorder answers 604 at once
ROUTED = "+14155550100"
DEADLINE = 10.0
SATURATED = 0.9
START_DEADLINE = 30.0
ROOT = Path(harness.__file__).resolve().parents[1]  # the harness imported here (PYTHONPATH may pick another)


# --------------------------------------------------------- failure transactions: SIPp, a model process
class ModelProcess:
    """``kazoo-harness model`` on free ports, with its own log directory; stopped by its PID."""

    def __init__(self, profile: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="bench-model-"))
        self.ready = self.dir / "ready.json"
        command = [
            sys.executable, "-m", "harness.cli", "model", "--profile", profile,
            "--sbc", "127.0.0.1:0", "--media", "127.0.0.1:0",
            "--esl", "127.0.0.1:0", "--couch", "127.0.0.1:0",
            "--log-dir", str(self.dir / "logs"), "--ready-file", str(self.ready),
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT)
        self._wait_for(b"Ctrl-C to stop.")
        import json

        host, _, port = json.loads(self.ready.read_text())["sbc"]["udp"].rpartition(":")
        self.sbc = (host, int(port))

    def _wait_for(self, marker: bytes) -> None:
        assert self.process.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(self.process.stdout, selectors.EVENT_READ)
        out, end = b"", time.monotonic() + START_DEADLINE
        while marker not in out:
            left = end - time.monotonic()
            if left <= 0 or not selector.select(left):
                raise TimeoutError(f"the model did not start within {START_DEADLINE} s: {out!r}")
            chunk = os.read(self.process.stdout.fileno(), 4096)
            if not chunk:
                raise RuntimeError(f"the model exited: {out!r}")
            out += chunk

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    def rss_mb(self) -> float:
        """The model process's resident memory now (what it holds for the calls it still remembers)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def log_lines(self, source: str) -> int:
        path = self.dir / "logs" / f"{source}.log"
        return path.read_bytes().count(b"\n") if path.exists() else 0

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(DEADLINE)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(DEADLINE)
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass
class Step:
    offered: int
    calls: int
    failed: int
    rate: float
    model_cpu_us: float  # model CPU per transaction
    model_busy: float  # model CPU seconds per wall second (1.0 = one core)
    sipp_cpu_us: float
    log_lines: int  # kazoo.log lines written during the step (2 per call)
    rss_mb: float  # the model's resident memory at the step's end
    why: str

    def line(self) -> str:
        text = (
            f"  r={self.offered:>5}/s  {self.calls:6d} calls {self.failed:4d} failed  {self.rate:7.0f}/s  "
            f"model {self.model_cpu_us:6.0f} us CPU/tx ({self.model_busy:4.0%} of a core)  "
            f"SIPp {self.sipp_cpu_us:4.0f} us/tx  kazoo.log +{self.log_lines}  RSS {self.rss_mb:.0f} MB"
        )
        return f"{text}  {self.why}" if self.why else text


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def failure_step(model: ModelProcess, profile: str, rate: int, seconds: float) -> Step | None:
    calls = max(int(rate * seconds), 50)
    options = SippOptions(
        scenario_path("uac_rejected_call.xml"),
        CLIENT_IP,
        remote=model.sbc,
        service=UNKNOWN,
        calls=calls,
        rate=rate,
        max_concurrent=max(rate, 100),
        run_timeout=seconds * 4 + 20,
        recv_timeout=5.0,
        buff_size=UAS_BUFFER,
    )
    logs0, cpu0, sipp0, started = (
        model.log_lines("kazoo"),
        model.cpu_seconds(),
        children_cpu(),
        time.monotonic(),
    )
    result = run_sipp(options)
    wall = time.monotonic() - started
    cpu, sipp_cpu = model.cpu_seconds() - cpu0, children_cpu() - sipp0
    stats = result.stats
    if stats is None:
        print(f"  r={rate}/s: no statistics\n{result.describe()}")
        return None
    why = " ".join(f"{name}={count}" for name, count in stats.failures.items() if name != "FailedCall")
    done = max(stats.successful, 1)
    return Step(
        offered=rate,
        calls=stats.created,
        failed=stats.failed,
        rate=stats.successful / max(stats.elapsed, 1e-9),
        model_cpu_us=cpu / done * 1e6,
        model_busy=cpu / wall,
        sipp_cpu_us=sipp_cpu / done * 1e6,
        log_lines=model.log_lines("kazoo") - logs0,
        rss_mb=model.rss_mb(),
        why=why,
    )


def failure_ramp(profile: str, rates: list[int], seconds: float) -> list[Step]:
    steps: list[Step] = []
    model = ModelProcess(profile)
    try:
        failure_step(model, profile, 200, 1.0)  # warm-up (imports, first-call paths)
        for rate in rates:
            step = failure_step(model, profile, rate, seconds)
            if step is None:
                break
            steps.append(step)
            print(step.line(), flush=True)
            if step.failed or step.rate < rate * SATURATED:
                break
    finally:
        model.stop()
    return steps


# ---------------------------------------------------------------- routed calls, an in-process client
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


async def routed_run(calls: int, window: int, target: tuple[str, int]) -> list[float]:
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
            transport.sendto(invite(ROUTED, local, target, call_id), target)
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


def routed(profile: str, calls: int, window: int = 32) -> None:
    model = start_model(
        ModelConfig(
            release=release(profile), sbc_port=0, media_port=0, esl_port=0, couch_port=0, route_timeout=2.6
        )
    )
    try:
        asyncio.run(routed_run(min(50, calls), window, model.sbc))  # warm-up
        started = time.perf_counter()
        latencies = asyncio.run(routed_run(calls, window, model.sbc))
        elapsed = time.perf_counter() - started
    finally:
        model.stop()
    latencies.sort()
    pct = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000  # noqa: E731
    print(f"routed calls (INVITE/200/ACK/BYE, in-process client, window {window}): {calls / elapsed:.0f}/s")
    print(
        f"  INVITE->final ms: median {statistics.median(latencies) * 1000:.2f}, "
        f"p90 {pct(0.90):.2f}, p99 {pct(0.99):.2f}, max {latencies[-1] * 1000:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rates", default="500,1000,1500,2000,2500,3000,4000")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each failure-call step")
    parser.add_argument("--profile", default=DEFAULT_RELEASE.name, choices=RELEASE_NAMES)
    parser.add_argument("--routed-calls", type=int, default=2000)
    parser.add_argument("--skip-routed", action="store_true")
    args = parser.parse_args()
    reason = sipp_available()
    print(
        f"profile {args.profile}; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs "
        "(shared machine)"
    )
    if reason is not None:
        print(f"failure transactions: skipped: {reason}")
    else:
        print(f"failure transactions (INVITE -> 604 -> ACK) to {UNKNOWN}, SIPp -> model process:")
        steps = failure_ramp(args.profile, [int(r) for r in args.rates.split(",")], args.seconds)
        clean = [s for s in steps if not s.failed and s.rate >= s.offered * SATURATED]
        if clean:
            top = max(clean, key=lambda s: s.rate)
            cpu = statistics.median(s.model_cpu_us for s in steps)
            print(
                f"  best rate at 0 failed: {top.rate:.0f}/s (r={top.offered}/s); model CPU per transaction "
                f"{cpu:.0f} us (median of the steps) = capacity {1e6 / cpu:.0f}/s on one core"
            )
    if not args.skip_routed:
        routed(args.profile, args.routed_calls)


if __name__ == "__main__":
    main()
