"""`kazoo-harness replay` end to end: the catalog's own calls are captured with tshark on lo while they
run against an embedded model, then replayed from the pcapng (each replay starts its own model); plus a
hand-written sip-trace log, a raw paste on stdin, hand-built pcaps with IP fragments and TCP segments,
--refresh of a message naming foreign addresses, and --to-scenario run under pytest.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.kazoo.profile import load_profile
from harness.replay.capture import find_invites, read_messages
from harness.replay.rewrite import foreign_addresses
from harness.replay.session import replay_invite
from harness.replay.siptrace import read_raw
from harness.scenario.case import ScenarioCase, load_cases
from harness.scenario.runner import ScenarioResult, run_case_sync
from harness.targets.embedded import open_embedded
from harness.targets.target import Target

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from replay_frames import (  # type: ignore[import-not-found]
    LINKTYPE_ETHERNET,
    ether,
    ipv4,
    ipv4_fragments,
    tcp,
    udp,
    write_pcap,
)

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 20.0
BARRIER_IP = "127.0.0.99"  # a datagram from here marks "everything before it has been captured"

# (scenario file, param id, transport of the replay, cause the replay must name)
CATALOG = [
    ("acl/listed_host.yaml", None, "none"),
    ("acl/unlisted_carrier.yaml", None, "acl"),
    ("number_mapping/absent_number.yaml", None, "number_mapping"),
    ("number_format/not_reconcilable.yaml", None, "number_format"),
    ("malformed/max_forwards.yaml", "zero", "malformed"),
    ("call_flow/routed_call.yaml", "tcp", "none"),
]

pytestmark = pytest.mark.slow
needs_tshark = pytest.mark.skipif(
    shutil.which("tshark") is None or os.geteuid() != 0,
    reason="needs tshark and root to capture on lo (CI installs tshark and runs as root)",
)


def cli(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["replay", *args], input=stdin)
    return result.exit_code, result.stdout


def replay_json(*args: str, stdin: str | None = None) -> dict[str, Any]:
    code, out = cli(*args, "--json", stdin=stdin)
    assert code == 0, out
    loaded: dict[str, Any] = json.loads(out)
    return loaded


def case_of(file: str, param: str | None) -> ScenarioCase:
    return next(c for c in load_cases(ROOT / "scenarios" / file) if c.param_id == param)


@pytest.fixture(scope="module")
def model() -> Any:
    with open_embedded(load_profile()) as target:
        yield target


class Tshark:
    """tshark on lo writing a pcapng and printing one line per packet (-P), so the test can wait for a
    marker datagram instead of guessing when the capture has caught up."""

    def __init__(self, path: Path, capture_filter: str) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.proc = subprocess.Popen(
            ["tshark", "-i", "lo", "-f", capture_filter, "-w", str(path), "-P", "-l"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        stdout = self.proc.stdout

        def pump() -> None:
            for line in stdout:
                self.lines.put(line)

        threading.Thread(target=pump, daemon=True).start()

    def barrier(self, attempts: int) -> None:
        """Send marker datagrams until tshark prints one (the first may precede the capture start). Each
        call uses its own source port, so a late line of an earlier marker does not count."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((BARRIER_IP, 0))
            port = str(s.getsockname()[1])
            for _ in range(attempts):
                s.sendto(b"barrier", ("127.0.0.1", 9))
                try:
                    while not (
                        BARRIER_IP in (line := self.lines.get(timeout=DEADLINE / attempts)) and port in line
                    ):
                        pass
                    return
                except queue.Empty:
                    continue
        pytest.fail("tshark never showed the marker datagram")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)  # by its own handle (PID), never by name
        try:
            self.proc.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=DEADLINE)


@pytest.fixture(scope="module")
def catalog_capture(
    model: Target, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[ScenarioResult]]:
    """The catalog calls of CATALOG, run against the model while tshark records them."""
    if shutil.which("tshark") is None or os.geteuid() != 0:
        pytest.skip("needs tshark and root to capture on lo (CI installs tshark and runs as root)")
    path = tmp_path_factory.mktemp("capture") / "catalog.pcapng"
    shark = Tshark(path, f"port {model.sbc[1]} or (udp and host {BARRIER_IP})")
    results = []
    try:
        shark.barrier(attempts=40)
        for file, param, _ in CATALOG:
            results.append(run_case_sync(case_of(file, param), model, session_seed=7))
        shark.barrier(attempts=1)
    finally:
        shark.stop()
    for r in results:
        assert r.ok, f"the catalog call itself failed: {r.case.test_id}: {r.failures}"
    return path, results


@needs_tshark
@pytest.mark.parametrize("index", range(len(CATALOG)), ids=[f"{f}[{p}]" if p else f for f, p, _ in CATALOG])
def test_catalog_call_replays_byte_exact_with_the_same_outcome(
    catalog_capture: tuple[Path, list[ScenarioResult]], index: int
) -> None:
    path, results = catalog_capture
    original = results[index].exchange
    assert original is not None and original.call_id is not None
    [captured] = find_invites(read_messages(path), original.call_id)
    assert captured.data == original.sent[0].data  # the capture holds what the catalog sent
    out = replay_json(str(path), "--call-id", original.call_id)
    assert out["as_captured"] is True  # the first bytes on the wire are the captured bytes
    assert out["invite"]["transport"] == original.transport
    assert out["exchange"]["final"] == {"code": original.final.code, "reason": original.final.reason}  # type: ignore[union-attr]
    assert out["matches_capture"] is True
    assert out["cause"] == CATALOG[index][2], out


@needs_tshark
def test_several_calls_need_a_call_id(catalog_capture: tuple[Path, list[ScenarioResult]]) -> None:
    path, results = catalog_capture
    code, _ = cli(str(path))
    assert code == 2
    assert all(r.exchange is not None and r.exchange.call_id for r in results)


@needs_tshark
def test_to_scenario_runs_green_under_pytest_and_red_when_edited(
    catalog_capture: tuple[Path, list[ScenarioResult]], tmp_path: Path
) -> None:
    path, results = catalog_capture
    absent = results[2].exchange  # 604: the raw INVITE, not a generated one (which would route), is sent
    assert absent is not None and absent.call_id is not None
    scenario = tmp_path / "scenarios" / "replayed_absent.yaml"
    replay_json(str(path), "--call-id", absent.call_id, "--to-scenario", str(scenario))
    text = scenario.read_text(encoding="utf-8")
    assert "raw: |" in text and "code: 604" in text and "cause: number_mapping" in text
    green = _pytest(scenario, tmp_path)
    assert green.returncode == 0 and "1 passed" in green.stdout, green.stdout
    scenario.write_text(text.replace("code: 604", "code: 200"), encoding="utf-8")
    red = _pytest(scenario, tmp_path)
    assert red.returncode == 1 and "1 failed" in red.stdout, red.stdout


def _pytest(file: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(file)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


# -- hand-made sources -------------------------------------------------------------------------------

TRACE_INVITE = [
    "INVITE sip:+14155550199@127.0.0.1:5060 SIP/2.0",
    "Via: SIP/2.0/UDP 127.0.0.10:5077;branch=z9hG4bK-trace-1;rport",
    "Max-Forwards: 69",
    'From: "Acme" <sip:+12125550100@127.0.0.10>;tag=trace-tag-1',
    "To: <sip:+14155550199@127.0.0.1:5060>",
    "Call-ID: trace-call-1@127.0.0.10",
    "CSeq: 101 INVITE",
    "Contact: <sip:+12125550100@127.0.0.10:5077>",
    "User-Agent: Acme SBC",
    "Content-Length: 0",
    "",
    "",
]
TRACE_BYTES = "\r\n".join(TRACE_INVITE).encode()
SIPTRACE_LOG = (
    "2026-11-26 04:00:00.000001 [NOTICE] sofia.c:1065 something unrelated\n"
    f"recv {len(TRACE_BYTES)} bytes from udp/[127.0.0.10]:5077 at 04:00:00.100000:\n"
    "   ------------------------------------------------------------------------\n"
    + "".join(f"   {line}\n" for line in TRACE_INVITE[:-1])
    + "   ------------------------------------------------------------------------\n"
    "2026-11-26 04:00:00.200000 [DEBUG] sofia.c:2000 another line\n"
)


def test_siptrace_log_replays_the_traced_bytes(tmp_path: Path) -> None:
    log = tmp_path / "freeswitch.log"
    log.write_text(SIPTRACE_LOG, encoding="utf-8")
    out = replay_json(str(log))
    assert out["as_captured"] is True and out["invite"]["bytes"] == len(TRACE_BYTES)
    assert out["exchange"]["final"]["code"] == 604 and out["cause"] == "number_mapping"
    assert any("unable to determine account" in line for line in out["logs"])


def test_raw_paste_on_stdin_as_the_unlisted_carrier() -> None:
    paste = "\n".join(TRACE_INVITE).replace("+14155550199", "+14155550100")
    out = replay_json("-", "--source-role", "unlisted", stdin=paste)
    assert out["as_captured"] is True
    assert out["exchange"]["local"].startswith("127.0.0.66:")
    assert out["exchange"]["final"]["code"] == 407 and out["cause"] == "acl"


def _two_calls_pcap(path: Path, udp_invite: bytes, tcp_invite: bytes) -> Path:
    """A UDP INVITE in three IPv4 fragments (out of order) and a TCP INVITE in three segments."""
    src, dst = "127.0.0.10", "127.0.0.1"
    datagram = udp(5062, 5060, udp_invite)
    frags = ipv4_fragments(src, dst, 17, datagram, 256, ident=77)
    assert len(frags) >= 3
    third = len(tcp_invite) // 3
    parts = [tcp_invite[:third], tcp_invite[third : 2 * third], tcp_invite[2 * third :]]
    seq = 1000
    segments: list[bytes] = []
    for part in parts:
        segments.append(ipv4(src, dst, 6, tcp(40000, 5060, seq, part), ident=90 + len(segments)))
        seq += len(part)
    frames = [frags[1], frags[0], *frags[2:], segments[0], segments[2], segments[1]]
    return write_pcap(path, LINKTYPE_ETHERNET, [ether(f) for f in frames])


def test_fragmented_udp_and_segmented_tcp_invites_replay_byte_exact(tmp_path: Path) -> None:
    udp_invite = TRACE_BYTES.replace(b"Content-Length: 0", b"X-Pad: " + b"p" * 600 + b"\r\nContent-Length: 0")
    tcp_invite = (
        TRACE_BYTES.replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP")
        .replace(b"trace-call-1", b"trace-call-2")
        .replace(b"+14155550199", b"+14155550100")
    )
    pcap = _two_calls_pcap(tmp_path / "split.pcap", udp_invite, tcp_invite)
    assert [m.data for m in find_invites(read_messages(pcap))] == [udp_invite, tcp_invite]
    first = replay_json(str(pcap), "--call-id", "trace-call-1@127.0.0.10")
    assert first["as_captured"] is True and first["invite"]["bytes"] == len(udp_invite)
    assert first["exchange"]["final"]["code"] == 604
    second = replay_json(str(pcap), "--call-id", "trace-call-2@127.0.0.10")
    assert second["as_captured"] is True and second["exchange"]["transport"] == "tcp"
    assert second["exchange"]["final"]["code"] == 200


# Documentation addresses (RFC 5737) appear only inside this message text: the test checks they are
# refused, or rewritten before anything is sent; nothing is ever sent to them.
FOREIGN = (
    "\r\n".join(TRACE_INVITE)
    .replace("127.0.0.10:5077", "203.0.113.5:5060")
    .replace("+14155550199", "+14155550100")
    .replace("Content-Length: 0", "Content-Type: application/sdp\r\nContent-Length: 93")
    + "v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\n"
    + "t=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
)


def test_foreign_addresses_are_refused_without_refresh_and_rewritten_with_it(
    model: Target, tmp_path: Path
) -> None:
    assert len(FOREIGN.split("\r\n\r\n", 1)[1]) == 93
    code, _ = cli("-", stdin=FOREIGN)
    assert code == 2
    captured = read_raw(FOREIGN)
    result = asyncio.run(
        replay_invite(
            captured,
            model,
            source_ip="127.0.0.10",
            refresh=True,
            seed=5,
        )
    )
    assert result.exchange.sent[0].data == result.sent and not result.as_captured
    assert foreign_addresses(result.sent) == [] and {str(f) for f in result.rewritten} == {
        "Via 203.0.113.5",
        "Contact 203.0.113.5",
        "SDP 198.51.100.7",
    }
    assert result.exchange.call_id != "trace-call-1@127.0.0.10"
    assert result.exchange.final is not None and result.exchange.final.code == 200
    assert result.diagnosis.cause == "none"
    scenario = tmp_path / "scenarios" / "foreign.yaml"
    out = replay_json("-", "--refresh", "--seed", "5", "--to-scenario", str(scenario), stdin=FOREIGN)
    assert out["rewritten"] and out["exchange"]["final"]["code"] == 200
    text = scenario.read_text(encoding="utf-8")
    assert "c=IN IP4 127.0.0.10" in text and "203.0.113" not in text and "198.51.100" not in text


def test_a_target_that_is_not_loopback_is_refused() -> None:
    code, _ = cli("-", "--target", "192.0.2.1:5060", stdin="\n".join(TRACE_INVITE))
    assert code == 2


def test_replay_to_an_explicit_loopback_target(model: Target) -> None:
    out = replay_json("-", "--target", f"{model.sbc[0]}:{model.sbc[1]}", stdin="\n".join(TRACE_INVITE))
    assert out["exchange"]["remote"] == f"{model.sbc[0]}:{model.sbc[1]}"
    assert out["exchange"]["final"]["code"] == 604 and out["logs"] == []  # no log sources for HOST:PORT


def test_a_malformed_paste_is_sent_as_is_and_its_silent_drop_is_named() -> None:
    paste = "\n".join(line for line in TRACE_INVITE if not line.startswith("To:"))
    out = replay_json("-", stdin=paste)
    assert out["as_captured"] is True
    assert out["exchange"]["outcome"] == "silence" and out["exchange"]["ended_early"] is True
    # Kamailio 5.6's core drops it before the script: the profile's line for that is the core's
    assert (out["cause"], out["outcome"]) == ("malformed", "dropped_missing_headers")


CUSTOMER_PASTE = "\n".join(TRACE_INVITE).replace("+14155550199", "+16505550123")


def customer_data(tmp_path: Path) -> Path:
    """The demo data plus the customer's number +16505550123, in service on the demo account's main line
    (what a dump of the customer's CouchDB would hold for it)."""
    data = tmp_path / "customer-couch"
    shutil.copytree(ROOT / "harness/model/demo", data, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    number = json.loads((data / "numbers%2F%2B1415/%2B14155550100.json").read_text(encoding="utf-8"))
    number.update({"_id": "+16505550123", "pvt_db_name": "numbers%2F%2B1650"})
    (data / "numbers%2F%2B1650").mkdir()
    (data / "numbers%2F%2B1650/%2B16505550123.json").write_text(json.dumps(number), encoding="utf-8")
    for doc in (data / "account%2F4a%2F1f%2F7c2e9b3d4e8fa6c50b1d2e3f4a5b").glob("*.json"):
        body = json.loads(doc.read_text(encoding="utf-8"))
        if body.get("pvt_type") == "callflow" and "+14155550100" in body.get("numbers", []):
            body["numbers"].append("+16505550123")
            doc.write_text(json.dumps(body), encoding="utf-8")
    return data


def test_the_demo_data_says_plainly_it_cannot_judge_a_customers_number(tmp_path: Path) -> None:
    out = replay_json("-", stdin=CUSTOMER_PASTE)
    assert out["exchange"]["final"]["code"] == 604  # the demo does not know the number...
    assert out["cause"] == "unknown"  # ... which says nothing about the customer's stack
    limit = out["demo_cannot_judge"]
    assert limit["looks_like"] == "number_mapping" and "+16505550123" in limit["why"]
    assert "--data DIR" in limit["instead"] and "--target FILE" in limit["instead"]
    code, text = cli("-", stdin=CUSTOMER_PASTE)
    assert code == 0, text
    assert re.search(
        r"target: embedded \(embedded, 127\.0\.0\.1:\d+, profile kazoo-4\.3\) with the demo data", text
    )
    assert "cause: not judged: the embedded demo data has no number +16505550123" in text
    assert "to judge it: replay with --data DIR" in text
    # an address the demo's ACLs never heard of: no ACL verdict on the demo either
    demo_number = CUSTOMER_PASTE.replace("+16505550123", "+14155550100")
    stranger = replay_json("-", "--source-role", "127.0.0.77", stdin=demo_number)
    assert stranger["exchange"]["final"]["code"] == 407
    assert stranger["cause"] == "unknown" and stranger["demo_cannot_judge"]["looks_like"] == "acl"
    # the demo's own roles are judged as before: its unlisted carrier is an ACL problem
    unlisted = replay_json("-", "--source-role", "unlisted", stdin=demo_number)
    assert unlisted["cause"] == "acl" and "demo_cannot_judge" not in unlisted


def test_replay_with_the_customers_data_judges_the_capture(tmp_path: Path) -> None:
    data = customer_data(tmp_path)
    routed = replay_json("-", "--data", str(data), stdin=CUSTOMER_PASTE)
    assert routed["exchange"]["final"]["code"] == 200 and routed["cause"] == "none"
    assert "demo_cannot_judge" not in routed
    # with data that lacks the number, the same 604 is now a verdict about that data
    (data / "numbers%2F%2B1650/%2B16505550123.json").unlink()
    missing = replay_json("-", "--data", str(data), stdin=CUSTOMER_PASTE)
    assert missing["exchange"]["final"]["code"] == 604 and missing["cause"] == "number_mapping"
    assert "demo_cannot_judge" not in missing
    args = ["replay", "-", "--data", str(data), "--target", "127.0.0.1:5060"]
    result = CliRunner().invoke(app, args, input=CUSTOMER_PASTE)
    assert result.exit_code == 2 and "loads the model a target starts (embedded)" in result.stderr
    assert "127.0.0.1:5060 (address) starts none" in result.stderr
    result = CliRunner().invoke(
        app, ["replay", "-", "--data", str(tmp_path / "nothing")], input=CUSTOMER_PASTE
    )
    assert result.exit_code == 2 and "nothing: not a directory" in result.stderr
