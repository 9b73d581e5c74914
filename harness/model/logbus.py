"""The embedded model's logs: one bus the roles write to, three files that look like the real ones.

Each call formats a line the way the real component would (harness.kazoo.logformat), appends it to
``freeswitch.log`` / ``kamailio.log`` / ``kazoo.log``, then hands a :class:`LogRecord` to every
subscriber (the event socket server). Roles may run in several threads, so every method is thread-safe;
subscribers are called in the writer's thread (under the bus lock, so keep them short) and must hand
over to their own loop (``loop.call_soon_threadsafe``).

Writing: a line logged from a running event loop is buffered and the buffers go out in one write per
file when the loop finishes what it is doing (``call_soon``), or sooner, by :meth:`LogBus.flush`, which
the roles call before they send a datagram: what was logged about a message is in the files before
anything it caused leaves the model (tests and log assertions rely on that order). A line logged
outside a loop is written at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from harness.kazoo.logformat import Level, fs_line, kamailio_line, kazoo_line, normalize_level
from harness.kazoo.release import KamailioLogStyle
from harness.model.subscribers import Subscribers

_log = logging.getLogger(__name__)

SOURCES = ("freeswitch", "kamailio", "kazoo")


class LogRecord(NamedTuple):  # a tuple: one per line written, the cheapest immutable record
    source: str  # "freeswitch" | "kamailio" | "kazoo"
    level: str  # normalized syslog name (logformat.normalize_level)
    text: str  # the line exactly as written to the file
    call_id: str | None
    file: str | None
    line: int | None
    func: str | None
    wall_time: float
    message: str = ""  # the bare message, to re-format (event-socket bodies)
    app: str | None = None  # Kazoo application for kazoo records


Subscriber = Callable[[LogRecord], None]


class LogBus:
    def __init__(self, log_dir: Path, kamailio_style: KamailioLogStyle) -> None:
        self.log_dir = Path(log_dir)
        self.kamailio_style = kamailio_style
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()  # re-entrant: a subscriber may log itself
        self._files: dict[str, int] = {}  # source -> file descriptor (O_APPEND)
        self._pending: dict[str, list[str]] = {}  # source -> lines not written yet
        self._flush_loop: asyncio.AbstractEventLoop | None = None  # the loop a flush is scheduled on
        self._subscribers: Subscribers[Subscriber] = Subscribers()
        self._pid = os.getpid()
        self._closed = False

    def path(self, source: str) -> Path:
        return self.log_dir / f"{source}.log"

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Receive every record from now on; returns the function that ends the subscription."""
        return self._subscribers.add(callback)

    def freeswitch(
        self, level: Level, file: str, line: int, message: str, call_id: str | None = None, *, func: str = ""
    ) -> LogRecord:
        now = time.time()
        text = fs_line(level, file, line, message, call_id=call_id, when=now, uuid_prefix=call_id is not None)
        record = LogRecord(
            "freeswitch", normalize_level(level), text, call_id, file, line, func, now, message
        )
        self._emit(record)
        return record

    def kamailio(
        self,
        level: Level,
        message: str,
        call_id: str | None = None,
        area: str = "end",
        *,
        where: tuple[str, int, str] | None = None,
    ) -> LogRecord:
        """A line of the routing script (``where``: the xlog's file, line and route, which 5.x's prefix
        shows; harness.model.sbc_lines)."""
        now = time.time()
        text = kamailio_line(self.kamailio_style, level, message, call_id, area, pid=self._pid, where=where)
        file, line = (where[0], where[1]) if where is not None else ("script", None)
        record = LogRecord("kamailio", normalize_level(level), text, call_id, file, line, None, now, message)
        self._emit(record)
        return record

    def kamailio_core(self, level: Level, text: str, message: str) -> LogRecord:
        """A line of Kamailio's core or of a module (``text`` already formatted, without the stderr
        head; harness.model.sbc_lines.CORE): no Call-ID, the same in every release."""
        now = time.time()
        record = LogRecord(
            "kamailio",
            normalize_level(level),
            f" 0({self._pid}) {text}",
            None,
            "core",
            None,
            None,
            now,
            message,
        )
        self._emit(record)
        return record

    def kazoo(
        self, app: str, module: str, line: int, level: Level, message: str, call_id: str | None = None
    ) -> LogRecord:
        now = time.time()
        text = kazoo_line(level, module, line, message, call_id=call_id, when=now)
        record = LogRecord(
            "kazoo", normalize_level(level), text, call_id, module, line, None, now, message, app
        )
        self._emit(record)
        return record

    def close(self) -> None:
        with self._lock:
            self._write_pending()
            self._closed = True
            for fd in self._files.values():
                os.close(fd)
            self._files.clear()
            self._subscribers.clear()

    def flush(self) -> None:
        """Write every buffered line now (cheap when there is none)."""
        if self._pending:
            with self._lock:
                self._write_pending()

    def _scheduled_flush(self) -> None:
        self._flush_loop = None
        self.flush()

    def _write_pending(self) -> None:  # under the lock
        pending, self._pending = self._pending, {}
        for source, lines in pending.items():
            self._write(source, "".join(lines))

    def _write(self, source: str, text: str) -> None:  # under the lock
        fd = self._files.get(source)
        if fd is None:
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
            fd = self._files[source] = os.open(self.path(source), flags, 0o644)
        data = text.encode("utf-8")
        while data:
            data = data[os.write(fd, data) :]

    def _emit(self, record: LogRecord) -> None:
        record = _printable(record)
        with self._lock:
            if self._closed:
                return
            try:
                loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
            if loop is None:  # no loop to flush later: now, after anything buffered before it
                self._write_pending()
                self._write(record.source, record.text + "\n")
            else:
                self._pending.setdefault(record.source, []).append(record.text + "\n")
                if self._flush_loop is not loop:  # (a loop that closed before flushing does not count)
                    self._flush_loop = loop
                    loop.call_soon(self._scheduled_flush)
            # Delivered under the lock so every subscriber sees records in file order.
            for callback in self._subscribers.snapshot():
                try:
                    callback(record)
                except Exception:  # a broken listener must not break the roles that log
                    _log.exception("log subscriber %r failed", callback)


def _escape(text: str | None) -> str | None:
    # header text keeps undecodable wire bytes as surrogates; a log line shows them escaped (\udc93)
    return None if text is None else text.encode("utf-8", "backslashreplace").decode("utf-8")


def _printable(record: LogRecord) -> LogRecord:
    if record.text.isascii() and (record.call_id is None or record.call_id.isascii()):
        return record
    return record._replace(
        text=_escape(record.text) or "",
        message=_escape(record.message) or "",
        call_id=_escape(record.call_id),
    )
