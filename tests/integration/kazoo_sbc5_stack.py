"""A small start helper for the tests of the 5.x port (harness/kazoo_sbc/edits_5x.py): a private RabbitMQ,
the SQLite database made from the configuration's own db_scripts, and the ported 5.x Kamailio (``-DD -E``)
on free loopback ports. Deliberately minimal and test-only: the harness's launcher for the kazoo-sbc
target (branch ``sbc``: harness/kazoo_sbc/rabbit.py, launcher.py) is the real one.

Everything runs under one work directory; every process is started here in its own session and stopped by
its PID (RabbitMQ with ``rabbitmqctl stop`` for its private node first, then its private epmd).
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

from harness.kazoo_sbc.edits_5x import (
    DB_ENGINE_5X,
    DB_EXTRA_TABLES_5X,
    DB_INITS_5X,
    DB_SCHEMA_SCRIPT_5X,
    DB_VIEWS_5X,
    KAMAILIO_ARGS_5X,
    OPTIONS_REPLY_5X,
    SITE_VALUES_5X,
    port_5x,
)
from harness.lab.kamailio import free_ports, kamailio_available, kamailio_binary, kamailio_module_dir
from harness.lab.ready import options_probe

PRISTINE_5X = Path(__file__).resolve().parents[3] / "shared" / "kazoo-configs-kamailio" / "5.x" / "kamailio"
RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
KAMAILIO_SQL_DIR = Path("/usr/share/kamailio/db_sqlite")
RABBIT_READY = 60.0  # ~6 s on a fresh data dir here; a busy shared machine is slower
KAMAILIO_READY = 15.0
STOP_WAIT = 20.0
_INSTALL = (
    "apt-get install kamailio kamailio-kazoo-modules kamailio-sqlite-modules kamailio-extra-modules "
    "kamailio-utils-modules kamailio-json-modules kamailio-outbound-modules kamailio-presence-modules "
    "kamailio-tls-modules kamailio-websocket-modules sqlite3 rabbitmq-server"
)


def config_unavailable() -> str | None:
    """None when the 5.x tree can be checked here (Kamailio and the modules it loads), else why not."""
    reason = kamailio_available()
    if reason is not None:
        return reason
    if not PRISTINE_5X.is_dir():
        return f"Kazoo's 5.x configuration not found at {PRISTINE_5X} (../shared beside the repository)"
    for tool in ("sqlite3", "bash"):  # the database comes first, even for a config check
        if shutil.which(tool) is None:
            return f"{tool} not found ({_INSTALL})"
    module_dir = kamailio_module_dir()
    assert module_dir is not None
    for module in ("kazoo", "db_sqlite", "jsonrpcs", "presence", "outbound", "websocket", "tls", "uuid"):
        if not (module_dir / f"{module}.so").is_file():
            return f"kamailio module {module}.so missing ({_INSTALL})"
    return None


def stack_unavailable() -> str | None:
    """None when the ported 5.x Kamailio can be started here (plus RabbitMQ and sqlite3), else why not."""
    reason = config_unavailable()
    if reason is not None:
        return reason
    for tool in ("epmd", "rabbitmqctl", "kamcmd"):
        if shutil.which(tool) is None:
            return f"{tool} not found ({_INSTALL})"
    if not RABBITMQ_SERVER.is_file():
        return f"{RABBITMQ_SERVER} not found ({_INSTALL})"
    if not KAMAILIO_SQL_DIR.is_dir():
        return f"{KAMAILIO_SQL_DIR} not found (apt-get install kamailio-sqlite-modules)"
    return None


def _stop(process: subprocess.Popen[bytes], wait: float = STOP_WAIT) -> None:
    """SIGTERM to a process started here, then SIGKILL to its own session's group after ``wait``."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # its group id is its PID (start_new_session)
    except ProcessLookupError:
        return
    process.wait(timeout=wait)


def _no_core() -> None:
    # Debian's kazoo module segfaults on a synchronous kazoo_query: no 100 MB core files in the run dir
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def amqp_answers(port: int) -> bool:
    """A real AMQP 0-9-1 greeting: the broker answers the protocol header with a Connection.Start frame."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            sock.sendall(b"AMQP\x00\x00\x09\x01")
            frame = sock.recv(7)
    except OSError:
        return False
    return len(frame) == 7 and frame[0] == 1  # frame type 1: a method frame (Connection.Start)


class PrivateRabbit:
    """RabbitMQ for one test module: its own node name, ports, data, log and epmd (ERL_EPMD_PORT)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.node = f"kh_sbc5_{os.getpid()}_{time.monotonic_ns() % 100000}@localhost"
        self.amqp_port, self.dist_port, self.epmd_port = free_ports("127.0.0.1", 3)
        self._epmd: subprocess.Popen[bytes] | None = None
        self._server: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}"

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "HOME": str(self.base / "home"),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_LOGS": "-",
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_EPMD_PORT": str(self.epmd_port),
            # the distribution port on loopback too (it listens on every interface by default)
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def start(self) -> PrivateRabbit:
        for sub in ("home", "mnesia", "log"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        (self.base / "enabled_plugins").write_text("[].\n")
        log = (self.base / "rabbit.log").open("ab")
        env = self._env()
        try:
            self._epmd = subprocess.Popen(
                ["epmd", "-port", str(self.epmd_port), "-address", "127.0.0.1"],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
            self._server = subprocess.Popen(
                [str(RABBITMQ_SERVER)], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
            deadline = time.monotonic() + RABBIT_READY
            while not amqp_answers(self.amqp_port):
                if self._server.poll() is not None:
                    raise RuntimeError(f"rabbitmq-server exited ({self.base / 'rabbit.log'})")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no AMQP on 127.0.0.1:{self.amqp_port} in {RABBIT_READY} s")
                time.sleep(0.1)  # pacing the probe, not waiting for an event (AMQP gives no signal)
        except BaseException:
            self.stop()
            raise
        finally:
            log.close()
        return self

    def stop(self) -> None:
        if self._server is not None and self._server.poll() is None:
            subprocess.run(
                ["rabbitmqctl", "-n", self.node, "stop"],
                env=self._env(),
                capture_output=True,
                timeout=STOP_WAIT,
            )
            _stop(self._server)
        if self._epmd is not None:
            _stop(self._epmd)
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> PrivateRabbit:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def build_database(config_dir: Path, db_path: Path) -> None:
    """The SQLite database as the configuration's db_scripts make it (see edits_5x.DB_SCHEMA_SCRIPT_5X)."""
    share = db_path.parent / "kamailio-share"
    share.mkdir(parents=True, exist_ok=True)
    engine = share / DB_ENGINE_5X
    if not engine.exists():
        engine.symlink_to(KAMAILIO_SQL_DIR)
    functions = (
        "sql_db_pre_setup; sql_all_header; sql_header; "
        'for i in $(sql_filelist); do cat "$KAMAILIO_SHARE_DIR/$DB_ENGINE/$i"; done; '
        "sql_all_extra_tables; sql_extra_tables; sql_footer; sql_all_footer"
    )
    script = config_dir / DB_SCHEMA_SCRIPT_5X
    schema = subprocess.run(
        ["bash", "-c", f'. "$0" --source-only; {functions}', str(script)],
        env={**os.environ, "KAMAILIO_SHARE_DIR": str(share), "DB_ENGINE": DB_ENGINE_5X},
        capture_output=True, check=True, text=True,
    ).stdout  # fmt: skip
    sqlite = ["sqlite3", "-bail", str(db_path)]
    subprocess.run(sqlite, input=schema, capture_output=True, check=True, text=True)
    for view in sorted(config_dir.glob(DB_VIEWS_5X)):
        name = view.stem.removeprefix("vw_")
        subprocess.run([*sqlite, f"drop view if exists {name};"], capture_output=True, check=True)
        subprocess.run(sqlite, input=view.read_text(), capture_output=True, check=True, text=True)
    for init in sorted(config_dir.glob(DB_INITS_5X)):
        subprocess.run(sqlite, input=init.read_text(), capture_output=True, check=True, text=True)
    for statement in DB_EXTRA_TABLES_5X:
        subprocess.run([*sqlite, statement + ";"], capture_output=True, check=True)


def site_local_cfg(values: dict[str, str]) -> str:
    """The site-value lines for local.cfg, in SITE_VALUES_5X's order (every name must be known)."""
    known = {site.name: site for site in SITE_VALUES_5X}
    unknown = set(values) - set(known)
    if unknown:
        raise KeyError(f"not a 5.x site value: {sorted(unknown)}")
    return "".join(known[name].line(values[name]) + "\n" for name in known if name in values)


def copy_tree(source: Path, dest: Path) -> Path:
    """A writable copy of a configuration directory (the ../shared tree is read-only)."""
    shutil.copytree(source, dest)
    for path in [dest, *dest.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return dest


class Ported5x:
    """The ported 5.x tree in ``work``, its database, and its Kamailio once :meth:`start` is called."""

    def __init__(
        self,
        work: Path,
        amqp_url: str,
        *,
        source: Path = PRISTINE_5X,
        ip: str = "127.0.0.1",
        local_cfg: str = "",
    ) -> None:
        self.work = work
        self.ip = ip
        self.cfg = copy_tree(source, work / "cfg")
        self.applied = port_5x(self.cfg)
        self.sip_port, alg_port, local_route_port, prometheus_port = free_ports(ip, 4)
        data = work / "data"
        data.mkdir(parents=True)
        self.db_path = data / "kazoo.db"
        self.site = {
            "MY_HOSTNAME": "kh-sbc5.test",
            "MY_IP_ADDRESS": ip,
            "MY_LOCAL_IP": ip,
            "SIP_PORT": str(self.sip_port),
            "ALG_PORT": str(alg_port),
            "PROMETHEUS_PORT": str(prometheus_port),
            "KZ_LOCAL_ROUTE_PORT": str(local_route_port),
            "MY_AMQP_URL": amqp_url,
            "KAZOO_DATA_DIR": str(data),
            "KAZOO_DB_URL": f"sqlite:///{self.db_path}",  # + the absolute path's own slash: four
            "CHILDREN": "2",
            "TCP_CHILDREN": "2",
        }
        user = (self.cfg / "local.cfg").read_text(encoding="utf-8")
        (self.cfg / "local.cfg").write_text(site_local_cfg(self.site) + local_cfg + user, encoding="utf-8")
        self.run = work / "run"
        self.run.mkdir()
        self.log_path = work / "kamailio.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> tuple[str, int]:
        return (self.ip, self.sip_port)

    def command(self, *extra: str) -> list[str]:
        binary = kamailio_binary()
        assert binary is not None
        return [binary, "-f", str(self.cfg / "kamailio.cfg"), *KAMAILIO_ARGS_5X, *extra]

    def variant(self, dest: Path, local_cfg: str) -> Path:
        """The ported tree seen from ``dest`` with ``local_cfg`` first in its local.cfg (a role switched
        on, say): symbolic links to every other file, so a variant costs no copy and no port."""
        dest.mkdir(parents=True)
        for entry in self.cfg.iterdir():
            if entry.name != "local.cfg":
                (dest / entry.name).symlink_to(entry)
        (dest / "local.cfg").write_text(local_cfg + (self.cfg / "local.cfg").read_text(), encoding="utf-8")
        return dest

    def check(self, tree: Path | None = None) -> subprocess.CompletedProcess[str]:
        """``kamailio -c`` of the ported tree (or of a :meth:`variant`): parse it with its local.cfg and
        load every module. stderr and stdout are both in ``stdout``."""
        tree = tree or self.cfg
        command = self.command("-c")
        command[command.index("-f") + 1] = str(tree / "kamailio.cfg")
        return subprocess.run(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60, cwd=tree
        )

    def db(self) -> sqlite3.Connection:
        """The database (made from the db_scripts on first use)."""
        if not self.db_path.exists():
            build_database(self.cfg, self.db_path)
        return sqlite3.connect(self.db_path)

    def start(self) -> Ported5x:
        self.db().close()
        log = self.log_path.open("ab")
        run = str(self.run)
        try:
            self.process = subprocess.Popen(
                self.command("-P", f"{run}/kamailio.pid", "-Y", run, "-w", run, "-DD", "-E", "-m", "64"),
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_no_core,
            )  # fmt: skip
        finally:
            log.close()
        state = self._wait_ready(time.monotonic() + KAMAILIO_READY)
        if state != "answered":
            self.stop()
            raise RuntimeError(
                f"the ported 5.x Kamailio {state} before answering OPTIONS:\n{self.log()[-3000:]}"
            )
        return self

    def _wait_ready(self, deadline: float) -> str:
        """OPTIONS until 200 Rawr!!. The R-URI names the host (MY_HOSTNAME), not an IP: with the
        TRAFFIC_FILTER role on, 5.x drops an untrusted OPTIONS whose R-URI domain is an IP address."""
        code, reason = OPTIONS_REPLY_5X
        want = f"SIP/2.0 {code} {reason}".encode()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((self.ip, 0))
            probe = options_probe(self.ip, self.sip_port, int(sock.getsockname()[1]), who="kh-sbc5")
            start_line = f"OPTIONS sip:{self.ip}:{self.sip_port} ".encode()
            probe = probe.replace(
                start_line, f"OPTIONS sip:{self.site['MY_HOSTNAME']}:{self.sip_port} ".encode(), 1
            )
            while self.alive():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return "timeout"
                sock.sendto(probe, self.address)
                sock.settimeout(min(0.05, remaining))  # a probe every 50 ms: nothing else says it is ready
                try:
                    if sock.recv(65535).startswith(want):
                        return "answered"
                except (TimeoutError, ConnectionRefusedError):
                    continue
        return "exited"

    def rpc(self, *command: str) -> str:
        result = subprocess.run(
            ["kamcmd", "-s", f"unix:{self.run}/kamailio_ctl", *command],
            capture_output=True, text=True, timeout=10, check=True,
        )  # fmt: skip
        return result.stdout

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_mark(self) -> int:
        """Where the log ends now: a :meth:`wait_for_log` ``since`` this mark sees only later lines."""
        return len(self.log())

    def wait_for_log(self, pattern: str, deadline: float = 5.0, *, since: int = 0) -> re.Match[str]:
        """The first log line matching ``pattern`` (after ``since``); polls the log file, Kamailio gives
        no other signal."""
        regex = re.compile(pattern, re.MULTILINE)
        until = time.monotonic() + deadline
        while True:
            found = regex.search(self.log(), since)
            if found is not None:
                return found
            if time.monotonic() > until:
                raise AssertionError(f"no log line /{pattern}/ in {deadline} s:\n{self.log()[-3000:]}")
            time.sleep(0.02)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)
