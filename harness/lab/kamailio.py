"""Run the lab target's real Kamailio: fill kamailio.cfg.tmpl, start it, wait until it answers.

The process is started in the foreground (``-DD -E``) with its own pid file, run directory and
working directory under ``workdir``; stderr (the log, including the script's xlog lines) goes to
``<workdir>/kamailio.log``. It is stopped by the PID this object started, never by name.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Protocol

from harness.lab.ready import wait_options_answer

# Modules the template loads; kamailio_available() reports the first one missing.
REQUIRED_MODULES = (
    "kex",
    "corex",
    "tm",
    "tmx",
    "sl",
    "pv",
    "xlog",
    "textops",
    "siputils",
    "rr",
    "maxfwd",
    "sanity",
    "dispatcher",
    "auth",
    "async",
)

_MODULE_DIR_GLOBS = (
    "/usr/lib/*/kamailio/modules",
    "/usr/lib/kamailio/modules",
    "/usr/local/lib*/kamailio/modules",
    "/usr/lib64/kamailio/modules",
)

# The script's log areas: "pipe" style (4.3) writes "<callid>|<area>|message"; "prefixed" style (5.x)
# sets xlog's prefix "|<callid>|<file>:<line> (<route>) " and writes "end - " or "start - " where 5.x
# does, nothing for the other areas.
_AREAS = ("start", "log", "end", "failure")
_PREFIXED_AREAS = {"start": "start - ", "log": "", "end": "end - ", "failure": ""}
_PLACEHOLDER = re.compile(r"\{\{([A-Z_]+)\}\}")
LOG_STYLES = ("pipe", "prefixed")
# 5.x defs.cfg KZ_LOG_SCRIPT_PREFIX, as the port writes it for stock 5.6
XLOG_PREFIX = "|$ci|$cfg(file):$cfg(line) ($(cfg(route){s.tolower})) "
# The boolean fields of a style, each a #!define of the template (its upper-case name without "sbc_")
STYLE_SWITCHES = (
    "sbc_rewrites_604",
    "sbc_challenges_untrusted",
    "sbc_removes_initial_route",
    "sbc_accepts_tcp_without_content_length",
    "sbc_x_auth_for_authorized_only",
    "sbc_drops_qnq_and_portsip_sdp",
    "sbc_max_forwards_skips_options",
    "sbc_relays_607",
    "sbc_relays_media_407",
)
_DEFINES = {
    "sbc_rewrites_604": "REWRITE_604",
    "sbc_challenges_untrusted": "SBC_CHALLENGES_UNTRUSTED",
    "sbc_removes_initial_route": "SBC_REMOVES_INITIAL_ROUTE",
    "sbc_accepts_tcp_without_content_length": "SBC_ACCEPTS_TCP_WITHOUT_CL",
    "sbc_x_auth_for_authorized_only": "SBC_X_AUTH_FOR_AUTHORIZED_ONLY",
    "sbc_drops_qnq_and_portsip_sdp": "SBC_DROPS_QNQ_AND_PORTSIP_SDP",
    "sbc_max_forwards_skips_options": "SBC_MAX_FORWARDS_SKIPS_OPTIONS",
    "sbc_relays_607": "SBC_RELAYS_607",
    "sbc_relays_media_407": "SBC_RELAYS_MEDIA_407",
}

# A trusted source: ip, mask bits, port (0: any), as the permissions address table holds it
TrustedSource = tuple[str, int, int]


class SbcStyle(Protocol):
    """What differs between the Kazoo releases this configuration imitates: a KazooRelease
    (harness.kazoo.release, whose fields say what each one means) is one. This package names no
    release, so that the Kamailio image runs it with the standard library alone (its entry point builds
    a :class:`LabStyle` from flags)."""

    @property
    def kamailio_log_style(self) -> str: ...  # "pipe" (4.3) or "prefixed" (5.x)

    @property
    def sbc_rewrites_604(self) -> bool: ...

    @property
    def sbc_challenges_untrusted(self) -> bool: ...

    @property
    def sbc_removes_initial_route(self) -> bool: ...

    @property
    def sbc_accepts_tcp_without_content_length(self) -> bool: ...

    @property
    def sbc_x_auth_for_authorized_only(self) -> bool: ...

    @property
    def sbc_drops_qnq_and_portsip_sdp(self) -> bool: ...

    @property
    def sbc_max_forwards_skips_options(self) -> bool: ...

    @property
    def sbc_relays_607(self) -> bool: ...

    @property
    def sbc_relays_media_407(self) -> bool: ...


@dataclass(frozen=True)
class LabStyle:
    """An :class:`SbcStyle` from plain values (the Kamailio image's flags); the defaults are 4.3's."""

    kamailio_log_style: str = "pipe"
    sbc_rewrites_604: bool = False
    sbc_challenges_untrusted: bool = False
    sbc_removes_initial_route: bool = False
    sbc_accepts_tcp_without_content_length: bool = False
    sbc_x_auth_for_authorized_only: bool = False
    sbc_drops_qnq_and_portsip_sdp: bool = False
    sbc_max_forwards_skips_options: bool = False
    sbc_relays_607: bool = False
    sbc_relays_media_407: bool = True

    def __post_init__(self) -> None:
        if self.kamailio_log_style not in LOG_STYLES:
            raise ValueError(f"unknown log style {self.kamailio_log_style!r}; expected one of {LOG_STYLES}")


def style_flags(style: SbcStyle) -> list[str]:
    """The Kamailio image's flags for ``style``: ``--log-style S`` and one ``--SWITCH`` / ``--no-SWITCH``
    per boolean (docker/lab_kamailio.py reads them back with :func:`style_from_flags`)."""
    flags = ["--log-style", style.kamailio_log_style]
    for name in STYLE_SWITCHES:
        flags.append(f"--{name}" if getattr(style, name) else f"--no-{name}")
    return flags


def trusted_flags(trusted: Sequence[TrustedSource]) -> list[str]:
    """``--trusted IP/MASK:PORT`` per source, for the Kamailio image."""
    return [arg for ip, mask, port in trusted for arg in ("--trusted", f"{ip}/{mask}:{port}")]


def parse_trusted(text: str) -> TrustedSource:
    """``IP/MASK:PORT`` (the form :func:`trusted_flags` writes) as a TrustedSource."""
    cidr, _, port = text.rpartition(":")
    ip, _, mask = cidr.partition("/")
    if not ip.startswith("127.") or not mask.isdigit() or not port.isdigit():
        raise ValueError(f"expected a loopback IP/MASK:PORT, got {text!r}")
    return ip, int(mask), int(port)


def trusted_route(trusted: Sequence[TrustedSource]) -> str:
    """The body of route[CLASSIFY_SOURCE]: FLAG_TRUSTED_SOURCE for each trusted source (port 0: any)."""
    lines = []
    for ip, mask, port in trusted:
        if not ip.startswith("127."):
            raise ValueError(f"trusted sources must be loopback addresses, got {ip}")
        test = f"src_ip == {ip}/{mask}" + (f" && src_port == {port}" if port else "")
        lines.append(f"\tif ({test}) {{ setflag(FLAG_TRUSTED_SOURCE); return; }}")
    return "\n".join(lines) or "\treturn;"


class KamailioError(RuntimeError):
    """Kamailio could not be started, or did not become ready in time."""


@dataclass(frozen=True)
class HepExport:
    """Where the lab Kamailio mirrors every SIP message it reads and writes, as HEP (siptrace module)."""

    address: tuple[str, int]
    transport: str = "udp"  # "udp" | "tcp"
    version: int = 3  # 1, 2 or 3
    capture_id: int = 1

    def defines(self) -> list[str]:
        host, port = self.address
        if not host.startswith("127."):
            raise ValueError(f"the HEP collector must be a loopback address, got {host}")
        if self.transport not in ("udp", "tcp") or self.version not in (1, 2, 3):
            raise ValueError(f"HEP over {self.transport}, version {self.version}: use udp/tcp and 1-3")
        uri = f"sip:{host}:{port}" + (";transport=tcp" if self.transport == "tcp" else "")
        return [
            "#!define WITH_HEP",
            f'#!define HEP_URI "{uri}"',
            f"#!define HEP_VERSION {self.version}",
            f"#!define HEP_CAPTURE_ID {self.capture_id}",
        ]


def _terminate(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM to the main process (it stops its workers); SIGKILL to its process group after
    ``timeout``. Only the process started here and its own group are ever signalled."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # the group id is the PID: start_new_session
    except ProcessLookupError:
        return
    process.wait(timeout=timeout)


def kamailio_binary() -> str | None:
    return shutil.which("kamailio") or next(
        (p for p in ("/usr/sbin/kamailio", "/usr/local/sbin/kamailio") if os.access(p, os.X_OK)), None
    )


def kamailio_module_dir() -> Path | None:
    for pattern in _MODULE_DIR_GLOBS:
        for found in sorted(glob.glob(pattern)):
            if Path(found, "tm.so").is_file():
                return Path(found)
    return None


def kamailio_available(*extra_modules: str | None) -> str | None:
    """None when the lab Kamailio can run here (with ``extra_modules`` too), else the reason to skip."""
    if kamailio_binary() is None:
        return "kamailio binary not found (apt-get install kamailio kamailio-extra-modules)"
    module_dir = kamailio_module_dir()
    if module_dir is None:
        return "kamailio modules directory not found (apt-get install kamailio)"
    for name in (*REQUIRED_MODULES, *(m for m in extra_modules if m)):
        if not (module_dir / f"{name}.so").is_file():
            return f"kamailio module {name}.so missing in {module_dir}"
    return None


def render_config(
    *,
    listen_ip: str,
    port: int,
    dispatcher_list: Path,
    module_dir: Path,
    style: SbcStyle,
    sanity_drops_request: bool,
    ping_interval: int = 1,
    hep: HepExport | None = None,
    trusted: Sequence[TrustedSource] = (),
) -> str:
    """The template with every placeholder filled; raises KeyError for an unknown one."""
    prefixed = style.kamailio_log_style == "prefixed"
    defines = [f"#!define {_DEFINES[name]}" for name in STYLE_SWITCHES if getattr(style, name)]
    if prefixed:
        defines.append("#!define PREFIXED_LOG")
    if sanity_drops_request:
        defines.append("#!define SANITY_DROPS_REQUEST")
    if hep is not None:
        defines += hep.defines()
    xlog_prefix = f'modparam("xlog", "prefix", "{XLOG_PREFIX}")\nmodparam("xlog", "prefix_mode", 1)'
    values = {
        "DEFINES": "\n".join(defines),
        "XLOG_PREFIX": xlog_prefix if prefixed else "",
        "LISTEN_IP": listen_ip,
        "PORT": str(port),
        "MODULE_DIR": str(module_dir),
        "DISPATCHER_LIST": str(dispatcher_list),
        "PING_INTERVAL": str(ping_interval),
        "TRUSTED": trusted_route(trusted),
        "REPLY": "" if prefixed else "internal reply ",
    }
    for area in _AREAS:
        values[area.upper()] = _PREFIXED_AREAS[area] if prefixed else f"$ci|{area}|"
    template = resources.files("harness.lab").joinpath("kamailio.cfg.tmpl").read_text()
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def dispatcher_list_text(media: tuple[str, int] | None) -> str:
    """Group 1 (primary media servers) holds the media role, probed with OPTIONS (flag 8)."""
    lines = ["# setid destination flags priority attrs"]
    if media is not None:
        ip, port = media
        lines.append(f"1 sip:{ip}:{port} 8 0")
    return "\n".join(lines) + "\n"


def free_port(ip: str) -> int:
    """A port free for both UDP and TCP on ``ip`` (another process may still take it later)."""
    return free_ports(ip, 1)[0]


def free_ports(ip: str, count: int) -> list[int]:
    """``count`` distinct ports free for both UDP and TCP on ``ip``: each is held until all are chosen,
    so two of them cannot be the same port (another process may still take one later)."""
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        for _ in range(50 * count):
            if len(ports) == count:
                return ports
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            held.append(udp)
            udp.bind((ip, 0))
            port = int(udp.getsockname()[1])
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(tcp)
            try:
                tcp.bind((ip, port))
            except OSError:
                continue
            ports.append(port)
        if len(ports) == count:
            return ports
    finally:
        for sock in held:
            sock.close()
    raise KamailioError(f"no {count} port(s) free for both UDP and TCP on {ip}")


class LogFollower:
    """Reads Kamailio's output line by line: appends it to the log file and wakes waiters."""

    def __init__(self, process: subprocess.Popen[bytes], path: Path) -> None:
        assert process.stdout is not None
        self._stream = process.stdout
        self._path = path
        self._lines: list[str] = []
        self._changed = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"kamailio-log-{process.pid}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with self._path.open("ab") as log:
            for raw in self._stream:
                log.write(raw)
                log.flush()
                with self._changed:
                    self._lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                    self._changed.notify_all()
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def lines(self) -> list[str]:
        with self._changed:
            return list(self._lines)

    def wait_for(self, pattern: re.Pattern[str], timeout: float, since: int) -> str:
        deadline = time.monotonic() + timeout
        checked = since
        with self._changed:
            while True:
                for line in self._lines[checked:]:
                    if pattern.search(line):
                        return line
                checked = max(checked, len(self._lines))
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    tail = "\n".join(self._lines[-15:])
                    raise TimeoutError(
                        f"no kamailio log line matching {pattern.pattern!r} within {timeout} s "
                        f"({'output closed' if self._closed else 'timed out'}); last lines:\n{tail}"
                    )
                self._changed.wait(remaining)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


class LabKamailio:
    """A real Kamailio in front of a media role, configured like Kazoo's SBC."""

    def __init__(
        self,
        listen_ip: str = "127.0.0.1",
        port: int = 0,
        media: tuple[str, int] | None = None,
        *,
        style: SbcStyle,
        workdir: str | Path | None = None,
        sanity_drops_request: bool = True,
        ping_interval: int = 1,
        ready_timeout: float = 10.0,
        keep_workdir: bool = False,
        hep: HepExport | None = None,
        trusted: Sequence[TrustedSource] = (),
    ) -> None:
        if not listen_ip.startswith("127."):
            raise ValueError(f"listen_ip must be a loopback address, got {listen_ip}")
        if media is not None and not media[0].startswith("127."):
            raise ValueError(f"media must be a loopback address, got {media[0]}")
        self.listen_ip = listen_ip
        self.port = port
        self.media = media
        self.style = style
        self.trusted = tuple(trusted)
        self.sanity_drops_request = sanity_drops_request
        self.ping_interval = ping_interval
        self.ready_timeout = ready_timeout
        self.keep_workdir = keep_workdir
        self.hep = hep
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        self._workdir = Path(workdir) if workdir is not None else None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: LogFollower | None = None
        self._finalizer: weakref.finalize[[subprocess.Popen[bytes], float], LabKamailio] | None = None

    @property
    def workdir(self) -> Path:
        if self._workdir is None:
            raise KamailioError("not started: the temporary workdir is created by start()")
        return self._workdir

    @property
    def log_path(self) -> Path:
        return self.workdir / "kamailio.log"

    @property
    def config_path(self) -> Path:
        return self.workdir / "kamailio.cfg"

    @property
    def address(self) -> tuple[str, int]:
        return (self.listen_ip, self.port)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> LabKamailio:
        reason = kamailio_available("siptrace" if self.hep is not None else None)
        if reason is not None:
            raise KamailioError(reason)
        if self._process is not None:
            raise KamailioError("already started")
        if self._workdir is None:
            self._tempdir = tempfile.TemporaryDirectory(prefix="lab-kamailio-")
            self._workdir = Path(self._tempdir.name)
        self._workdir.mkdir(parents=True, exist_ok=True)
        run_dir = self._workdir / "run"
        run_dir.mkdir(exist_ok=True)
        if self.port == 0:
            self.port = free_port(self.listen_ip)
        dispatcher_list = self._workdir / "dispatcher.list"
        dispatcher_list.write_text(dispatcher_list_text(self.media))
        module_dir = kamailio_module_dir()
        assert module_dir is not None  # checked by kamailio_available()
        self.config_path.write_text(
            render_config(
                listen_ip=self.listen_ip,
                port=self.port,
                dispatcher_list=dispatcher_list,
                module_dir=module_dir,
                style=self.style,
                sanity_drops_request=self.sanity_drops_request,
                ping_interval=self.ping_interval,
                hep=self.hep,
                trusted=self.trusted,
            )
        )
        binary = kamailio_binary()
        assert binary is not None
        command = [
            binary,
            "-DD",
            "-E",
            "-f", str(self.config_path),
            "-P", str(run_dir / "kamailio.pid"),
            "-Y", str(run_dir),
            "-w", str(self._workdir),
            "-m", "64",
            "-M", "8",
        ]  # fmt: skip
        # stdout and stderr go through a pipe so that tests can wait for a log line as an event
        # its own session: a last-resort SIGKILL can reach the workers through the process group
        # this object created, and a Ctrl-C meant for the harness does not hit Kamailio directly
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=self._workdir,
            start_new_session=True,
        )
        # stops the process even when this object is dropped without stop() (e.g. at exit)
        self._finalizer = weakref.finalize(self, _terminate, self._process, 5.0)
        self._log = LogFollower(self._process, self.log_path)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        """Send OPTIONS until one is answered; the deadline is ready_timeout."""
        process = self._process
        assert process is not None
        readiness = wait_options_answer(
            (self.listen_ip, self.port),
            time.monotonic() + self.ready_timeout,
            who="lab-ready",
            exited=lambda: process.poll() is not None,
            want=b"SIP/2.0 200",
            probe_wait=0.05,  # each probe waits at most 50 ms for its answer, then is sent again
        )
        if readiness == "exited":
            raise KamailioError(
                f"kamailio exited with {process.returncode} before answering; "
                f"see {self.log_path}:\n{self._log_tail()}"
            )
        if readiness == "timeout":
            raise KamailioError(
                f"kamailio did not answer OPTIONS on {self.listen_ip}:{self.port} within "
                f"{self.ready_timeout} s; see {self.log_path}:\n{self._log_tail()}"
            )

    def _log_tail(self, lines: int = 20) -> str:
        if self._log is None:
            return "(no log)"
        self._log.join(timeout=1.0)  # the process is gone or going: let the reader catch up
        return "\n".join(self._log.lines()[-lines:])

    def log_mark(self) -> int:
        """The number of log lines so far: pass it as ``since`` to look only at later lines."""
        return len(self._follower().lines())

    def log_lines(self, since: int = 0) -> list[str]:
        return self._follower().lines()[since:]

    def wait_for_log(self, pattern: str | re.Pattern[str], timeout: float, since: int = 0) -> str:
        """The first log line at index >= ``since`` that matches ``pattern`` (re.search).

        Raises TimeoutError, with the last lines, when none appears within ``timeout`` seconds.
        """
        return self._follower().wait_for(re.compile(pattern), timeout, since)

    def _follower(self) -> LogFollower:
        if self._log is None:
            raise KamailioError("not started")
        return self._log

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM to the PID started here, SIGKILL when it has not exited after ``timeout``."""
        process, self._process = self._process, None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if process is not None:
            _terminate(process, timeout)
        if self._log is not None:
            self._log.join(timeout=timeout)
        if self._tempdir is not None and not self.keep_workdir:
            self._tempdir.cleanup()
            self._tempdir = None
            self._workdir = None

    def __enter__(self) -> LabKamailio:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
