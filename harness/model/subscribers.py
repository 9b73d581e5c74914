"""Callbacks that other threads register and remove: the model's log bus and document store both
publish to them."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

C = TypeVar("C")


class Subscribers(Generic[C]):
    """Thread-safe list of callbacks; :meth:`add` returns the function that removes the callback again.

    Copy on write: changes replace the tuple under a lock, readers take the current tuple without one
    (every log line reads it; subscriptions change rarely)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._callbacks: tuple[C, ...] = ()

    def add(self, callback: C) -> Callable[[], None]:
        with self._lock:
            self._callbacks = (*self._callbacks, callback)

        def remove() -> None:
            with self._lock:
                if callback in self._callbacks:
                    callbacks = list(self._callbacks)
                    callbacks.remove(callback)
                    self._callbacks = tuple(callbacks)

        return remove

    def snapshot(self) -> tuple[C, ...]:
        """The callbacks now, to call without holding any lock (a callback may remove itself)."""
        return self._callbacks

    def clear(self) -> None:
        with self._lock:
            self._callbacks = ()
