"""A private RabbitMQ broker for Kazoo's Kamailio configuration: started and stopped by the harness.

Everything is its own: data, log and home directories (the Erlang cookie lives in that home), node name,
AMQP port, Erlang distribution port and an epmd on a private port, so that brokers other people run on
this machine (and their epmd on 4369) are never touched. No systemd: Debian's
``/usr/lib/rabbitmq/bin/rabbitmq-server`` runs in the foreground in its own session.

The epmd is started here, in the foreground, before the broker (``ERL_EPMD_PORT`` points the broker and
``rabbitmqctl`` at it), so it is stopped by the PID this object holds. Ready means a real AMQP handshake
(pika opens a connection and a channel) within the deadline. Stop: ``rabbitmqctl -n NODE stop``, then
SIGTERM/SIGKILL to the process group of anything still running, then epmd by its PID; the directories
are removed. An object dropped without ``stop()`` is stopped at exit.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
import weakref
from pathlib import Path
from types import TracebackType

from harness import lifetime
from harness.lab.kamailio import free_ports

SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
CTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"
LOOPBACK = "127.0.0.1"
DIST_INTERFACE = "{127,0,0,1}"  # LOOPBACK as an Erlang tuple
GUEST = ("guest", "guest")  # RabbitMQ lets guest in from loopback only, which is all the harness uses


class BrokerError(RuntimeError):
    """The broker could not be started, or did not answer AMQP in time."""


def rabbitmq_available() -> str | None:
    """None when a private broker can run here, else the reason to skip (with the install hint)."""
    for path in (SERVER, CTL):
        if not os.access(path, os.X_OK):
            return f"{path} not found (apt-get install rabbitmq-server)"
    if shutil.which("epmd") is None:
        return "epmd not found (apt-get install erlang-base, a dependency of rabbitmq-server)"
    try:
        import pika  # noqa: F401
    except ImportError:
        return "the pika AMQP client is missing (pip install pika)"
    return None


def _stop_process(process: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """SIGTERM to a process this module started, SIGKILL to its own group after ``timeout``."""
    if process is None:
        return
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # its group id is its PID (start_new_session)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass


def _cleanup(
    server: subprocess.Popen[bytes] | None, epmd: subprocess.Popen[bytes] | None, root: str | None
) -> None:
    """The last resort (finalizer, at exit): no rabbitmqctl, just the processes and the directory."""
    _stop_process(server, 5.0)
    _stop_process(epmd, 2.0)
    if root:
        shutil.rmtree(root, ignore_errors=True)


class RabbitBroker:
    """``with RabbitBroker() as broker: broker.url`` — a broker only the harness uses, on loopback."""

    def __init__(self, *, ready_timeout: float = 60.0, stop_timeout: float = 20.0) -> None:
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.node = f"kh-{uuid.uuid4().hex[:12]}@localhost"
        self.amqp_port = 0
        self.dist_port = 0
        self.epmd_port = 0
        self.root: Path | None = None
        self._server: subprocess.Popen[bytes] | None = None
        self._epmd: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize[..., RabbitBroker] | None = None
        self.started_in: float | None = None  # seconds from exec to the AMQP handshake

    @property
    def url(self) -> str:
        """The AMQP URL Kamailio's kazoo module and pika take (default vhost)."""
        return f"amqp://{GUEST[0]}:{GUEST[1]}@{LOOPBACK}:{self.amqp_port}"

    @property
    def log_path(self) -> Path:
        return self._root() / "rabbitmq.log"

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in (self._server, self._epmd) if p is not None]

    def _root(self) -> Path:
        if self.root is None:
            raise BrokerError("not started")
        return self.root

    def environment(self) -> dict[str, str]:
        """What makes this broker (and rabbitmqctl talking to it) private: paths, node, ports, epmd."""
        root = self._root()
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))},
            "HOME": str(root / "home"),
            "RABBITMQ_MNESIA_BASE": str(root / "mnesia"),
            "RABBITMQ_LOG_BASE": str(root / "log"),
            "RABBITMQ_LOGS": "-",
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": LOOPBACK,
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(root / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(root / "rabbitmq"),  # absent: the defaults
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(root / "advanced.config"),
            "ERL_EPMD_ADDRESS": LOOPBACK,
            "ERL_EPMD_PORT": str(self.epmd_port),
            # the Erlang distribution port listens on every interface unless told: loopback only
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": f"-kernel inet_dist_use_interface {DIST_INTERFACE}",
        }

    def start(self) -> RabbitBroker:
        reason = rabbitmq_available()
        if reason is not None:
            raise BrokerError(reason)
        if self._server is not None:
            raise BrokerError("already started")
        self.root = Path(tempfile.mkdtemp(prefix="kh-rabbit-"))
        lifetime.register(self)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        root = self._root()
        for sub in ("home", "mnesia", "log"):
            (root / sub).mkdir()
        (root / "enabled_plugins").write_text("[].\n")
        self.amqp_port, self.dist_port, self.epmd_port = free_ports(LOOPBACK, 3)
        env = self.environment()
        began = time.monotonic()
        epmd = shutil.which("epmd")
        assert epmd is not None
        self._epmd = subprocess.Popen(
            [epmd, "-port", str(self.epmd_port), "-address", LOOPBACK],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._finalizer = weakref.finalize(self, _cleanup, None, self._epmd, str(root))
        self._wait_tcp(self.epmd_port, time.monotonic() + 10.0, self._epmd, "epmd")
        with self.log_path.open("wb") as log:
            self._server = subprocess.Popen(
                [SERVER],
                env=env,
                cwd=root,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C for the harness does not hit the broker directly
            )
        self._finalizer.detach()
        self._finalizer = weakref.finalize(self, _cleanup, self._server, self._epmd, str(root))
        self._wait_amqp(time.monotonic() + self.ready_timeout)
        self.started_in = time.monotonic() - began

    @staticmethod
    def _wait_tcp(port: int, deadline: float, process: subprocess.Popen[bytes], what: str) -> None:
        while True:
            if process.poll() is not None:
                raise BrokerError(f"{what} exited with {process.returncode} before listening on {port}")
            try:
                with socket.create_connection((LOOPBACK, port), timeout=0.2):
                    return
            except OSError:
                pass
            if time.monotonic() >= deadline:
                raise BrokerError(f"{what} did not listen on {LOOPBACK}:{port} in time")
            time.sleep(0.02)  # pacing the connect probe; nothing else says when epmd listens

    def _wait_amqp(self, deadline: float) -> None:
        """A real AMQP handshake (connection and channel opened) before ``deadline``."""
        import pika
        import pika.exceptions

        # pika logs every refused attempt at ERROR; refusals are expected until the broker listens
        logging.getLogger("pika").setLevel(logging.CRITICAL)
        server = self._server
        assert server is not None
        params = pika.ConnectionParameters(
            host=LOOPBACK,
            port=self.amqp_port,
            credentials=pika.PlainCredentials(*GUEST),
            socket_timeout=1.0,
            connection_attempts=1,
            blocked_connection_timeout=2.0,
        )
        while True:
            if server.poll() is not None:
                raise BrokerError(
                    f"rabbitmq-server exited with {server.returncode} before answering AMQP; "
                    f"see {self.log_path}:\n{self._log_tail()}"
                )
            try:
                connection = pika.BlockingConnection(params)
            except (pika.exceptions.AMQPError, OSError):
                if time.monotonic() >= deadline:
                    raise BrokerError(
                        f"rabbitmq-server did not answer AMQP on {LOOPBACK}:{self.amqp_port} within "
                        f"{self.ready_timeout} s; see {self.log_path}:\n{self._log_tail()}"
                    ) from None
                time.sleep(0.1)  # pacing the handshake probe; the broker says nothing when it is ready
                continue
            try:
                connection.channel().close()
            finally:
                connection.close()
            return

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """rabbitmqctl stop for this node, then whatever is left by PID, then epmd; remove the dirs."""
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        server, self._server = self._server, None
        epmd, self._epmd = self._epmd, None
        if server is not None and server.poll() is None and self.root is not None:
            try:
                subprocess.run(
                    [CTL, "-n", self.node, "stop"],
                    env=self.environment(),
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    timeout=self.stop_timeout,
                    check=False,
                )
                server.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                pass
        _stop_process(server, 5.0)
        _stop_process(epmd, 2.0)
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
        lifetime.unregister(self)

    def __enter__(self) -> RabbitBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
