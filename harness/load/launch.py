"""Start Locust for a load run, as a child process the harness owns, and stop all of it.

``locust_command(mode, ...)`` is the command line: the harness's locustfile, headless (or the web UI),
one Locust user per sender, our plan and summary files, Locust's own report flags passed through. The
modes are Locust's: ``local`` (one process, no ZeroMQ), ``processes`` (a master and N forked workers,
``--processes N``), ``master`` (waits for ``--expect-workers`` remote workers) and ``worker``
(``--master-host``).

:class:`LocustProcess` starts it in a session of its own, so a terminal's Ctrl-C reaches the harness
alone; the harness then sends one SIGINT to Locust's master (which stops its workers the Locust way)
and, past a deadline, SIGKILLs every process of that session it has seen, by PID.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
MODES = ("local", "processes", "master", "worker")
STOP_DEADLINE = 10.0  # after a SIGINT, how long Locust has to stop its workers before SIGKILL


@dataclass(frozen=True)
class LocustOptions:
    mode: str = "processes"
    workers: int = 1  # processes: forked workers; master: workers to wait for
    master_host: str = "127.0.0.1"
    master_port: int = 5557
    master_bind_host: str = "127.0.0.1"
    web: bool = False
    web_host: str = "127.0.0.1"
    web_port: int = 8089
    web_linger: float = 600.0  # seconds the web UI stays up after the run (then Locust quits)
    csv: Path | None = None
    html: Path | None = None
    json_file: Path | None = None
    loglevel: str = "WARNING"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")

    @property
    def senders(self) -> int:
        return max(1, self.workers) if self.mode in ("processes", "master") else 1


def locust_command(
    options: LocustOptions,
    plan_file: Path | None,
    summary_file: Path | None,
    time_bound: float,
    host: str | None = None,
) -> list[str]:
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--loglevel", options.loglevel]
    if options.mode == "worker":
        return [
            *command,
            "--worker",
            "--master-host",
            options.master_host,
            "--master-port",
            str(options.master_port),
        ]
    assert plan_file is not None and summary_file is not None
    users = options.senders
    command += ["-u", str(users), "-r", str(users), "-t", f"{max(1, round(time_bound))}s"]
    command += ["--kh-plan", str(plan_file), "--kh-summary", str(summary_file)]
    command += ["--exit-code-on-error", "0", "--stop-timeout", "0"]
    if host:
        command += ["--host", host]  # only shown (web UI, reports): the plan says where calls go
    if options.web:
        command += [
            "--autostart",
            "--autoquit",
            f"{round(options.web_linger)}",
            "--web-host",
            options.web_host,
            "--web-port",
            str(options.web_port),
        ]
    else:
        command += ["--headless", "--only-summary"]
    if options.mode == "processes":  # the forked workers connect with --master-host/--master-port
        command += ["--processes", str(max(1, options.workers))]
        command += [
            "--master-bind-host",
            options.master_bind_host,
            "--master-bind-port",
            str(options.master_port),
        ]
        command += ["--master-host", options.master_bind_host, "--master-port", str(options.master_port)]
    elif options.mode == "master":
        command += ["--master", "--expect-workers", str(max(1, options.workers))]
        command += [
            "--master-bind-host",
            options.master_bind_host,
            "--master-bind-port",
            str(options.master_port),
        ]
    if options.csv is not None:
        command += ["--csv", str(options.csv)]
    if options.html is not None:
        command += ["--html", str(options.html)]
    if options.json_file is not None:  # Locust writes PREFIX.json: give it the name without the suffix
        name = options.json_file
        command += ["--json-file", str(name.with_suffix("") if name.suffix == ".json" else name)]
    return command


def free_tcp_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` now, for Locust's master (ZeroMQ needs a number, not 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class LocustProcess:
    """One Locust run (master and whatever it forks). ``pids()`` are every process of it seen so far."""

    def __init__(
        self,
        command: list[str],
        *,
        on_line: Callable[[str], None] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.command = command
        self.on_line = on_line or (lambda line: print(line, flush=True))
        self.env = env
        self.process: subprocess.Popen[str] | None = None
        self._seen: dict[int, psutil.Process] = {}  # kept as Process: it knows a recycled PID
        self._reader: threading.Thread | None = None
        self.output: list[str] = []

    def start(self) -> LocustProcess:
        env = {**os.environ, **(self.env or {}), "PYTHONUNBUFFERED": "1", "KH_LOAD_PARENT": str(os.getpid())}
        self.process = subprocess.Popen(
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # a terminal's Ctrl-C reaches the harness, which stops Locust in order
            env=env,
        )
        self._seen[self.process.pid] = psutil.Process(self.process.pid)
        self._reader = threading.Thread(target=self._read, name="locust-output", daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            line = line.rstrip("\n")
            self.output.append(line)
            self.on_line(line)

    def pids(self) -> set[int]:
        """The master and every descendant alive now, added to those seen before."""
        if self.process is not None:
            try:
                for child in self._seen[self.process.pid].children(recursive=True):
                    self._seen.setdefault(child.pid, child)
            except psutil.NoSuchProcess:
                pass
        return set(self._seen)

    def wait(self, deadline: float) -> int:
        """Wait for Locust to exit by ``deadline`` (monotonic); past it, stop it and raise TimeoutError."""
        assert self.process is not None
        while True:
            self.pids()  # learn the workers while they live, to be able to stop them by PID
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.stop()
                raise TimeoutError(f"Locust still ran at its deadline: {' '.join(self.command)}")
            try:
                code = self.process.wait(min(remaining, 0.5))
            except subprocess.TimeoutExpired:
                continue
            self._join_reader()
            self._reap_stragglers()
            return code

    def interrupt(self) -> None:
        """What Ctrl-C does to Locust: one SIGINT to its master, which stops the workers."""
        if self.process is not None and self.process.poll() is None:
            self.pids()
            os.kill(self.process.pid, signal.SIGINT)

    def stop(self, deadline: float = STOP_DEADLINE) -> int | None:
        """SIGINT, then SIGKILL for every process of this run still alive after ``deadline`` seconds."""
        if self.process is None:
            return None
        self.interrupt()
        try:
            code: int | None = self.process.wait(deadline)
        except subprocess.TimeoutExpired:
            code = None
        self._reap_stragglers(deadline=0.0 if code is None else deadline)
        if self.process.poll() is None:
            self.process.kill()
            code = self.process.wait(STOP_DEADLINE)
        self._join_reader()
        return code

    def _reap_stragglers(self, deadline: float = STOP_DEADLINE) -> None:
        """Workers that outlived their master (they should not): SIGINT, then SIGKILL, by PID."""
        alive = [p for p in self._processes() if _alive(p)]
        if not alive:
            return
        _, alive = psutil.wait_procs(alive, timeout=deadline)
        for proc in alive:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(alive, timeout=STOP_DEADLINE)

    def _processes(self) -> list[psutil.Process]:
        master = self.process.pid if self.process is not None else None
        return [p for pid, p in self._seen.items() if pid != master]

    def _join_reader(self) -> None:
        if self._reader is not None:
            self._reader.join(STOP_DEADLINE)


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
