"""A fixed source address (ip, port) is one resource for every harness process on a host.

A carrier role that must send from a fixed port (an ACL entry restricted to port 5070, say) can be wanted
by two runs at once: the catalog on one pytest-xdist worker and a diagnose on the other, or two engineers on
one test host. The second would fail to bind (EADDRINUSE) and report a false "error". Instead each holder
takes an exclusive ``flock`` on a lock file named after the address, and the next one waits for it, up to a
deadline, then fails with a message naming the address.

flock has no timeout, so a daemon thread blocks in it and signals an event; the caller waits on that event
with its deadline. A lock the caller gave up on is released by the thread the moment it is granted.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import threading
from pathlib import Path

WAIT_SECONDS = 10.0  # a holder keeps the address for one exchange, well under a second


class SourceAddressBusy(OSError):
    """Another harness process held the fixed source address for longer than the wait."""


def lock_dir() -> Path:
    path = Path(
        os.environ.get("KAZOO_HARNESS_LOCK_DIR") or Path(tempfile.gettempdir()) / "kazoo-harness-ports"
    )
    path.mkdir(parents=True, exist_ok=True)
    return path


class SourcePortLock:
    """Exclusive use of (ip, port, transport) among harness processes; ``release()`` gives it back."""

    def __init__(self, ip: str, port: int, transport: str, *, wait: float = WAIT_SECONDS) -> None:
        self.address = f"{ip}:{port}/{transport}"
        path = lock_dir() / f"{ip}_{port}_{transport}.lock"
        self._fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        if self._try_lock():
            return
        granted, abandoned = threading.Event(), threading.Event()
        guard = threading.Lock()  # grant and abandonment are decided one at a time
        fd = self._fd

        def block_until_granted() -> None:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with guard:
                if abandoned.is_set():
                    os.close(fd)  # the caller gave up: release at once
                else:
                    granted.set()

        threading.Thread(target=block_until_granted, name=f"lock {self.address}", daemon=True).start()
        if granted.wait(wait):
            return
        with guard:
            if granted.is_set():
                return
            abandoned.set()
        self._fd = None
        raise SourceAddressBusy(
            f"source address {self.address} is held by another harness process for more than {wait:g} s "
            f"(lock file {path})"
        )

    def _try_lock(self) -> bool:
        assert self._fd is not None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
