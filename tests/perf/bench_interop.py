"""Benchmark: routed calls per second through the embedded model, SIPp's UAC beside the harness's carrier.

Run: .venv/bin/python tests/perf/bench_interop.py [--seconds S]

The flow is the same for both callers: INVITE (PCMU offer) from the trusted carrier 127.0.0.10 to the
routed number -> 100, 180, 200 -> ACK -> BYE -> 200, through the model's SBC and media roles. SIPp is
stepped up in offered rate, the carrier in concurrency; a step counts only with 0 failed calls. The
model runs in this process (a background thread); the carrier runs in a child process so it does
not share the model's interpreter lock. Prints figures; asserts nothing (speed is read, not tested).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from dataclasses import dataclass, replace

from harness.interop.sipp import SippOptions, run_sipp, sipp_available, sipp_version
from harness.model.stack import ModelConfig, RunningModel, start_model
from harness.net.carrier import CarrierUA
from harness.sip import builder

CARRIER_IP = "127.0.0.10"
ROUTED = "+14155550100"
SIPP_RATES = (25, 50, 75, 100, 150, 200, 300, 400, 800, 1600)
CARRIER_CONCURRENCY = (1, 4, 16, 64)
SATURATED = 0.9  # a step whose achieved rate falls below 90% of the offered one ends the ramp


@dataclass
class Step:
    load: str  # what was offered: "r=200/s" or "c=16"
    calls: int
    failed: int
    cps: float
    why: str = ""  # the failure counters of a failed step

    def line(self) -> str:
        text = f"  {self.load:>9}  {self.calls:6d} calls  {self.failed:4d} failed  {self.cps:8.1f} calls/s"
        return f"{text}  {self.why}" if self.why else text


def fresh_model() -> RunningModel:
    """A new model per step: a loaded model keeps state (lingering calls) that slows the next step."""
    return start_model(ModelConfig(sbc_port=0, media_port=0, esl_port=0, couch_port=0, route_timeout=0.5))


def sipp_steps(seconds: float) -> list[Step]:
    steps: list[Step] = []
    for rate in SIPP_RATES:
        calls = max(int(rate * seconds), 20)
        options = SippOptions(
            "uac",
            CARRIER_IP,
            service=ROUTED,
            calls=calls,
            rate=rate,
            max_concurrent=max(rate, 50),
            run_timeout=seconds * 4 + 20,
            recv_timeout=5.0,
        )
        with fresh_model() as model:
            result = run_sipp(replace(options, remote=model.sbc))
        stats = result.stats
        if stats is None:
            print(f"  r={rate}/s: no statistics\n{result.describe()}")
            break
        why = " ".join(f"{name}={count}" for name, count in stats.failures.items() if name != "FailedCall")
        steps.append(Step(f"r={rate}/s", stats.created, stats.failed, stats.call_rate, why))
        print(steps[-1].line(), flush=True)
        if stats.failed or stats.call_rate < rate * SATURATED:
            break
    return steps


def carrier_steps(seconds: float) -> list[Step]:
    steps: list[Step] = []
    best = 0.0
    for concurrency in CARRIER_CONCURRENCY:
        with fresh_model() as model:
            done = carrier_step(model, concurrency, seconds)
        if done.returncode != 0:
            print(f"  c={concurrency}: worker failed rc {done.returncode}\n{done.stderr[-1500:]}")
            break
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        steps.append(Step(f"c={concurrency}", figures["calls"], figures["failed"], figures["cps"]))
        print(steps[-1].line(), flush=True)
        if figures["failed"] or figures["cps"] < best * 1.05:
            break  # failures, or no longer gaining: the model (or the carrier) is saturated
        best = figures["cps"]
    return steps


def carrier_step(model: RunningModel, concurrency: int, seconds: float) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        __file__,
        "--carrier-worker",
        f"{model.sbc[0]}:{model.sbc[1]}",
        "--concurrency",
        str(concurrency),
        "--seconds",
        f"{seconds:g}",
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=seconds * 4 + 60)


async def carrier_worker(target: tuple[str, int], concurrency: int, seconds: float) -> dict[str, float]:
    """``concurrency`` carrier UAs, each placing calls back to back for ``seconds``."""
    until = time.monotonic() + seconds
    counts = {"calls": 0, "failed": 0}

    async def one_ua(index: int) -> None:
        async with CarrierUA(CARRIER_IP) as ua:
            while time.monotonic() < until:
                invite = builder.build_invite(ua.spec(target, ruri_user=ROUTED))
                exchange = await ua.invite(invite, target, timeout=5.0, bye_after=0.0)
                counts["calls"] += 1
                if exchange.final_code != 200 or any("BYE" in note for note in exchange.notes):
                    counts["failed"] += 1

    started = time.monotonic()
    await asyncio.gather(*(one_ua(i) for i in range(concurrency)))
    elapsed = time.monotonic() - started
    return {"calls": counts["calls"], "failed": counts["failed"], "cps": counts["calls"] / elapsed}


def best(steps: list[Step]) -> str:
    clean = [s for s in steps if s.failed == 0]
    if not clean:
        return "no step without failures"
    top = max(clean, key=lambda s: s.cps)
    return f"{top.cps:.0f} calls/s at {top.load}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each load step")
    parser.add_argument("--carrier-worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.carrier_worker:
        host, _, port = args.carrier_worker.rpartition(":")
        figures = asyncio.run(carrier_worker((host, int(port)), args.concurrency, args.seconds))
        print(json.dumps(figures))
        return
    reason = sipp_available()
    print("routed call INVITE/100/180/200/ACK/BYE/200 via the embedded model's SBC (a fresh model per step)")
    sipp: list[Step] = []
    if reason is None:
        print(f"SIPp {sipp_version()} built-in uac (offered rate, {args.seconds:g} s per step):")
        sipp = sipp_steps(args.seconds)
    else:
        print(f"SIPp skipped: {reason}")
    print(f"harness carrier UA (concurrent UAs in a child process, {args.seconds:g} s per step):")
    carrier = carrier_steps(args.seconds)
    print()
    print(f"{'caller':<22} {'embedded model, 0% failures':<32} {'lab target':<12}")
    print(f"{'SIPp uac':<22} {best(sipp) if sipp else 'skipped':<32} {'-':<12}")
    print(f"{'harness carrier UA':<22} {best(carrier):<32} {'-':<12}")


if __name__ == "__main__":
    main()
