"""Callbacks that other threads register and remove: the model's log bus and document store both
publish to them."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

C = TypeVar("C")


class Subscribers(Generic[C]):
    """Thread-safe list of callbacks; :meth:`add` returns the function that removes the callback again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._callbacks: list[C] = []

    def add(self, callback: C) -> Callable[[], None]:
        with self._lock:
            self._callbacks.append(callback)

        def remove() -> None:
            with self._lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return remove

    def snapshot(self) -> list[C]:
        """The callbacks now, to call without holding this lock (a callback may remove itself)."""
        with self._lock:
            return list(self._callbacks)

    def clear(self) -> None:
        with self._lock:
            self._callbacks.clear()
