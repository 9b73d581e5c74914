"""A UDP SIP peer on a thread for the load path's tests: it answers each request through a handler the
test writes (responses may be delayed) and records what arrived, from where."""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType

from harness.sip.errors import SipParseError
from harness.sip.message import Request, parse_message
from harness.sip.response import make_response

Address = tuple[str, int]
# handler(request, source address) -> [(delay seconds, response bytes)]
Handler = Callable[[Request, Address], list[tuple[float, bytes]]]


def answer(request: Request, code: int, reason: str, **kwargs: object) -> bytes:
    return make_response(request, code, reason, to_tag="peer", **kwargs).to_bytes()  # type: ignore[arg-type]


class UdpPeer:
    def __init__(self, handler: Handler, host: str = "127.0.0.1") -> None:
        self.handler = handler
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((host, 0))
        self.address: Address = self.sock.getsockname()
        self.received: list[tuple[Request, Address, float]] = []
        self._pending: list[tuple[float, bytes, Address]] = []
        self._stop = threading.Event()
        self._lock = threading.Condition()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> UdpPeer:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()

    def requests(self, method: str) -> list[tuple[Request, Address, float]]:
        with self._lock:
            return [r for r in self.received if r[0].method == method]

    def first_requests(self, method: str) -> list[tuple[Request, Address, float]]:
        """The first arrival of each ``method`` transaction: a retransmission (timer A fires when the
        machine is busy and the answer is late) is the same call, not another one."""
        seen: set[tuple[str, int]] = set()
        first = []
        for entry in self.requests(method):
            key = (entry[0].call_id, entry[0].cseq.number)
            if key not in seen:
                seen.add(key)
                first.append(entry)
        return first

    def wait_requests(
        self, method: str, count: int, timeout: float = 3.0
    ) -> list[tuple[Request, Address, float]]:
        """The ``method`` requests once ``count`` have arrived, or at the deadline (the test then fails)."""
        with self._lock:
            self._lock.wait_for(lambda: sum(r[0].method == method for r in self.received) >= count, timeout)
            return [r for r in self.received if r[0].method == method]

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            due = [p for p in self._pending if p[0] <= now]
            self._pending = [p for p in self._pending if p[0] > now]
            for _, data, addr in due:
                self.sock.sendto(data, addr)
            wake = min((p[0] for p in self._pending), default=now + 0.02)
            ready, _, _ = select.select([self.sock], [], [], max(0.0, min(wake - now, 0.02)))
            if not ready:
                continue
            data, addr = self.sock.recvfrom(65535)
            try:
                request = parse_message(data)
            except SipParseError:
                continue
            if not isinstance(request, Request):
                continue
            arrived = time.monotonic()
            with self._lock:
                self.received.append((request, addr, arrived))
                self._lock.notify_all()
            for delay, reply in self.handler(request, addr):
                if delay <= 0:
                    self.sock.sendto(reply, addr)
                else:
                    self._pending.append((arrived + delay, reply, addr))
