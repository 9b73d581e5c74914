"""A FreeSWITCH-compatible event socket (mod_event_socket, inbound mode) over the model's LogBus.

Framing follows mod_event_socket.c: every frame is ``Header: value`` lines, a blank line, and a body of
``Content-Length`` bytes. Supported commands: ``auth``, ``log <level>``, ``nolog``, ``event plain|json
<names>``, ``noevents``, ``api <cmd>``, ``exit``. Log frames carry only FreeSWITCH records (as the real
switch only streams its own log), with the channel UUID (= the SIP Call-ID) in ``User-Data``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from harness.kazoo.logformat import fs_line, level_number
from harness.kazoo.release import DEFAULTS
from harness.model.logbus import LogBus, LogRecord

ApiHandler = Callable[[str], Awaitable[str]]

AUTH_REQUEST = b"Content-Type: auth/request\n\n"
RUDE_REJECTION_TEXT = "Access Denied, go away.\n"
DISCONNECT_TEXT = "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
MAX_COMMAND_BYTES = 1024 * 1024
# SWITCH_CHANNEL_ID_LOG / SWITCH_CHANNEL_ID_SESSION: session lines are the ones with a channel UUID.
TEXT_CHANNEL_LOG = 0
TEXT_CHANNEL_SESSION = 3
CPU_IDLE = 99.0  # the body's idle figure; the model has no CPU meter worth reporting


def frame(headers: Mapping[str, str | int], body: str = "") -> bytes:
    """One event-socket frame; ``Content-Length`` is added when there is a body."""
    data = body.encode("utf-8")
    lines = [f"{name}: {value}" for name, value in headers.items()]
    if data:
        lines.insert(1 if lines else 0, f"Content-Length: {len(data)}")
    return ("\n".join(lines) + "\n\n").encode("utf-8") + data


def command_reply(text: str, **extra: str) -> bytes:
    return frame({"Content-Type": "command/reply", "Reply-Text": text, **extra})


def log_frame(record: LogRecord) -> bytes:
    """A ``log/data`` frame as mod_event_socket sends it: the level, channel, source position and the
    channel UUID as headers, the full line (idle% form, trailing newline) as body."""
    body = (
        fs_line(
            record.level,
            record.file or "",
            record.line or 0,
            record.message,
            when=record.wall_time,
            idle=CPU_IDLE,
        )
        + "\n"
    )
    data = body.encode("utf-8")
    headers = (
        "Content-Type: log/data\n"
        f"Content-Length: {len(data)}\n"
        f"Log-Level: {level_number(record.level)}\n"
        f"Text-Channel: {TEXT_CHANNEL_SESSION if record.call_id else TEXT_CHANNEL_LOG}\n"
        f"Log-File: {record.file or ''}\n"
        f"Log-Func: {record.func or ''}\n"
        f"Log-Line: {record.line or 0}\n"
        f"User-Data: {record.call_id or ''}\n"
        "\n"
    )
    return headers.encode("utf-8") + data


def event_frame(event: Mapping[str, Any], fmt: str) -> bytes:
    if fmt == "json":
        body = json.dumps({k: str(v) for k, v in event.items()})
        return frame({"Content-Type": "text/event-json"}, body)
    # Plain form: URL-encoded headers; a body (``_body`` in JSON) follows its own Content-Length.
    headers = {k: str(v) for k, v in event.items() if k != "_body"}
    body = str(event.get("_body", ""))
    if body:
        headers["Content-Length"] = str(len(body.encode("utf-8")))
    plain = "".join(f"{k}: {urllib.parse.quote(v)}\n" for k, v in headers.items()) + "\n" + body
    return frame({"Content-Type": "text/event-plain"}, plain)


class _Listener:
    """One connected client: its subscriptions and its ordered outbound queue."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.outbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.authed = False
        self.log_level: int | None = None
        self.event_format: str | None = None
        self.event_names: set[str] = set()

    def wants_event(self, event: Mapping[str, Any]) -> bool:
        if self.event_format is None:
            return False
        name = str(event.get("Event-Name", ""))
        if "ALL" in self.event_names:
            return True
        if name == "CUSTOM":
            return "CUSTOM" in self.event_names and (
                str(event.get("Event-Subclass", "")) in self.event_names or self.event_names == {"CUSTOM"}
            )
        return name in self.event_names


class EslServer:
    def __init__(
        self,
        bus: LogBus,
        host: str = "127.0.0.1",
        port: int = 0,
        password: str = DEFAULTS.esl_password,
        api_handler: ApiHandler | None = None,
        *,
        acl: Iterable[str] | None = None,
    ) -> None:
        self.bus = bus
        self.host = host
        self._requested_port = port
        self.password = password
        self.api_handler = api_handler
        self.acl = None if acl is None else [ipaddress.ip_network(cidr, strict=False) for cidr in acl]
        self._server: asyncio.base_events.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listeners: set[_Listener] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._unsubscribe: Callable[[], None] | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("EslServer is not started")
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._server = await asyncio.start_server(self._serve, self.host, self._requested_port)
        self._unsubscribe = self.bus.subscribe(self._on_record)

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        # Closing the sockets ends each connection's handler through EOF; cancelling the handlers instead
        # makes asyncio's stream callback log the CancelledError (Python 3.11).
        for listener in list(self._listeners):
            listener.writer.close()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=5.0)
            for task in pending:
                task.cancel()

    def has_listeners(self) -> bool:
        """Whether any client is connected (events for nobody need not be built)."""
        return bool(self._listeners)

    def publish_event(self, event: Mapping[str, Any]) -> None:
        """Send an event (a dict with ``Event-Name``) to the subscribed clients; callable from any thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        snapshot = dict(event)
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._deliver_event(snapshot)
        else:
            loop.call_soon_threadsafe(self._deliver_event, snapshot)

    # ------------------------------------------------------------ delivery (loop thread)

    def _on_record(self, record: LogRecord) -> None:  # bus thread
        if record.source != "freeswitch" or not self._listeners:  # nobody connected: nothing to send
            return
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:  # the roles log from the loop's own thread: no hand-over (and no wake-up)
            self._deliver_record(record)
            return
        with contextlib.suppress(RuntimeError):  # loop closed between the check and the call
            loop.call_soon_threadsafe(self._deliver_record, record)

    def _deliver_record(self, record: LogRecord) -> None:
        number = level_number(record.level)
        data: bytes | None = None
        for listener in self._listeners:
            if listener.log_level is not None and number <= listener.log_level:
                data = data or log_frame(record)
                listener.outbox.put_nowait(data)

    def _deliver_event(self, event: dict[str, Any]) -> None:
        for listener in self._listeners:
            if listener.wants_event(event) and listener.event_format is not None:
                listener.outbox.put_nowait(event_frame(event, listener.event_format))

    # ------------------------------------------------------------ one connection

    def _allowed(self, writer: asyncio.StreamWriter) -> bool:
        if self.acl is None:
            return True
        peer = writer.get_extra_info("peername")
        address = ipaddress.ip_address(peer[0])
        return any(address in network for network in self.acl)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        listener = _Listener(writer)
        sender = asyncio.create_task(self._send_loop(listener))
        try:
            if not self._allowed(writer):
                peer = writer.get_extra_info("peername")[0]
                self.bus.freeswitch("WARNING", "mod_event_socket.c", 2688, f'IP {peer} Rejected by acl "esl"')
                listener.outbox.put_nowait(
                    frame({"Content-Type": "text/rude-rejection"}, RUDE_REJECTION_TEXT)
                )
                # FreeSWITCH then ends the connection the usual way, with a disconnect notice.
                listener.outbox.put_nowait(frame({"Content-Type": "text/disconnect-notice"}, DISCONNECT_TEXT))
                return
            self._listeners.add(listener)
            listener.outbox.put_nowait(AUTH_REQUEST)
            while True:
                command = await self._read_command(reader)
                if command is None:
                    return
                if not await self._handle(listener, *command):
                    listener.outbox.put_nowait(
                        frame({"Content-Type": "text/disconnect-notice"}, DISCONNECT_TEXT)
                    )
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            # ValueError: a command line over the stream limit (garbage), treated as a broken client
            return
        finally:
            self._listeners.discard(listener)
            listener.outbox.put_nowait(None)
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError, ConnectionError):
                await asyncio.wait_for(sender, timeout=2.0)
            sender.cancel()
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), timeout=2.0)
            self._tasks.discard(task)

    @staticmethod
    async def _send_loop(listener: _Listener) -> None:
        while True:
            data = await listener.outbox.get()
            if data is None:
                return
            listener.writer.write(data)
            await listener.writer.drain()

    @staticmethod
    async def _read_command(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], str] | None:
        """The next command: its first line, its headers and body (``sendmsg`` style). None at EOF."""
        first = ""
        while not first:  # blank lines between commands are ignored, as the real reader does
            raw = await reader.readline()
            if not raw:
                return None
            first = raw.decode("utf-8", "replace").strip()
        headers: dict[str, str] = {}
        while True:
            raw = await reader.readline()
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                break
            name, _, value = line.partition(":")
            headers[name.strip()] = value.strip()
        body = ""
        length = int(headers.get("Content-Length", "0") or 0)
        if 0 < length <= MAX_COMMAND_BYTES:
            body = (await reader.readexactly(length)).decode("utf-8", "replace")
        return first, headers, body

    async def _handle(self, listener: _Listener, command: str, headers: dict[str, str], body: str) -> bool:
        """Answer one command; False ends the connection."""
        verb, _, arg = command.partition(" ")
        verb = verb.lower()
        arg = arg.strip()
        reply = listener.outbox.put_nowait
        if not listener.authed:
            if verb != "auth":
                reply(command_reply("-ERR command not found"))
                return True
            if arg == self.password:
                listener.authed = True
                reply(command_reply("+OK accepted"))
                return True
            reply(command_reply("-ERR invalid"))
            return False
        if verb == "exit":
            reply(command_reply("+OK bye"))
            return False
        if verb == "log":
            try:
                listener.log_level = level_number(arg or "debug")
            except ValueError:
                reply(command_reply("-ERR invalid log level"))
                return True
            # FreeSWITCH echoes the argument as given: "log" alone answers "+OK log level  [7]".
            reply(command_reply(f"+OK log level {arg} [{listener.log_level}]"))
        elif verb == "nolog":
            was_logging = listener.log_level is not None
            listener.log_level = None
            reply(command_reply("+OK no longer logging" if was_logging else "-ERR not loging"))
        elif verb == "event":
            self._subscribe_events(listener, arg)
        elif verb == "noevents":
            was_listening = listener.event_format is not None
            listener.event_format = None
            listener.event_names.clear()
            reply(
                command_reply(
                    "+OK no longer listening for events" if was_listening else "-ERR not listening for events"
                )
            )
        elif verb == "api":
            reply(frame({"Content-Type": "api/response"}, await self._run_api(arg)))
        elif verb == "bgapi":
            job = str(uuid.uuid4())
            reply(
                frame(
                    {"Content-Type": "command/reply", "Reply-Text": f"+OK Job-UUID: {job}", "Job-UUID": job}
                )
            )
            task = asyncio.create_task(self._background_job(job, arg))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            reply(command_reply("-ERR command not found"))
        return True

    def _subscribe_events(self, listener: _Listener, arg: str) -> None:
        words = arg.split()
        fmt = "plain"
        if words and words[0].lower() in ("plain", "json", "xml"):
            fmt = words.pop(0).lower()
        if fmt == "xml":  # not needed by the harness; say so instead of sending a different format
            listener.outbox.put_nowait(command_reply("-ERR xml event format not supported by the model"))
            return
        if not words:
            listener.outbox.put_nowait(command_reply("-ERR no keywords supplied"))
            return
        listener.event_format = fmt
        listener.event_names.update(words)
        listener.outbox.put_nowait(command_reply(f"+OK event listener enabled {fmt}"))

    async def _background_job(self, job: str, command: str) -> None:
        """``bgapi``: the result arrives later as a BACKGROUND_JOB event with the output as its body."""
        name, _, args = command.partition(" ")
        body = await self._run_api(command)
        self._deliver_event(
            {
                "Event-Name": "BACKGROUND_JOB",
                "Job-UUID": job,
                "Job-Command": name,
                "Job-Command-Arg": args,
                "_body": body,
            }
        )

    async def _run_api(self, command: str) -> str:
        name = command.split(" ", 1)[0]
        if self.api_handler is None:
            return f"-ERR {name} Command not found!\n"
        try:
            return await self.api_handler(command)
        except Exception as exc:  # the client gets the failure as text, as FreeSWITCH reports it
            return f"-ERR {name} failed: {exc}\n"
