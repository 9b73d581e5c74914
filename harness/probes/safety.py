"""What a target lets a probe do, decided before anything is sent: a probe runs against production at
03:00 unattended, so a scenario that would send malformed bytes or change the stack is refused up front
(HTTP 400 / exit 2) unless the target allows it. The send gate (harness.targets.gate) still judges the
bytes actually sent — a scenario that builds a defective message without a mutator is refused there."""

from __future__ import annotations

from harness.scenario.case import ScenarioCase
from harness.targets.target import Target


def refusal(case: ScenarioCase, target: Target) -> str | None:
    """Why ``case`` may not run as a probe on ``target`` (None when it may)."""
    policy = target.policy
    if not policy.allow_malformed:
        declared = [k for k in ("mutators", "raw") if case.send.get(k)]
        if declared:
            return (
                f"scenario {case.test_id!r} sends malformed bytes (send.{', send.'.join(declared)}) and "
                f"target {target.name!r} does not set allow_malformed = true ({policy.origin})"
            )
    if case.setup and not policy.allow_provisioning:
        return (
            f"scenario {case.test_id!r} changes the stack (setup: {', '.join(sorted(case.setup))}) and "
            f"target {target.name!r} does not set allow_provisioning = true ({policy.origin})"
        )
    return None
