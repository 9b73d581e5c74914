"""The send gate: a target's safety rules applied to each request before its first byte is sent.

One gate per target (``Target.gate``); every carrier UA is made with one (harness.net.gate), so every
path that puts bytes on the wire — run, the fixtures, send, replay, diagnose --invite, conformance, load —
passes here. It decides on what is actually sent, never on a scenario's label:
- the destination must be loopback or a host the target names;
- malformed bytes — mutated by the sender, or found defective by harness.sip.wellformed — need
  ``allow_malformed``;
- the target's rate cap paces the sends (shared by every event loop and thread of the process).
A load run (harness.load) writes straight to its own sockets, so it passes here once, before its first
call (:meth:`SendGate.admit_load`): ``allow_load``, the shape's peak under ``max_load_rate``, its span
under ``max_load_duration``, and each source address's rendered INVITE through the same destination and
malformed rules; the run paces itself to its shape, which replaces the per-message rate cap.
A refusal names the rule and where it is set, and nothing is sent.
"""

from __future__ import annotations

import asyncio
import ipaddress
import threading
import time
from collections.abc import Sequence

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

    def load_refusal(self, peak_rate: float, lasts: float) -> str | None:
        """Why a load run peaking at ``peak_rate`` calls/s and lasting ``lasts`` seconds (its last call's
        timeout included) may not run here (None when it may)."""
        policy, where = self.policy, self.policy.origin
        if not policy.allow_load:
            return (
                f"refusing load on target {self.target_name!r}: it does not set allow_load = true "
                f"({where}; rule allow_load)"
            )
        if policy.max_load_rate is not None and peak_rate > policy.max_load_rate:
            unbounded = peak_rate == float("inf")
            peak = "unbounded (a burst within 0 ms)" if unbounded else f"{peak_rate:g} calls/s"
            return (
                f"refusing load on target {self.target_name!r}: the shape peaks at {peak}, above its "
                f"max_rate = {policy.max_load_rate:g} ({where}; rule max_rate)"
            )
        if policy.max_load_duration is not None and lasts > policy.max_load_duration:
            return (
                f"refusing load on target {self.target_name!r}: the run lasts up to {lasts:.1f} s, above "
                f"its max_duration = {policy.max_load_duration:g} s ({where}; rule max_duration)"
            )
        return None

    def admit_load(self, invites: Sequence[Outgoing], *, peak_rate: float, lasts: float) -> None:
        """Admit a load run before its first call: its shape, then the INVITE each source address will
        send (rendered once: every call of a source differs only in its ids); raise SendRefused."""
        reason = self.load_refusal(peak_rate, lasts)
        for outgoing in invites:
            if reason is not None:
                break
            reason = self.refusal(outgoing)
        if reason is not None:
            raise SendRefused(reason)


def own_stack_gate(name: str) -> SendGate:
    """The gate of a stack the harness started itself on loopback (a model, a lab, a test's own peer):
    any bytes may go there, loopback only."""
    return SendGate(name, SafetyPolicy(origin=f"{name}: a stack the harness started itself"))
