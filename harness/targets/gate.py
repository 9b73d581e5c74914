"""The send gate: a target's safety rules applied to each request before its first byte is sent.

One gate per target (``Target.gate``); every carrier UA is made with one (harness.net.gate), so every
path that puts bytes on the wire — run, the fixtures, send, replay, diagnose --invite, conformance, load —
passes here. It decides on what is actually sent, never on a scenario's label:
- the destination must be loopback or a host the target names;
- malformed bytes — mutated by the sender, or found defective by harness.sip.wellformed — need
  ``allow_malformed``;
- the target's rate cap paces the sends (shared by every event loop and thread of the process).
A refusal names the rule and where it is set, and nothing is sent.
"""

from __future__ import annotations

import asyncio
import ipaddress
import threading
import time

from harness.net.gate import Address, Outgoing, SendRefused
from harness.sip.wellformed import defects
from harness.targets.target import SafetyPolicy


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RateCap:
    """At most ``rate`` sends per second, shared by every event loop and thread of the process (each
    scenario runs its own loop). ``acquire`` waits for the next free slot: a pace, not an event wait."""

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.interval = 1.0 / rate
        self._next = 0.0
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Take the next slot; returns how long to wait before using it."""
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
            return slot - now

    async def acquire(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)  # pacing to the configured rate, bounded by one interval per waiter


_caps: dict[tuple[str, float], RateCap] = {}
_caps_lock = threading.Lock()


def rate_cap(name: str, rate: float | None) -> RateCap | None:
    """The process-wide cap of the target called ``name`` (None when it has none)."""
    if not rate:
        return None
    key = (name, float(rate))
    with _caps_lock:
        if key not in _caps:
            _caps[key] = RateCap(float(rate))
        return _caps[key]


class SendGate:
    """The gate of one target (harness.net.gate.Gate)."""

    def __init__(self, target_name: str, policy: SafetyPolicy) -> None:
        self.target_name = target_name
        self.policy = policy

    def check_destination(self, destination: Address) -> None:
        host = destination[0]
        if is_loopback(host) or host in self.policy.allowed_hosts:
            return
        named = ", ".join(sorted(self.policy.allowed_hosts)) or "only loopback"
        raise SendRefused(
            f"refusing to send to {host}:{destination[1]}: target {self.target_name!r} does not name that "
            f"address (it names {named})"
        )

    def refusal(self, outgoing: Outgoing) -> str | None:
        """Why ``outgoing`` may not be sent (None when it may); the destination is checked first."""
        try:
            self.check_destination(outgoing.destination)
        except SendRefused as exc:
            return str(exc)
        if self.policy.allow_malformed:
            return None
        found = defects(outgoing.data, outgoing.transport)
        if not outgoing.mutated and not found:
            return None
        what = "mutated" if outgoing.mutated else "malformed"
        detail = "; ".join(found) if found else "its bytes were changed after they were built"
        return (
            f"target {self.target_name!r} does not set allow_malformed = true ({self.policy.origin}): "
            f"refusing to send a {what} request to {outgoing.destination[0]}:{outgoing.destination[1]} "
            f"({detail})"
        )

    async def admit(self, outgoing: Outgoing) -> None:
        reason = self.refusal(outgoing)
        if reason is not None:
            raise SendRefused(reason)
        cap = rate_cap(self.target_name, self.policy.rate_limit)
        if cap is not None:
            await cap.acquire()


def own_stack_gate(name: str) -> SendGate:
    """The gate of a stack the harness started itself on loopback (a model, a lab, a test's own peer):
    any bytes may go there, loopback only."""
    return SendGate(name, SafetyPolicy(origin=f"{name}: a stack the harness started itself"))
