"""Benchmark: routed calls per second, SIPp's UAC beside the harness's carrier UA, per target.

Run: .venv/bin/python tests/perf/bench_interop.py [--seconds S] [--targets model,lab]

One flow for every caller and target: INVITE (PCMU offer) from the trusted carrier 127.0.0.10 to the
routed number -> 100, 180, 200 -> ACK -> BYE -> 200. Targets: the embedded model's SBC role, and the
lab target (a real Kamailio relaying to the model's media role; skipped without Kamailio). SIPp runs
harness/interop/scenarios/uac_routed_call.xml (dialog-correct behind a record-routing proxy) stepped
up in offered rate; the carrier is stepped up in concurrent UAs. A step counts only with 0 failed
calls; each step gets a fresh model (a loaded model keeps lingering calls that slow the next step).
The model runs in this process (a background thread); the carrier runs in a child process so it does
not share the model's interpreter lock. Prints figures; asserts nothing (speed is read, not tested).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

from harness.interop.sipp import SippOptions, run_sipp, scenario_path, sipp_available, sipp_version
from harness.kazoo.release import DEFAULT_RELEASE
from harness.lab.kamailio import LabKamailio, kamailio_available
from harness.model.stack import ModelConfig, start_model
from harness.net.carrier import CarrierUA
from harness.net.exchange import Address
from harness.sip import builder
from harness.targets.gate import own_stack_gate

GATE = own_stack_gate("the harness's own tests")  # these tests send to their own peers
CARRIER_IP = "127.0.0.10"
ROUTED = "+14155550100"
SIPP_RATES = (25, 50, 75, 100, 150, 200, 300, 400, 800, 1600)
CARRIER_CONCURRENCY = (1, 4, 16, 64)
SATURATED = 0.9  # a SIPp step achieving under 90% of its offered rate ends the ramp
GAIN = 1.05  # a carrier step gaining under 5% on the previous one ends the ramp
Target = Callable[[], AbstractContextManager[Address]]


@dataclass
class Step:
    load: str  # what was offered: "r=200/s" or "c=16"
    calls: int
    failed: int
    cps: float
    why: str = ""  # the failure counters of a failed step

    def line(self) -> str:
        text = f"    {self.load:>9}  {self.calls:6d} calls  {self.failed:4d} failed  {self.cps:8.1f} calls/s"
        return f"{text}  {self.why}" if self.why else text


@contextmanager
def model_target() -> Iterator[Address]:
    model = start_model(ModelConfig(sbc_port=0, media_port=0, esl_port=0, couch_port=0, route_timeout=0.5))
    try:
        yield model.sbc
    finally:
        model.stop()


@contextmanager
def lab_target() -> Iterator[Address]:
    model = start_model(ModelConfig(sbc_port=0, media_port=0, esl_port=0, couch_port=0, route_timeout=0.5))
    try:
        lab = LabKamailio(media=model.media, style=DEFAULT_RELEASE).start()
        try:
            yield lab.address
        finally:
            lab.stop()
    finally:
        model.stop()


TARGETS: dict[str, tuple[str, Target]] = {
    "model": ("embedded model", model_target),
    "lab": ("lab target", lab_target),
}


def sipp_steps(target: Target, seconds: float) -> list[Step]:
    steps: list[Step] = []
    for rate in SIPP_RATES:
        with target() as sbc:
            options = SippOptions(
                scenario_path("uac_routed_call.xml"),
                CARRIER_IP,
                remote=sbc,
                service=ROUTED,
                calls=max(int(rate * seconds), 20),
                rate=rate,
                max_concurrent=max(rate, 50),
                run_timeout=seconds * 4 + 20,
                recv_timeout=5.0,
            )
            result = run_sipp(options)
        stats = result.stats
        if stats is None:
            print(f"    r={rate}/s: no statistics\n{result.describe()}")
            break
        why = " ".join(f"{name}={count}" for name, count in stats.failures.items() if name != "FailedCall")
        steps.append(Step(f"r={rate}/s", stats.created, stats.failed, stats.call_rate, why))
        print(steps[-1].line(), flush=True)
        if stats.failed or stats.call_rate < rate * SATURATED:
            break
    return steps


def carrier_steps(target: Target, seconds: float) -> list[Step]:
    steps: list[Step] = []
    best_so_far = 0.0
    for concurrency in CARRIER_CONCURRENCY:
        with target() as sbc:
            done = carrier_step(sbc, concurrency, seconds)
        if done.returncode != 0:
            print(f"    c={concurrency}: worker failed rc {done.returncode}\n{done.stderr[-1500:]}")
            break
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        steps.append(Step(f"c={concurrency}", figures["calls"], figures["failed"], figures["cps"]))
        print(steps[-1].line(), flush=True)
        if figures["failed"] or figures["cps"] < best_so_far * GAIN:
            break  # failures, or no longer gaining: the target (or the carrier) is saturated
        best_so_far = figures["cps"]
    return steps


def carrier_step(sbc: Address, concurrency: int, seconds: float) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        __file__,
        "--carrier-worker",
        f"{sbc[0]}:{sbc[1]}",
        "--concurrency",
        str(concurrency),
        "--seconds",
        f"{seconds:g}",
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=seconds * 4 + 60)


async def carrier_worker(target: Address, concurrency: int, seconds: float) -> dict[str, float]:
    """``concurrency`` carrier UAs, each placing calls back to back for ``seconds``."""
    until = time.monotonic() + seconds
    counts = {"calls": 0, "failed": 0}

    async def one_ua() -> None:
        async with CarrierUA(CARRIER_IP, gate=GATE) as ua:
            while time.monotonic() < until:
                invite = builder.build_invite(ua.spec(target, ruri_user=ROUTED))
                exchange = await ua.invite(invite, target, timeout=5.0, bye_after=0.0)
                counts["calls"] += 1
                if exchange.final_code != 200 or any("BYE" in note for note in exchange.notes):
                    counts["failed"] += 1

    started = time.monotonic()
    await asyncio.gather(*(one_ua() for _ in range(concurrency)))
    elapsed = time.monotonic() - started
    return {"calls": counts["calls"], "failed": counts["failed"], "cps": counts["calls"] / elapsed}


def best(steps: list[Step] | None) -> str:
    if steps is None:
        return "skipped"
    clean = [s for s in steps if s.failed == 0]
    if not clean:
        return "no step without failures"
    top = max(clean, key=lambda s: s.cps)
    return f"{top.cps:.0f}/s ({top.load})"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each load step")
    parser.add_argument("--targets", default="model,lab", help="comma-separated: model, lab")
    parser.add_argument("--carrier-worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.carrier_worker:
        host, _, port = args.carrier_worker.rpartition(":")
        figures = asyncio.run(carrier_worker((host, int(port)), args.concurrency, args.seconds))
        print(json.dumps(figures))
        return
    skip = {"lab": kamailio_available()}
    sipp_reason = sipp_available()
    names = [name.strip() for name in args.targets.split(",") if name.strip()]
    results: dict[str, tuple[list[Step] | None, list[Step] | None]] = {}
    print(f"flow: INVITE/100/180/200/ACK/BYE/200 to {ROUTED} from {CARRIER_IP}; {args.seconds:g} s per step")
    if sipp_reason is None:
        print(f"SIPp {sipp_version()}")
    for name in names:
        label, target = TARGETS[name]
        if skip.get(name):
            print(f"{label}: skipped: {skip[name]}")
            results[name] = (None, None)
            continue
        sipp: list[Step] | None = None
        if sipp_reason is None:
            print(f"{label} / SIPp uac_routed_call.xml (offered rate):")
            sipp = sipp_steps(target, args.seconds)
        else:
            print(f"{label} / SIPp skipped: {sipp_reason}")
        print(f"{label} / harness carrier UA (concurrent UAs in a child process):")
        results[name] = (sipp, carrier_steps(target, args.seconds))
    print()
    print("best rate at 0% failed calls")
    print(f"  {'caller':<20}" + "".join(f"{TARGETS[n][0]:<22}" for n in names))
    print(f"  {'SIPp':<20}" + "".join(f"{best(results[n][0]):<22}" for n in names))
    print(f"  {'harness carrier UA':<20}" + "".join(f"{best(results[n][1]):<22}" for n in names))


if __name__ == "__main__":
    main()
