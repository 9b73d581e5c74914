"""Kazoo's own Kamailio configuration, really running: the private broker, the SBC launcher, clean-up after a
failure, Ctrl-C and SIGTERM (pytest runs in a child process so the test can interrupt it), and an
operator's configuration directory whose roles the model and the profile follow."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.kazoo.release import KAZOO_4_3
from harness.kazoo_sbc.launcher import KazooSbc, copy_config, kazoo_sbc_available
from harness.kazoo_sbc.localcfg import roles_of, set_roles
from harness.kazoo_sbc.rabbit import RabbitBroker
from harness.kazoo_sbc.releases import sbc_release
from harness.lab.ready import options_probe

MISSING = kazoo_sbc_available()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        MISSING is not None,
        reason=f"Kazoo's Kamailio configuration needs: {MISSING} (CI installs kamailio-kazoo-modules, "
        "kamailio-sqlite-modules, rabbitmq-server...)",
    ),
]
REPO = Path(__file__).resolve().parents[2]
DEADLINE = 30.0
CHILD_DEADLINE = 240.0


@pytest.fixture(scope="module")
def broker() -> Iterator[RabbitBroker]:
    """One broker for the tests of this module that need only AMQP to be there (each SBC its own queues)."""
    with RabbitBroker() as started:
        yield started


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]


def _children_once_forked(pid: int, more_than: int) -> list[int]:
    """Kamailio's child processes once there are more than ``more_than`` (deadline: DEADLINE)."""
    deadline = time.monotonic() + DEADLINE
    while True:
        children = [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        if len(children) > more_than or time.monotonic() >= deadline:
            assert len(children) > more_than, children
            return children
        time.sleep(0.05)  # pacing the look: nothing announces a fork


def _options(address: tuple[str, int], source_ip: str = "127.0.0.10") -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source_ip, 0))
        sock.settimeout(2.0)
        sock.sendto(options_probe(address[0], address[1], sock.getsockname()[1], who="test"), address)
        return sock.recv(65535)


def test_broker_is_private_and_leaves_nothing(broker: RabbitBroker) -> None:
    root, pids = broker.root, broker.pids
    assert root is not None and len(pids) == 2 and all(_alive(pid) for pid in pids)
    with RabbitBroker() as second:  # a second broker beside it: its own epmd, ports and node
        assert second.epmd_port != broker.epmd_port and second.amqp_port != broker.amqp_port
        second_root, second_pids = second.root, second.pids
    assert second_root is not None and not second_root.exists()
    assert not any(_alive(pid) for pid in second_pids)
    assert all(_alive(pid) for pid in pids)  # the first broker was not touched


def test_43_starts_answers_options_and_stops_clean(broker: RabbitBroker) -> None:
    sbc = KazooSbc("kazoo-4.3", broker_url=broker.url)
    with sbc:
        assert _options(sbc.address).startswith(b"SIP/2.0 200 Rawr!!")
        assert sbc.roles == roles_of((sbc_release("kazoo-4.3").pristine / "local.cfg").read_text())
        assert "nodes-" + sbc.hostname in "\n".join(sbc.log_lines())  # it subscribed on our broker
        pid, workdir = sbc.pid, sbc.workdir
        assert pid is not None
        # Kamailio answers OPTIONS while it still forks the rest of its processes: wait for them
        children = _children_once_forked(pid, more_than=5)
    assert not _alive(pid) and not any(_alive(child) for child in children)
    assert not workdir.exists()


def test_a_config_that_does_not_start_is_reported_and_cleaned(broker: RabbitBroker, tmp_path: Path) -> None:
    broken = tmp_path / "kamailio"
    copy_config(sbc_release("kazoo-4.3").pristine, broken)
    (broken / "local.cfg").write_text((broken / "local.cfg").read_text() + "\nthis is not kamailio syntax\n")
    sbc = KazooSbc("kazoo-4.3", config_dir=broken, broker_url=broker.url)
    with pytest.raises(RuntimeError, match="exited with"):
        sbc.start()
    assert sbc.pid is None and sbc._workdir is not None and not sbc._workdir.exists()


# -- a pytest session in a child process: the target is cleaned up however the session ends ---------

CHILD_TEST = """
import json, os, threading
def test_child(kazoo):
    sbc = kazoo.setup.sbc  # what the kind runs (harness.targets.kazoo_sbc)
    pids = [sbc.pid, *sbc.broker.pids]
    dirs = [str(sbc.workdir), str(sbc.broker.root)]
    print("STARTED " + json.dumps({"pids": pids, "dirs": dirs}), flush=True)
    if os.environ["CHILD_MODE"] == "hang":
        threading.Event().wait(120)  # until the parent interrupts this process
    assert False, "a failing test"
"""


def _run_child(
    tmp_path: Path, mode: str, interrupt: signal.Signals | None
) -> tuple[int, dict[str, list], str]:
    (tmp_path / "test_child.py").write_text(CHILD_TEST)
    env = {k: v for k, v in os.environ.items() if k not in ("KAZOO_SBC_AMQP_URL", "KAZOO_SBC_CONFIG")}
    env["CHILD_MODE"] = mode
    child = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
         "--kazoo-target", "kazoo-sbc", str(tmp_path / "test_child.py")],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    stdout = child.stdout
    assert stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:  # a thread, so that every wait below has a deadline
        for text in stdout:
            lines.put(text)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    output: list[str] = []
    started: dict[str, list] = {}
    try:
        while (line := lines.get(timeout=CHILD_DEADLINE)) is not None:
            output.append(line)
            if line.startswith("STARTED "):
                started = json.loads(line.split(" ", 1)[1])
                if interrupt is not None:
                    child.send_signal(interrupt)
        code = child.wait(timeout=DEADLINE)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=DEADLINE)
    return code, started, "".join(output)


@pytest.mark.parametrize(
    ("mode", "interrupt", "expect_code"),
    [("fail", None, 1), ("hang", signal.SIGINT, 2), ("hang", signal.SIGTERM, -signal.SIGTERM)],
    ids=["failing-test", "ctrl-c", "sigterm"],
)
def test_everything_stopped_and_removed_when_the_session_ends(
    tmp_path: Path, mode: str, interrupt: signal.Signals | None, expect_code: int
) -> None:
    code, started, output = _run_child(tmp_path, mode, interrupt)
    assert len(started.get("pids", [])) == 3, output  # Kamailio, the broker, its epmd were running
    assert code == expect_code, output
    deadline = time.monotonic() + DEADLINE  # SIGKILLed workers may still be reaped by init, slowly under load
    while any(_alive(pid) for pid in started["pids"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in started["pids"]), output
    assert not any(Path(d).exists() for d in started["dirs"]), output


# -- an operator's configuration directory -----------------------------------------------------------

OPERATOR_TEST = """
import socket
from harness.lab.ready import options_probe

def test_roles_followed(kazoo):
    sbc, model = kazoo.setup.sbc, kazoo.setup.model  # what the kind runs (harness.targets.kazoo_sbc)
    assert "antiflood" in sbc.roles and "presence" not in sbc.roles
    assert str(sbc.config_source) == __import__("os").environ["EXPECT_CONFIG"]
    assert kazoo.profile.role_on("antiflood") and not kazoo.profile.role_on("traffic_filter")
    assert kazoo.profile.name == "kazoo-4.3 (antiflood)"
    assert model.config.role_switches == {"antiflood": True}
    # the real SBC runs pike: a burst of OPTIONS from one source is cut with the role's own line
    mark = sbc.log_mark()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.66", 0))
        for _ in range(120):
            sock.sendto(options_probe(*kazoo.sbc, sock.getsockname()[1], who="flood"), kazoo.sbc)
    flood = r"dropping request from .* due to rate of requests with source 127\\.0\\.0\\.66:"
    line = sbc.wait_for_log(flood, 5.0, mark)
    assert "|end|" in line  # 4.3's "<callid>|end|..." format
"""


def test_an_operator_config_dir_runs_and_the_model_and_profile_follow_its_roles(
    broker: RabbitBroker, tmp_path: Path
) -> None:
    operator = tmp_path / "etc-kazoo-kamailio"
    copy_config(sbc_release(KAZOO_4_3.name).pristine, operator)
    local = operator / "local.cfg"
    local.write_text(set_roles(local.read_text(), on=frozenset({"antiflood"}), off=frozenset({"presence"})))
    (tmp_path / "test_operator.py").write_text(OPERATOR_TEST)
    env = {k: v for k, v in os.environ.items() if k != "KAZOO_SBC_CONFIG"}
    env.update(KAZOO_SBC_AMQP_URL=broker.url, EXPECT_CONFIG=str(operator.resolve()))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
         "--kazoo-target", "kazoo-sbc", "--kazoo-sbc-config", str(operator),
         str(tmp_path / "test_operator.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=CHILD_DEADLINE, check=False,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "1 passed" in output


def test_an_ecallmgr_advertisement_puts_its_media_server_in_the_dispatcher(broker: RabbitBroker) -> None:
    """The AMQP path Kazoo's apps use: nodes-role.cfg turns Media-Servers into a dispatcher row (the
    reload is the harness's: the config's own uses $sqlrows, which db_sqlite lacks)."""
    import sqlite3

    from harness.kazoo_sbc.amqp import advertisement, nodes_queue, publish_advertisement, wait_for_consumer

    with KazooSbc("kazoo-4.3", broker_url=broker.url) as sbc:
        wait_for_consumer(broker.url, nodes_queue(sbc.hostname), timeout=DEADLINE)  # else the fanout drops it
        mark = sbc.log_mark()
        media = ("freeswitch@fs.test", ("127.0.0.1", 11555))
        publish_advertisement(broker.url, advertisement("ecallmgr@kh.test", [media]))
        line = sbc.wait_for_log(r"\|nodes\|ecallmgr@kh\.test reported new media server", DEADLINE, mark)
        assert "sip:127.0.0.1:11555 in zone local" in line
        deadline = time.monotonic() + DEADLINE
        rows: list[tuple[object, ...]] = []
        while not rows and time.monotonic() < deadline:  # the insert follows the line, in another process
            with sqlite3.connect(sbc.db_path) as connection:
                rows = connection.execute(
                    "select setid, destination, flags, description from dispatcher"
                ).fetchall()
            time.sleep(0.05)
        assert rows == [(1, "sip:127.0.0.1:11555", 9, "added by nodes role")]
        sbc.reload_dispatcher()
        assert "URI: sip:127.0.0.1:11555" in sbc.rpc("dispatcher.list")
