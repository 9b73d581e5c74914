"""The time the model's Kamailio roles read: Kamailio's ticks (pike, htable timers) and wall time.

Roles take a :class:`Clock` so a test can hold time still or step it (``ManualClock``) and prove a
window or an expiry exactly, without waiting for it; the model runs on :data:`SYSTEM_CLOCK`.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (Kamailio's ticks are counted on it)."""
        ...

    def time(self) -> float:
        """Wall-clock epoch seconds (Kamailio's ``$timef``/``$Ts`` and htable expiry read this)."""
        ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()


SYSTEM_CLOCK: Clock = SystemClock()


class ManualClock:
    """A clock that moves only when told to (``advance``); both readings move together."""

    def __init__(self, wall: float = 1_800_000_000.0) -> None:
        self._offset = 0.0
        self._wall = wall

    def monotonic(self) -> float:
        return 1000.0 + self._offset

    def time(self) -> float:
        return self._wall + self._offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self._offset += seconds
