"""When each call of a load run is due: constant rate, ramp, or burst, as pure arithmetic.

The run's calls are numbered 0..total-1 in one global sequence; ``due(k)`` is the offset (seconds from
the run's start) at which call k is sent. A run spread over U senders (Locust users, one per worker
process) gives sender i the calls i, i+U, i+2U, ...: their union is exactly the global schedule, so the
shape holds whatever the number of workers, and no sender needs to talk to another.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SHAPES = ("constant", "ramp", "burst")


@dataclass(frozen=True)
class Schedule:
    """``shape``: constant (``rate`` calls/s), ramp (``start_rate`` to ``rate`` over ``duration``), or
    burst (``calls`` within ``within`` seconds, evenly spaced; 0 = all at once). ``calls`` bounds the
    run; without it the run lasts ``duration`` seconds."""

    shape: str
    rate: float = 0.0
    start_rate: float = 0.0
    duration: float | None = None
    calls: int | None = None
    within: float = 0.0

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"shape must be one of {', '.join(SHAPES)}, not {self.shape!r}")
        if self.shape == "burst":
            if not self.calls or self.calls < 1:
                raise ValueError("a burst needs calls >= 1 (N INVITEs within T ms)")
            if self.within < 0:
                raise ValueError("a burst's within must be >= 0 ms")
            return
        if self.rate <= 0:
            raise ValueError(f"a {self.shape} load needs rate > 0 calls/s")
        if self.calls is None and self.duration is None:
            raise ValueError("give calls or duration (a load run is bounded)")
        if self.duration is not None and self.duration <= 0:
            raise ValueError("duration must be > 0 s")
        if self.shape == "ramp":
            if self.duration is None:
                raise ValueError("a ramp needs a duration (the time from start_rate to rate)")
            if self.start_rate < 0:
                raise ValueError("start_rate must be >= 0")

    @property
    def total(self) -> int:
        """How many calls the run places."""
        if self.calls is not None:
            return self.calls
        assert self.duration is not None
        return max(1, int(self._cumulative(self.duration)))

    @property
    def span(self) -> float:
        """The offset of the last call: how long sending lasts."""
        return self.due(self.total - 1)

    @property
    def peak_rate(self) -> float:
        """The highest offered rate (calls/s), for the target's max_rate rule."""
        if self.shape == "burst":
            return math.inf if self.within == 0 else self.total / self.within
        return max(self.rate, self.start_rate)

    def _cumulative(self, t: float) -> float:
        """Calls due by offset t (the integral of the rate)."""
        if self.shape == "constant":
            return self.rate * t
        assert self.duration is not None
        d = self.duration
        slope = (self.rate - self.start_rate) / d
        if t <= d:
            return self.start_rate * t + slope * t * t / 2
        return self.start_rate * d + slope * d * d / 2 + self.rate * (t - d)

    def due(self, k: int) -> float:
        """Offset in seconds at which call k (0-based) is sent."""
        if self.shape == "burst":
            return 0.0 if self.total <= 1 else self.within * k / (self.total - 1)
        if self.shape == "constant":
            return k / self.rate
        assert self.duration is not None
        d, r0, r1 = self.duration, self.start_rate, self.rate
        in_ramp = r0 * d + (r1 - r0) * d / 2
        if k >= in_ramp:
            return d + (k - in_ramp) / r1
        a = (r1 - r0) / (2 * d)
        if abs(a) < 1e-12:
            return k / r0
        # a t^2 + r0 t - k = 0, the positive root (numerically stable form)
        return 2 * k / (r0 + math.sqrt(r0 * r0 + 4 * a * k))


def share(total: int, sender: int, senders: int) -> range:
    """The global call numbers sender ``sender`` of ``senders`` places."""
    return range(sender, total, senders)
