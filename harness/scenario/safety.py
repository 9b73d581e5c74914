"""Safety rails for real stacks: where traffic may go, how fast, what may be sent or changed, and
keeping secrets out of every output.

Hooks for the runner (call before each send): ``await before_send(target, destination)``; for a
scenario: ``refusal(target, case_cause)`` gives the skip reason or None; provisioning checks
``require_provisioning(target)``; anything printed or written passes through ``redact``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import threading
import time
from collections.abc import Iterable

from harness.scenario.target import Address, Target, TargetError

# Scenario causes (and kinds) that send malformed, oversized or repeated traffic.
RISKY_CAUSES = frozenset({"malformed", "oversized", "repeated", "flood"})
MASK = "***"


class UnsafeTarget(TargetError):
    """Traffic or a change the target's safety settings refuse."""


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_destination(target: Target, destination: Address) -> None:
    """Refuse a destination that is neither loopback nor named by the target (its file's hosts)."""
    host = destination[0]
    if is_loopback(host) or host in target.allowed_hosts:
        return
    raise UnsafeTarget(
        f"refusing to send to {host}:{destination[1]}: target {target.name!r} does not name that address "
        f"(it names {', '.join(sorted(target.allowed_hosts)) or 'only loopback'})"
    )


def refusal(target: Target, cause: str, *, repeated: bool = False, oversized: bool = False) -> str | None:
    """Why a scenario must not run on ``target`` (the skip reason), or None when it may."""
    risky = cause in RISKY_CAUSES or repeated or oversized
    if risky and not target.allow_malformed:
        return (
            f"target {target.name} does not set allow_malformed = true (malformed/oversized/repeated traffic)"
        )
    return None


def require_provisioning(target: Target) -> None:
    if not target.allow_provisioning:
        raise UnsafeTarget(
            f"target {target.name!r} does not set allow_provisioning = true; nothing was changed"
        )


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


def rate_cap(target: Target) -> RateCap | None:
    """The process-wide cap for ``target`` (None when it has no rate limit)."""
    if not target.rate_limit:
        return None
    key = (target.name, float(target.rate_limit))
    with _caps_lock:
        if key not in _caps:
            _caps[key] = RateCap(float(target.rate_limit))
        return _caps[key]


async def before_send(target: Target, destination: Address) -> None:
    """Runner hook: refuse an unsafe destination, then wait for the target's rate cap."""
    check_destination(target, destination)
    cap = rate_cap(target)
    if cap is not None:
        await cap.acquire()


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value replaced by ``***``."""
    for secret in sorted({str(s) for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that masks secrets in every record it passes (message and arguments)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = tuple(str(s) for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            record.msg = redact(record.getMessage(), self.secrets)
            record.args = None
        return True


def install_log_redaction(secrets: Iterable[str]) -> RedactingFilter:
    """Mask ``secrets`` in everything the root logger's handlers emit; returns the filter installed."""
    flt = RedactingFilter(secrets)
    for handler in logging.getLogger().handlers:
        handler.addFilter(flt)
    return flt
