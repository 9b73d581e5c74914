"""Run SIPp (Debian ``sip-tester``) as an independent SIP peer and read its final statistics.

``Sipp(options).start()`` runs ``sipp -nostdin`` in a fresh temporary directory with ``-trace_stat``
(statistics CSV) and ``-trace_err`` (error log) and a bounded call count (``-m``) and rate; ``wait()``
returns a :class:`SippResult` parsed from the CSV's last row. ``wait_listening()`` returns once a
UAS has bound its SIP socket, so a caller never races SIPp's start-up. The process is stopped by
the PID this object started, never by name.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import TracebackType

Address = tuple[str, int]

BUILT_IN_SCENARIOS = (
    "uac",
    "uas",
    "regexp",
    "3pcc-A",
    "3pcc-B",
    "3pcc-C-A",
    "3pcc-C-B",
    "branchc",
    "branchs",
)
UAS_BUFFER = 4_194_304  # SIPp's default 131 KB socket buffer drops bursts (environment.md)
VERSION_DEADLINE = 5.0
LISTEN_DEADLINE = 5.0
LISTEN_POLL = 0.005  # the kernel has no bind notification: re-read /proc/net/udp this often
STOP_DEADLINE = 5.0
EXIT_MEANINGS = {
    0: "all calls succeeded",
    1: "at least one call failed",
    97: "exit on internal command",
    99: "normal exit without calls processed",
    255: "fatal error",
    254: "fatal error binding a socket",
}


def scenario_path(name: str) -> Path:
    """One of the XML scenarios shipped in ``harness/interop/scenarios/``."""
    path = Path(str(resources.files("harness.interop") / "scenarios" / name))
    if not path.is_file():
        raise FileNotFoundError(f"no SIPp scenario {name!r} in {path.parent}")
    return path


def sipp_available() -> str | None:
    """None when a working ``sipp`` is on PATH, else the reason to skip."""
    binary = shutil.which("sipp")
    if binary is None:
        return "sipp is not installed (Debian package sip-tester: apt-get install sip-tester)"
    try:
        done = subprocess.run([binary, "-v"], capture_output=True, text=True, timeout=VERSION_DEADLINE)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"sipp -v failed: {exc}"
    if "SIPp v" not in done.stdout + done.stderr:
        return f"sipp -v printed no version (rc {done.returncode}): {done.stderr.strip()[:200]}"
    return None


def sipp_version() -> str | None:
    binary = shutil.which("sipp")
    if binary is None:
        return None
    done = subprocess.run([binary, "-v"], capture_output=True, text=True, timeout=VERSION_DEADLINE)
    found = re.search(r"SIPp v(\S+)", done.stdout + done.stderr)
    return found.group(1).rstrip(".") if found else None


def free_udp_port(ip: str) -> int:
    """A port free on ``ip`` now (SIPp needs a number; port 0 is not a choice it offers)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((ip, 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class SippOptions:
    """One SIPp run. ``scenario`` is a built-in name (``uac``, ``uas``) or an XML file path."""

    scenario: str | Path
    local_ip: str
    local_port: int = 0  # 0: a free port picked before the start
    remote: Address | None = None  # the UAC's target; None for a UAS
    service: str | None = None  # -s: the Request-URI user of the built-in UAC
    calls: int = 1  # -m: SIPp exits after this many calls
    rate: float = 10.0  # -r: new calls per second
    max_concurrent: int | None = None  # -l
    run_timeout: float = 30.0  # -timeout: SIPp gives up (as failed) after this long
    recv_timeout: float | None = 10.0  # -recv_timeout: a missing message fails its call
    buff_size: int | None = None  # -buff_size (give a UAS UAS_BUFFER)
    media_port: int | None = None  # -mp
    trace_messages: bool = False  # -trace_msg: every message SIPp sent and received, to messages.log
    extra_args: tuple[str, ...] = ()

    def is_built_in(self) -> bool:
        return isinstance(self.scenario, str) and self.scenario in BUILT_IN_SCENARIOS


@dataclass(frozen=True)
class SippStats:
    """The cumulative counters of SIPp's last statistics row."""

    created: int
    successful: int
    failed: int
    retransmissions: int
    call_rate: float  # cumulative calls per second as SIPp measured it
    elapsed: float  # seconds
    failures: dict[str, int]  # the non-zero Failed* counters, e.g. {"FailedMaxUDPRetrans": 1}
    row: dict[str, str] = field(repr=False)

    @classmethod
    def from_csv(cls, path: Path) -> SippStats:
        with path.open(newline="", encoding="utf-8", errors="replace") as handle:
            rows = list(csv.DictReader(handle, delimiter=";"))
        if not rows:
            raise ValueError(f"{path} holds no statistics row")
        row = rows[-1]

        def count(name: str) -> int:
            return int(row.get(f"{name}(C)") or 0)

        failures = {
            key[: -len("(C)")]: int(value)
            for key, value in row.items()
            if key and key.startswith("Failed") and key.endswith("(C)") and value and int(value)
        }
        return cls(
            created=int(row.get("TotalCallCreated") or 0),
            successful=count("SuccessfulCall"),
            failed=count("FailedCall"),
            retransmissions=count("Retransmissions"),
            call_rate=float(row.get("CallRate(C)") or 0.0),
            elapsed=_epoch(row.get("CurrentTime")) - _epoch(row.get("StartTime")),
            failures=failures,
            row=row,
        )


def _epoch(stamp: str | None) -> float:
    """SIPp's time cells read ``date<TAB>time<TAB>epoch``; the epoch is the last field."""
    try:
        return float((stamp or "").split("\t")[-1])
    except ValueError:
        return 0.0


@dataclass(frozen=True)
class TracedMessage:
    direction: str  # "sent" | "received", from SIPp's point of view
    first_line: str


_TRACE_HEAD = re.compile(r"^\S+ message (sent|received) [\[(]?\d+\]? ?bytes\)? ?:?$")


def parse_message_trace(text: str) -> list[TracedMessage]:
    """The -trace_msg log: a dashed time line, ``UDP message received [N] bytes :``, then the message."""
    traced: list[TracedMessage] = []
    lines = text.splitlines()
    for index, line in enumerate(lines):
        head = _TRACE_HEAD.match(line.strip())
        if head is None:
            continue
        first = next((candidate.strip() for candidate in lines[index + 1 :] if candidate.strip()), "")
        traced.append(TracedMessage(head.group(1), first))
    return traced


@dataclass(frozen=True)
class SippResult:
    command: list[str]
    returncode: int
    stats: SippStats | None
    errors: str  # the -trace_err log (empty when SIPp reported nothing)
    work_dir: Path
    messages: list[TracedMessage] = field(default_factory=list)  # with trace_messages only

    def received(self, first_line_start: str) -> list[TracedMessage]:
        """The traced messages SIPp received whose first line starts with e.g. ``"INVITE "``."""
        return [
            m
            for m in self.messages
            if m.direction == "received" and m.first_line.startswith(first_line_start)
        ]

    @property
    def meaning(self) -> str:
        return EXIT_MEANINGS.get(self.returncode, f"exit code {self.returncode}")

    def describe(self) -> str:
        """One paragraph for an assertion message: what ran, what it counted, what it complained of."""
        stats = self.stats
        counted = (
            "no statistics"
            if stats is None
            else f"{stats.successful} ok / {stats.failed} failed of {stats.created}, "
            f"{stats.call_rate:.1f} cps, failures {stats.failures or '{}'}"
        )
        tail = self.errors.strip()[-800:]
        return f"{' '.join(self.command)}\n-> {self.meaning}; {counted} (files: {self.work_dir})\n{tail}"


class Sipp:
    """A SIPp process; a context manager that always stops what it started.

    Without a ``work_dir`` a temporary one is made, and removed on exit when SIPp exited with 0 (a
    failed run's files stay for reading; :meth:`SippResult.describe` names the directory).
    """

    def __init__(self, options: SippOptions, work_dir: Path | None = None) -> None:
        self.options = options
        self._owns_work_dir = work_dir is None
        self.work_dir = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="sipp-"))
        self.local_port = options.local_port or free_udp_port(options.local_ip)
        self.stats_file = self.work_dir / "stats.csv"
        self.errors_file = self.work_dir / "errors.log"
        self.messages_file = self.work_dir / "messages.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.command = self._command()

    @property
    def address(self) -> Address:
        return (self.options.local_ip, self.local_port)

    def _command(self) -> list[str]:
        o = self.options
        binary = shutil.which("sipp") or "sipp"
        scenario = ["-sn", str(o.scenario)] if o.is_built_in() else ["-sf", str(Path(o.scenario).resolve())]
        command = [binary]
        if o.remote is not None:
            command.append(f"{o.remote[0]}:{o.remote[1]}")
        command += scenario
        command += ["-i", o.local_ip, "-p", str(self.local_port), "-nostdin"]
        command += ["-m", str(o.calls), "-r", f"{o.rate:g}", "-rp", "1000"]
        command += ["-timeout", f"{o.run_timeout:g}s", "-timeout_error"]
        command += ["-trace_stat", "-stf", str(self.stats_file), "-trace_err"]
        command += ["-error_file", str(self.errors_file)]
        if o.service is not None:
            command += ["-s", o.service]
        if o.max_concurrent is not None:
            command += ["-l", str(o.max_concurrent)]
        if o.recv_timeout is not None:
            command += ["-recv_timeout", str(round(o.recv_timeout * 1000))]
        if o.buff_size is not None:
            command += ["-buff_size", str(o.buff_size)]
        if o.media_port is not None:
            command += ["-mp", str(o.media_port)]
        if o.trace_messages:
            command += ["-trace_msg", "-message_file", str(self.messages_file)]
        command += list(o.extra_args)
        return command

    def start(self) -> Sipp:
        if self.process is not None:
            raise RuntimeError("this SIPp was already started")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        with (
            (self.work_dir / "stdout.log").open("wb") as out,
            (self.work_dir / "stderr.log").open("wb") as err,
        ):
            # cwd: SIPp drops its default trace files next to the scenario or in the cwd
            self.process = subprocess.Popen(
                self.command, cwd=self.work_dir, stdin=subprocess.DEVNULL, stdout=out, stderr=err
            )
        return self

    def wait_listening(self, deadline: float = LISTEN_DEADLINE) -> None:
        """Return once SIPp's UDP socket is bound on its address; raise if it exits or the deadline passes."""
        until = time.monotonic() + deadline
        wanted = _proc_net_key(*self.address)
        while True:
            if self.process is None:
                raise RuntimeError("SIPp was not started")
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"SIPp exited (rc {self.process.returncode}) before listening:\n{self._stderr()}"
                )
            if wanted in _bound_udp():
                return
            if time.monotonic() >= until:
                raise TimeoutError(
                    f"SIPp did not bind {self.address[0]}:{self.address[1]} within {deadline} s"
                )
            time.sleep(LISTEN_POLL)

    def wait(self, timeout: float | None = None) -> SippResult:
        """Wait for SIPp to exit (it does after ``calls`` calls or ``run_timeout``); then read its stats."""
        if self.process is None:
            raise RuntimeError("SIPp was not started")
        limit = timeout if timeout is not None else self.options.run_timeout + STOP_DEADLINE
        try:
            returncode = self.process.wait(limit)
        except subprocess.TimeoutExpired:
            self.stop()
            raise TimeoutError(f"SIPp still ran after {limit} s: {' '.join(self.command)}") from None
        return self.result(returncode)

    def result(self, returncode: int) -> SippResult:
        stats: SippStats | None
        try:
            stats = SippStats.from_csv(self.stats_file)
        except (OSError, ValueError):
            stats = None
        errors = self.errors_file.read_text(errors="replace") if self.errors_file.exists() else ""
        if returncode != 0 and not errors:
            errors = self._stderr()
        traced = (
            parse_message_trace(self.messages_file.read_text(errors="replace"))
            if self.messages_file.exists()
            else []
        )
        return SippResult(self.command, returncode, stats, errors, self.work_dir, traced)

    def _stderr(self) -> str:
        path = self.work_dir / "stderr.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """End the process this object started (SIGTERM, then SIGKILL); idempotent."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(STOP_DEADLINE)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(STOP_DEADLINE)

    def __enter__(self) -> Sipp:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        if self._owns_work_dir and self.process is not None and self.process.returncode == 0:
            shutil.rmtree(self.work_dir, ignore_errors=True)


def run_sipp(options: SippOptions, timeout: float | None = None, work_dir: Path | None = None) -> SippResult:
    """Start SIPp, wait for it to finish its calls, return the result (files in ``work_dir`` if given)."""
    with Sipp(options, work_dir) as sipp:
        return sipp.wait(timeout)


def _proc_net_key(ip: str, port: int) -> str:
    """An IPv4 socket address as /proc/net/udp writes it: little-endian hex address, hex port."""
    packed = socket.inet_aton(ip)
    return f"{packed[::-1].hex().upper()}:{port:04X}"


def _bound_udp() -> set[str]:
    try:
        lines = Path("/proc/net/udp").read_text().splitlines()[1:]
    except OSError:
        return set()
    return {line.split()[1] for line in lines if len(line.split()) > 1}
