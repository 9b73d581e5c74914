"""Load only where the target allows it: ``[safety] allow_load = true`` in a target file, under its
``max_rate`` (calls per second at the peak of the shape) and ``max_duration`` (seconds, the last call's
deadline included). The embedded model, the lab and the docker stack run on this machine and allow load
without a cap. Every refusal names the rule and the target."""

from __future__ import annotations

from harness.load.spec import LoadSpec
from harness.scenario.safety import UnsafeTarget, check_destination
from harness.scenario.target import Address, Target


class LoadRefused(UnsafeTarget):
    """The target's safety settings refuse this load run."""


def check_load(target: Target, spec: LoadSpec, destination: Address, timeout: float) -> None:
    check_destination(target, destination)
    name = target.name
    if not target.allow_load:
        raise LoadRefused(
            f"refusing load on target {name!r}: it does not set [safety] allow_load = true (rule allow_load)"
        )
    schedule = spec.schedule
    if target.max_load_rate is not None and schedule.peak_rate > target.max_load_rate:
        peak = (
            "unbounded (a burst within 0 ms)"
            if schedule.peak_rate == float("inf")
            else (f"{schedule.peak_rate:g} calls/s")
        )
        raise LoadRefused(
            f"refusing load on target {name!r}: the shape peaks at {peak}, above its "
            f"[safety] max_rate = {target.max_load_rate:g} (rule max_rate)"
        )
    lasts = schedule.span + timeout
    if target.max_load_duration is not None and lasts > target.max_load_duration:
        raise LoadRefused(
            f"refusing load on target {name!r}: the run lasts up to {lasts:.1f} s (last call at "
            f"{schedule.span:.1f} s + {timeout:g} s timeout), above its [safety] max_duration = "
            f"{target.max_load_duration:g} s (rule max_duration)"
        )
