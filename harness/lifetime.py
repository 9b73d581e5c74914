"""Stop what this process started when it ends: normally, on Ctrl-C, on SIGTERM or SIGHUP.

atexit (and each object's weakref finalizer) covers a normal exit and Ctrl-C, which unwinds pytest; SIGTERM
and SIGHUP kill without unwinding, so they get a handler that stops everything registered here and then
dies of the same signal — installed only where no other handler is, and only from the main thread.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import threading
from types import FrameType
from typing import Protocol


class Stoppable(Protocol):
    def stop(self) -> None: ...


_LIVE: list[Stoppable] = []
_LOCK = threading.Lock()
_INSTALLED = False


def register(thing: Stoppable) -> None:
    _install()
    with _LOCK:
        _LIVE.append(thing)


def unregister(thing: Stoppable) -> None:
    with _LOCK:
        if thing in _LIVE:
            _LIVE.remove(thing)


def stop_all() -> None:
    """Stop every registered object, the most recently started first."""
    with _LOCK:
        things = list(reversed(_LIVE))
    for thing in things:
        with contextlib.suppress(Exception):
            thing.stop()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    stop_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install() -> None:
    global _INSTALLED
    if _INSTALLED:
        return
    _INSTALLED = True
    atexit.register(stop_all)
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is signal.SIG_DFL:
            signal.signal(signum, _on_signal)
