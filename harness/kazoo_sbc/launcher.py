"""KazooSbc: Kazoo's own Kamailio configuration running on this machine, started and stopped by the harness.

``with KazooSbc(release.name, media=[...], trusted=[...]) as sbc:`` makes a work directory, copies the
configuration directory into it (the pristine ../shared tree for the release, or an operator's own),
applies the release's mechanical edits, writes local.cfg (the operator's roles, the harness's site values),
builds the SQLite database from the configuration's own db_scripts with the stack's rows in it, starts a
private RabbitMQ (unless a broker URL is given), then Kamailio in the foreground (``-DD -E``) with its own
pid file and run directory on a free loopback port; ready when it answers OPTIONS with 200. Kamailio's
output is the ``kamailio`` log, line by line, as the release writes it. Everything is stopped by the PIDs
started here and removed at the end, also when starting fails or the harness is interrupted.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import uuid
import weakref
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from harness import lifetime
from harness.kazoo.release import DEFAULT_RELEASE
from harness.kazoo_sbc.database import (
    AddressRow,
    DispatcherRow,
    build_database,
    insert_dispatcher,
    replace_addresses,
)
from harness.kazoo_sbc.localcfg import roles_of, with_site_values
from harness.kazoo_sbc.rabbit import BrokerError, RabbitBroker
from harness.kazoo_sbc.releases import Ports, SbcRelease, SiteInputs, sbc_release
from harness.kazoo_sbc.trace import sip_trace_defines
from harness.lab.kamailio import LogFollower, free_ports, kamailio_binary
from harness.lab.ready import wait_options_answer

Address = tuple[str, int]
CHILDREN = 2  # worker processes per listener: enough for the catalog, quick to start on 2 cores


class SbcError(RuntimeError):
    """The configuration could not be prepared or Kamailio did not become ready."""


def kazoo_sbc_available() -> str | None:
    """None when Kazoo's Kamailio configuration can run here, else the reason to skip."""
    from harness.kazoo_sbc.database import database_available
    from harness.kazoo_sbc.rabbit import rabbitmq_available
    from harness.lab.kamailio import kamailio_available, kamailio_module_dir

    reason = kamailio_available() or database_available() or rabbitmq_available()
    if reason:
        return reason
    module_dir = kamailio_module_dir()
    assert module_dir is not None
    for name, package in (
        ("kazoo", "kamailio-kazoo-modules"),
        ("db_sqlite", "kamailio-sqlite-modules"),
        ("outbound", "kamailio-outbound-modules"),
        ("presence", "kamailio-presence-modules"),
        ("tls", "kamailio-tls-modules"),
        ("websocket", "kamailio-websocket-modules"),
        ("jsonrpcs", "kamailio"),
        ("pike", "kamailio"),
    ):
        if not (module_dir / f"{name}.so").is_file():
            return f"kamailio module {name}.so missing in {module_dir} (apt-get install {package})"
    return None


def no_core_dumps() -> list[str]:
    """The command prefix that starts Kamailio with core dumps off (``ulimit -c 0``, then exec: the PID
    stays Kamailio's): Debian's kazoo module segfaults on a synchronous kazoo_query, ~110 MB of core each
    time otherwise. A shell rather than preexec_fn, unsafe in a process with threads (the model's)."""
    return ["/bin/sh", "-c", 'ulimit -c 0 && exec "$0" "$@"']


def copy_config(source: Path, target: Path) -> None:
    """A writable copy of a configuration directory (the pristine trees are read-only)."""
    shutil.copytree(source, target, symlinks=True, copy_function=shutil.copyfile)
    for path in [target, *target.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


def _terminate(process: subprocess.Popen[bytes], timeout: float) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # its own session: the group id is its PID
    except (ProcessLookupError, PermissionError):
        return
    process.wait(timeout=timeout)


def _cleanup(process: subprocess.Popen[bytes] | None, workdir: str | None) -> None:
    if process is not None:
        _terminate(process, 5.0)
    if workdir:
        shutil.rmtree(workdir, ignore_errors=True)


class KazooSbc:
    def __init__(
        self,
        release: str = DEFAULT_RELEASE.name,
        *,
        config_dir: str | Path | None = None,
        media: Sequence[DispatcherRow] = (),
        trusted: Sequence[AddressRow] = (),
        broker_url: str | None = None,
        listen_ip: str = "127.0.0.1",
        ready_timeout: float = 20.0,
        keep_workdir: bool = False,
        trace_to: Address | None = None,  # SIP_TRACE_ROLE on, sending HEP3 there (harness.kazoo_sbc.trace)
    ) -> None:
        if not listen_ip.startswith("127."):
            raise ValueError(f"listen_ip must be a loopback address, got {listen_ip}")
        self.spec: SbcRelease = sbc_release(release)
        self.release = release
        self.config_source = Path(config_dir) if config_dir is not None else self.spec.pristine
        self.media = tuple(media)
        self.trusted = tuple(trusted)
        self.listen_ip = listen_ip
        self.ready_timeout = ready_timeout
        self.keep_workdir = keep_workdir
        self.trace_to = trace_to
        self.hostname = f"kh-sbc-{uuid.uuid4().hex[:8]}.local"
        self.roles: frozenset[str] = frozenset()
        self.ports: Ports | None = None
        self.edits_applied: list[str] = []
        self.broker: RabbitBroker | None = None
        self._broker_url = broker_url
        self._workdir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: LogFollower | None = None
        self._finalizer: weakref.finalize[..., KazooSbc] | None = None
        self.timings: dict[str, float] = {}

    # ------------------------------------------------------------------ where things are
    @property
    def workdir(self) -> Path:
        if self._workdir is None:
            raise SbcError("not started")
        return self._workdir

    @property
    def config_dir(self) -> Path:
        return self.workdir / "kamailio"

    @property
    def db_path(self) -> Path:
        return self.workdir / "db" / "kazoo.db"

    @property
    def log_path(self) -> Path:
        return self.workdir / "kamailio.log"

    @property
    def address(self) -> Address:
        if self.ports is None:
            raise SbcError("not started")
        return (self.listen_ip, self.ports.sip)

    @property
    def amqp_url(self) -> str:
        if self._broker_url is not None:
            return self._broker_url
        if self.broker is None:
            raise SbcError("not started")
        return self.broker.url

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    # ------------------------------------------------------------------ start
    def start(self) -> KazooSbc:
        if self._process is not None:
            raise SbcError("already started")
        if not (self.config_source / "kamailio.cfg").is_file():
            raise SbcError(f"{self.config_source} is not a Kazoo Kamailio configuration (no kamailio.cfg)")
        self._workdir = Path(tempfile.mkdtemp(prefix="kh-kazoo-sbc-"))
        lifetime.register(self)
        self._finalizer = weakref.finalize(
            self, _cleanup, None, None if self.keep_workdir else str(self._workdir)
        )
        try:
            self._prepare()
            if self._broker_url is None:
                began = time.monotonic()
                self.broker = RabbitBroker().start()
                self.timings["rabbitmq"] = time.monotonic() - began
            # chosen once the broker holds its own: free ports are only free until someone binds them
            self.ports = Ports(*free_ports(self.listen_ip, len(dataclasses.fields(Ports))))
            self._write_local_cfg()
            self._run()
        except BaseException:
            self.stop()
            raise
        return self

    def _prepare(self) -> None:
        began = time.monotonic()
        copy_config(self.config_source, self.config_dir)
        self.edits_applied = self.spec.port(self.config_dir)
        self.roles = roles_of((self.config_dir / "local.cfg").read_text(encoding="utf-8"))
        build_database(self.config_dir / "db_scripts", self.db_path)
        insert_dispatcher(self.db_path, self.media)
        replace_addresses(self.db_path, self.trusted)
        self.timings["prepare"] = time.monotonic() - began

    def _write_local_cfg(self) -> None:
        assert self.ports is not None
        inputs = SiteInputs(
            hostname=self.hostname,
            ip=self.listen_ip,
            ports=self.ports,
            amqp_url=self.amqp_url,
            data_dir=self.db_path.parent,
            db_path=self.db_path,
            children=CHILDREN,
        )
        site = self.spec.site(inputs)
        if self.trace_to is not None:
            site = dataclasses.replace(site, defines={**site.defines, **sip_trace_defines(self.trace_to)})
        path = self.config_dir / "local.cfg"
        path.write_text(with_site_values(path.read_text(encoding="utf-8"), site))

    def _run(self) -> None:
        binary = kamailio_binary()
        if binary is None:
            raise SbcError("kamailio binary not found (apt-get install kamailio)")
        run_dir = self.workdir / "run"
        run_dir.mkdir()
        command = [
            *no_core_dumps(),
            binary,
            "-DD",
            "-E",
            "-f", str(self.config_dir / "kamailio.cfg"),
            "-P", str(run_dir / "kamailio.pid"),
            "-Y", str(run_dir),
            "-w", str(self.workdir),
            *self.spec.kamailio_args,
        ]  # fmt: skip
        began = time.monotonic()
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=self.config_dir,  # relative include_file/import_file names resolve here too
            start_new_session=True,  # a Ctrl-C for the harness reaches Kamailio only through stop()
        )
        assert self._finalizer is not None
        self._finalizer.detach()
        self._finalizer = weakref.finalize(
            self, _cleanup, self._process, None if self.keep_workdir else str(self.workdir)
        )
        self._log = LogFollower(self._process, self.log_path)
        process = self._process
        readiness = wait_options_answer(
            self.address,
            time.monotonic() + self.ready_timeout,
            who="kazoo-sbc-ready",
            exited=lambda: process.poll() is not None,
            want=b"SIP/2.0 200",
            probe_wait=0.05,
            ruri_host=self.hostname,
        )
        self.timings["kamailio"] = time.monotonic() - began
        if readiness != "answered":
            what = (
                f"exited with {process.returncode}"
                if readiness == "exited"
                else f"did not answer OPTIONS on {self.address} within {self.ready_timeout} s"
            )
            raise SbcError(
                f"kamailio ({self.release}, {self.config_source}) {what}; see below:\n{self._tail()}"
            )

    def _tail(self, lines: int = 25) -> str:
        if self._log is None:
            return "(no log)"
        self._log.join(timeout=1.0)
        return "\n".join(self._log.lines()[-lines:])

    # ------------------------------------------------------------------ control
    def rpc(self, method: str, *args: str, timeout: float = 5.0) -> str:
        """One RPC command through this instance's own ctl socket (``kamcmd -s``); its output."""
        kamcmd = shutil.which("kamcmd") or "/usr/sbin/kamcmd"
        socket_path = self.workdir / "run" / "kamailio_ctl"
        done = subprocess.run(
            [kamcmd, "-s", f"unixs:{socket_path}", method, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0 or done.stdout.startswith("error:"):
            raise SbcError(f"kamcmd {method} {' '.join(args)} failed: {(done.stderr or done.stdout).strip()}")
        return done.stdout

    def reload_dispatcher(self, timeout: float = 10.0) -> None:
        """``dispatcher.reload``; the module refuses a reload within ds_reload_delta (5 s) of the last one
        ("ongoing reload"), so it is asked again until it takes or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.rpc("dispatcher.reload")
                return
            except SbcError as exc:
                if "ongoing reload" not in str(exc).lower() or time.monotonic() >= deadline:
                    raise
            time.sleep(0.2)  # pacing the retry: the module says nothing when the delta has passed

    def set_media(self, rows: Sequence[DispatcherRow]) -> None:
        """Replace the dispatcher table's media servers and reload it, as an operator would."""
        from harness.kazoo_sbc.database import delete_dispatcher

        delete_dispatcher(self.db_path, [row.destination for row in self.media])
        insert_dispatcher(self.db_path, rows)
        self.media = tuple(rows)
        self.reload_dispatcher()

    # ------------------------------------------------------------------ logs
    def log_mark(self) -> int:
        return len(self._follower().lines())

    def log_lines(self, since: int = 0) -> list[str]:
        return self._follower().lines()[since:]

    def wait_for_log(self, pattern: str | re.Pattern[str], timeout: float, since: int = 0) -> str:
        return self._follower().wait_for(re.compile(pattern), timeout, since)

    def _follower(self) -> LogFollower:
        if self._log is None:
            raise SbcError("not started")
        return self._log

    # ------------------------------------------------------------------ stop
    def stop(self, timeout: float = 5.0) -> None:
        """Kamailio by its PID (SIGTERM, then SIGKILL to its group), the broker, then the work directory."""
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        process, self._process = self._process, None
        if process is not None:
            _terminate(process, timeout)
        if self._log is not None:
            self._log.join(timeout=timeout)
        broker, self.broker = self.broker, None
        if broker is not None:
            try:
                broker.stop()
            except BrokerError:
                pass
        if self._workdir is not None and not self.keep_workdir:
            shutil.rmtree(self._workdir, ignore_errors=True)
        lifetime.unregister(self)

    def __enter__(self) -> KazooSbc:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
