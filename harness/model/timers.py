"""Deadlines of one fixed delay, many at once, on one event-loop timer.

Every transaction and call the model keeps has a few timers of fixed length (the dispatcher probe,
answering retransmissions for 32 s). One ``loop.call_later`` per
deadline costs a TimerHandle and a heap operation each, at thousands of calls a second; a deadline
of fixed delay is always the latest, so a FIFO queue holds them in order and one timer, set for the
head, serves the whole queue. An entry that no longer matters is not removed: ``cancel`` empties it, and
an empty entry calls nothing when its time comes.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
_log = logging.getLogger(__name__)


class Deadline(Generic[T]):
    __slots__ = ("at", "item")

    def __init__(self, at: float, item: T) -> None:
        self.at = at
        self.item: T | None = item  # None once cancelled

    def cancel(self) -> None:
        """The entry stays queued until its time, holding nothing: what it was for can be freed now."""
        self.item = None


class DeadlineQueue(Generic[T]):
    """``add(item)`` calls ``expired(item)`` ``delay`` seconds later (unless the entry was cancelled)."""

    def __init__(self, delay: float, expired: Callable[[T], None]) -> None:
        self.delay = delay
        self._expired = expired
        self._queue: deque[Deadline[T]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, item: T) -> Deadline[T]:
        loop = asyncio.get_running_loop()
        entry = Deadline(loop.time() + self.delay, item)
        self._queue.append(entry)
        if self._timer is None:
            self._timer = loop.call_at(entry.at, self._run)
        return entry

    def _run(self) -> None:
        self._timer = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        queue = self._queue
        while queue and queue[0].at <= now:
            item = queue.popleft().item
            if item is not None:
                try:
                    self._expired(item)
                except Exception:  # one bad entry must not stall the ones behind it
                    _log.exception("deadline callback failed for %r", item)
        if queue:
            self._timer = loop.call_at(queue[0].at, self._run)

    def close(self) -> None:
        """Forget every pending deadline (the role is stopping)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._queue.clear()
