"""A real capture: tshark (dumpcap) records SIP over loopback sockets; read_messages gets it back.

Checks the reader against what the capture tools really write: pcapng with EN10MB for ``-i lo`` and
Linux cooked (SLL2) for ``-i any``, with kernel-made TCP segments.
"""

from __future__ import annotations

import os
import queue
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from report_samples import invite, response

from harness.replay.capture import find_invites, read_messages

SERVER, CLIENT = "127.0.0.77", "127.0.0.78"
UDP_PORT, TCP_PORT = 5098, 5099
DEADLINE = 20.0
# only packets that carry data, so their number is known and tshark stops by itself (-c): the two UDP
# datagrams, the INVITE's three TCP segments and the one segment holding both responses
CAPTURE_FILTER = (
    f"host {SERVER} and (udp or (tcp and ((ip[2:2] - ((ip[0] & 0xf) << 2)) - ((tcp[12] & 0xf0) >> 2)) != 0))"
)
DATA_PACKETS = 6

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="capturing on loopback needs root here"),
]


def _start_capture(interface: str, path: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        ["tshark", "-q", "-i", interface, "-f", CAPTURE_FILTER, "-c", str(DATA_PACKETS), "-w", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stderr is not None
    stderr = proc.stderr

    def pump() -> None:
        for line in stderr:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    while True:  # wait for dumpcap to report the capture open, with a deadline
        try:
            line = lines.get(timeout=DEADLINE)
        except queue.Empty:
            proc.kill()
            pytest.fail("tshark did not start capturing in time")
        if "Capture started" in line:
            return proc


def _wait_capture(proc: subprocess.Popen[str]) -> None:
    try:
        proc.wait(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        proc.kill()  # by its own handle (PID), never by name
        proc.wait(timeout=DEADLINE)
        pytest.fail(f"tshark did not see the {DATA_PACKETS} data packets in time")


def _traffic(inv_udp: bytes, inv_tcp: bytes) -> None:
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as srv,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as cli,
    ):
        srv.bind((SERVER, UDP_PORT))
        srv.settimeout(DEADLINE)
        cli.bind((CLIENT, 0))
        cli.sendto(inv_udp, (SERVER, UDP_PORT))
        data, peer = srv.recvfrom(65535)
        srv.sendto(response(data, 404, "Not Found"), peer)
        cli.settimeout(DEADLINE)
        cli.recvfrom(65535)
    with socket.create_server((SERVER, TCP_PORT)) as lst:
        lst.settimeout(DEADLINE)
        with socket.create_connection((SERVER, TCP_PORT), timeout=DEADLINE, source_address=(CLIENT, 0)) as c:
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn, _ = lst.accept()
            with conn:
                conn.settimeout(DEADLINE)
                third = len(inv_tcp) // 3
                got = b""
                for part in (inv_tcp[:third], inv_tcp[third : 2 * third], inv_tcp[2 * third :]):
                    c.sendall(part)
                    while len(got) < len(inv_tcp) and not got.endswith(part):
                        got += conn.recv(65535)  # received before the next part is sent: separate segments
                conn.sendall(response(inv_tcp, 100, "Trying") + response(inv_tcp, 486, "Busy Here"))
                seen = b""
                while seen.count(b"SIP/2.0 ") < 2:
                    seen += c.recv(65535)


@pytest.mark.parametrize("interface", ["lo", "any"])
def test_live_capture_reads_back_byte_exact(tmp_path: Path, interface: str) -> None:
    path = tmp_path / f"{interface}.pcapng"
    inv_udp = invite("live-udp@127.0.0.78", src=(CLIENT, 5060), dst=(SERVER, UDP_PORT), body_size=2000)
    inv_tcp = invite("live-tcp@127.0.0.78", transport="TCP", src=(CLIENT, 5060), dst=(SERVER, TCP_PORT))
    proc = _start_capture(interface, path)
    try:
        _traffic(inv_udp, inv_tcp)
    finally:
        _wait_capture(proc)
    msgs = read_messages(path)
    firsts = [(m.transport, m.first_line) for m in msgs]
    assert firsts == [
        ("udp", f"INVITE sip:+14155550100@{SERVER}:{UDP_PORT} SIP/2.0"),
        ("udp", "SIP/2.0 404 Not Found"),
        ("tcp", f"INVITE sip:+14155550100@{SERVER}:{TCP_PORT} SIP/2.0"),
        ("tcp", "SIP/2.0 100 Trying"),
        ("tcp", "SIP/2.0 486 Busy Here"),
    ]
    assert [m.data for m in find_invites(msgs)] == [inv_udp, inv_tcp]
    assert msgs[0].src[0] == CLIENT and msgs[1].src == (SERVER, UDP_PORT)
