"""The concurrency cap: at most ``cap`` probes at once against one SBC node (a stack under test is not
a load test). A probe waits for a free slot until its own deadline, then gives up as "busy"."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class NodeBusy(Exception):
    """No slot of the node became free before the probe's deadline."""


class NodeSlots:
    def __init__(self, cap: int) -> None:
        if cap < 1:
            raise ValueError("the concurrency cap must be at least 1")
        self.cap = cap
        self._lock = threading.Lock()
        self._nodes: dict[str, threading.BoundedSemaphore] = {}
        self._in_flight: dict[str, int] = {}

    def _semaphore(self, node: str) -> threading.BoundedSemaphore:
        with self._lock:
            return self._nodes.setdefault(node, threading.BoundedSemaphore(self.cap))

    @contextmanager
    def hold(self, node: str, deadline: float) -> Iterator[None]:
        """One slot of ``node`` for the block; NodeBusy when none is free by ``deadline`` (monotonic)."""
        semaphore = self._semaphore(node)
        if not semaphore.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise NodeBusy(f"{self.cap} probe(s) already running against {node}")
        with self._lock:
            self._in_flight[node] = self._in_flight.get(node, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight[node] -= 1
            semaphore.release()

    def in_flight(self) -> dict[str, int]:
        with self._lock:
            return dict(self._in_flight)
