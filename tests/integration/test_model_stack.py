"""The model beyond single rows: TCP framing, optional Kamailio roles, ACL reload over the event
socket, channel events, robustness against the conformance corpus, and the `model` subcommand."""

from __future__ import annotations

import asyncio
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from model_helpers import Invite, UdpPeer, log_lines, options, sdp

from harness.kazoo.esl import EslClient
from harness.kazoo.release import release
from harness.model.stack import ModelConfig, RunningModel, start_model
from harness.sip import builder
from harness.sip.message import Request, parse_message

CORPUS = Path("/work/shared/corpus")
ROUTED = "+14155550100"
LISTED = "127.0.0.10"
UNLISTED = "127.0.0.66"
DEADLINE = 5.0


def _start(tmp: Path, profile: str = "kazoo-4.3", **overrides: object) -> RunningModel:
    config = ModelConfig(
        release=release(profile),
        log_dir=tmp,
        sbc_port=0,
        media_port=0,
        esl_port=0,
        couch_port=0,
        route_timeout=0.3,
    )
    for name, value in overrides.items():
        setattr(config, name, value)
    return start_model(config)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningModel]:
    running = _start(tmp_path_factory.mktemp("stack"))
    yield running
    running.stop()


def tcp_exchange(
    target: tuple[str, int], data: bytes, source: str = LISTED, *, half_close: bool = False
) -> tuple[bytes, bool]:
    """Send ``data`` on a new connection; return what came back and whether the server closed it.
    ``half_close`` ends our side after sending, so the server closes once it has handled the bytes."""
    with socket.create_connection(target, timeout=DEADLINE, source_address=(source, 0)) as conn:
        conn.sendall(data)
        if half_close:
            conn.shutdown(socket.SHUT_WR)
        received = b""
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end:
            conn.settimeout(max(end - time.monotonic(), 0.01))
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                return received, False
            except ConnectionResetError:
                return received, True
            if not chunk:
                return received, True
            received += chunk
            if b"SIP/2.0 200" in received or b"SIP/2.0 4" in received or b"SIP/2.0 6" in received:
                return received, False
        return received, False


# ---------------------------------------------------------------- TCP rows
def test_tcp_invite_is_answered_on_the_connection(model: RunningModel) -> None:
    invite = Invite(ROUTED, (LISTED, 5060), model.sbc, transport="TCP")
    received, _ = tcp_exchange(model.sbc, invite.render())
    assert b"SIP/2.0 100 Attempting to connect your call" in received
    assert b"SIP/2.0 200 OK" in received


def test_tcp_without_content_length_closes_the_connection(model: RunningModel) -> None:
    data = Invite(
        ROUTED, (LISTED, 5060), model.sbc, transport="TCP", body=b"", drop=("content-length",)
    ).render()
    received, closed = tcp_exchange(model.sbc, data)
    assert closed and received == b""
    # Kamailio 5.6's stream reader (4.3: tcp_accept_no_cl off); 5.x takes it: docs/parity.md
    assert log_lines(model, "kamailio", "<core> [core/tcp_read.c:1508]: tcp_read_req(): bad request, state=7")


def test_tcp_without_content_length_is_taken_bodiless_on_kazoo_5(tmp_path: Path) -> None:
    """5.x's http.cfg sets tcp_accept_no_cl: the INVITE goes on without a body and is answered."""
    with _start(tmp_path, "kazoo-5") as running:
        data = Invite(
            ROUTED, (LISTED, 5060), running.sbc, transport="TCP", body=b"", drop=("content-length",)
        ).render()
        received, _ = tcp_exchange(running.sbc, data)
        assert b"SIP/2.0 100 Attempting to connect your call" in received
        assert not log_lines(running, "kamailio", "tcp_read_req(): bad request")


def test_tcp_message_over_80000_bytes_closes_the_connection(model: RunningModel) -> None:
    padding = "X-Padding: " + "a" * 81_000
    data = Invite(ROUTED, (LISTED, 5060), model.sbc, transport="TCP", extra=[padding]).render()
    received, closed = tcp_exchange(model.sbc, data)
    assert closed and b"SIP/2.0" not in received
    assert log_lines(model, "kamailio", "buffer overrun, dropping")


def test_x_headers_are_replaced_so_x_auth_ip_cannot_be_spoofed(model: RunningModel) -> None:
    with UdpPeer(UNLISTED) as peer:
        invite = Invite(ROUTED, peer.address, model.sbc, extra=[f"X-AUTH-IP: {LISTED}", "X-AUTH-PORT: 5060"])
        peer.send(invite.render(), model.sbc)
        _, final = peer.final(invite.call_id)
    assert final is not None and final.code == 407


def test_a_media_server_that_said_only_100_is_alive_to_the_dispatcher(tmp_path: Path) -> None:
    """The SBC reads media's 100 from its bytes (no parse): it must still stop the dispatcher's probe.
    An unreconcilable number keeps the media role silent after its 100 until the route request times
    out (0.8 s here), past the probe (0.2 s): the caller gets media's answer, not 480 All servers busy."""
    running = _start(tmp_path, dispatcher_probe=0.2, route_timeout=0.8)
    try:
        with UdpPeer(LISTED) as peer:
            invite = Invite("12", peer.address, running.sbc)
            started = time.monotonic()
            peer.send(invite.render(), running.sbc)
            provisionals, final = peer.final(invite.call_id)
            waited = time.monotonic() - started
    finally:
        running.stop()
    assert [r.code for r in provisionals][:1] == [100]
    assert final is not None and final.code != 480, final
    assert waited >= 0.75  # the route request's timeout ended it, not the probe
    assert not log_lines(running, "kamailio", "All servers busy") and not log_lines(
        running, "kamailio", "no servers"
    )


def test_a_late_offer_in_the_ack_starts_the_media(model: RunningModel) -> None:
    """An INVITE without SDP: the media role offers in its 200 and the caller answers in the ACK, which
    starts FreeSWITCH's RTP. The media role ends other ACKs without a parse (an unanswered call's):
    this one must still reach the call."""
    with UdpPeer(LISTED) as peer, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rtp:
        rtp.bind((LISTED, 0))
        rtp.settimeout(DEADLINE)
        invite = Invite(ROUTED, peer.address, model.sbc, body=b"")
        peer.send(invite.render(), model.sbc)
        _, ok = peer.final(invite.call_id)
        assert ok is not None and ok.code == 200 and b"m=audio" in ok.body  # FreeSWITCH's offer
        sent = parse_message(invite.render())
        assert isinstance(sent, Request)
        answer = sdp(LISTED, rtp.getsockname()[1])
        ack = builder.build_ack(sent, ok).with_body(answer).add_header("Content-Type", "application/sdp")
        peer.send(ack.to_bytes(), model.sbc)
        packet, source = rtp.recvfrom(2048)
    assert packet[0] >> 6 == 2 and packet[1] & 0x7F == 0  # RTP version 2, PCMU
    assert source[0] == model.media[0]


# ---------------------------------------------------------------- optional roles
@pytest.mark.parametrize(("release_name", "trusted_exempt"), [("kazoo-4.3", False), ("kazoo-5", True)])
def test_traffic_filter_drops_ip_domain(tmp_path: Path, release_name: str, trusted_exempt: bool) -> None:
    """4.3 runs FILTER_REQUEST before CLASSIFY_SOURCE, so it filters trusted carriers too; 5.x classifies
    first and lets them through (docs/parity.md)."""
    with (
        _start(tmp_path, release_name, role_switches={"traffic_filter": True}) as running,
        UdpPeer(UNLISTED) as peer,
    ):
        invite = Invite(ROUTED, peer.address, running.sbc)  # R-URI host is the SBC's IP address
        peer.send(invite.render(), running.sbc)
        assert peer.barrier(running.sbc) == []
        assert log_lines(running, "kamailio", "dropping INVITE request with IP domain")
        assert any(invite.call_id in line for line in log_lines(running, "kamailio", "with IP domain"))
        with UdpPeer(LISTED) as trusted:
            ok = Invite(ROUTED, trusted.address, running.sbc)
            trusted.send(ok.render(), running.sbc)
            if trusted_exempt:
                _, final = trusted.final(ok.call_id)
                assert final is not None and final.code == 200
            else:
                assert trusted.barrier(running.sbc) == []


def test_acl_role_rejects_by_the_realm_acls(tmp_path: Path) -> None:
    realm = "demo-account.kazoo-model.local"
    with _start(tmp_path, role_switches={"acl": True}) as running, UdpPeer(UNLISTED) as peer:
        account = running.store.get("accounts", "4a1f7c2e9b3d4e8fa6c50b1d2e3f4a5b")
        assert account is not None and account["realm"] == realm
        account["acls"] = {"order": "allow,deny", "cidrs": ["127.0.0.99/32"]}
        running.store.put("accounts", account)
        invite = Invite(ROUTED, peer.address, running.sbc, from_host=realm)
        peer.send(invite.render(), running.sbc)
        _, final = peer.final(invite.call_id)
        assert final is not None and (final.code, final.reason) == (603, "Rejected by ACL")
        assert log_lines(
            running, "kamailio", f"{invite.call_id}|ACL|INVITE from {UNLISTED} is rejected by ACL for {realm}"
        )
        other = Invite(
            ROUTED, peer.address, running.sbc, from_host="elsewhere.example"
        )  # no account: permitted
        peer.send(other.render(), running.sbc)
        _, final = peer.final(other.call_id)
        assert final is not None and final.code == 407  # on to FreeSWITCH, which challenges


def test_kamailio_challenges_untrusted_invites_on_kazoo_5(tmp_path: Path) -> None:
    """5.x's authorization.cfg is always on (no role switch): Kamailio's own 407."""
    with _start(tmp_path, "kazoo-5") as running, UdpPeer(UNLISTED) as peer:
        invite = Invite(ROUTED, peer.address, running.sbc)
        peer.send(invite.render(), running.sbc)
        seen, final = peer.final(invite.call_id)
        assert [r.code for r in seen] == [407]  # Kamailio's own answer: no 100 from the relay
        assert final is not None and final.proxy_authenticate is not None
        ip, port = peer.address
        line = f"challenging INVITE from +14155551234@{ip} (sip:+14155551234@{ip}) {ip}:{port}"
        assert log_lines(
            running, "kamailio", f"|{invite.call_id}|authorization.cfg:62 (authorization) {line}"
        )
        assert not log_lines(running, "freeswitch", invite.call_id)


def test_43s_authorization_role_refuses_unregistered_messages_not_invites(tmp_path: Path) -> None:
    """4.3's AUTHORIZATION_ROLE (authorization-role.cfg): 503 Not Registered for a MESSAGE from a source
    neither trusted nor registered; an INVITE is left to FreeSWITCH's challenge (docs/parity.md)."""
    with (
        _start(tmp_path, role_switches={"authorization": True}) as running,
        UdpPeer(UNLISTED) as peer,
    ):
        message = Invite(ROUTED, peer.address, running.sbc, method="MESSAGE", body=b"")
        peer.send(message.render(), running.sbc)
        _, final = peer.final(message.call_id)
        assert final is not None and (final.code, final.reason) == (503, "Not Registered")
        ip, port = peer.address
        assert log_lines(
            running,
            "kamailio",
            f"{message.call_id}|log|not authorized sip:+14155551234@{ip} from {ip}:{port}",
        )
        invite = Invite(ROUTED, peer.address, running.sbc)
        peer.send(invite.render(), running.sbc)
        _, challenge = peer.final(invite.call_id)
        assert challenge is not None and challenge.code == 407
        assert log_lines(running, "freeswitch", invite.call_id)  # FreeSWITCH's challenge, not Kamailio's


# ---------------------------------------------------------------- ACLs over the event socket
async def _reload_acl(esl: tuple[str, int]) -> str:
    async with await EslClient.open(esl[0], esl[1], "ClueCon") as client:
        return await client.api("reloadacl")


def test_acl_change_takes_effect_after_reloadacl(tmp_path: Path) -> None:
    with _start(tmp_path) as running, UdpPeer(UNLISTED) as peer:
        doc = running.store.get("system_config", "ecallmgr")
        assert doc is not None
        doc[running.node]["acls"]["new_carrier"] = {
            "type": "allow",
            "network-list-name": "trusted",
            "cidr": f"{UNLISTED}/32",
        }
        running.store.put("system_config", doc)

        before = Invite(ROUTED, peer.address, running.sbc)
        peer.send(before.render(), running.sbc)
        _, final = peer.final(before.call_id)
        assert final is not None and final.code == 407  # not yet: FreeSWITCH keeps its lists until reloadacl

        reply = asyncio.run(asyncio.wait_for(_reload_acl(running.esl), DEADLINE))
        assert reply.startswith("+OK acl reloaded")
        assert log_lines(running, "freeswitch", "Created ip list trusted default (deny)")
        assert log_lines(running, "freeswitch", f"Adding {UNLISTED}/32 (allow) [] to list trusted")

        after = Invite(ROUTED, peer.address, running.sbc)
        peer.send(after.render(), running.sbc)
        _, final = peer.final(after.call_id)
        assert final is not None and final.code == 200


async def _call_with_events(running: RunningModel) -> list[dict[str, object]]:
    async with await EslClient.open(running.esl[0], running.esl[1], "ClueCon") as client:
        await client.events("CHANNEL_CREATE", "CHANNEL_HANGUP_COMPLETE")
        with UdpPeer(LISTED) as peer:
            invite = Invite("+14155550199", peer.address, running.sbc)
            peer.send(invite.render(), running.sbc)
            events: list[dict[str, object]] = []
            while len(events) < 2:
                frame = await client.next_frame(deadline=time.time() + DEADLINE)
                assert frame is not None, f"events so far: {events}"
                if frame.content_type.startswith("text/event"):
                    event = frame.event()
                    if event.get("Unique-ID") == invite.call_id:
                        events.append(event)
            return events


def test_channel_events_reach_the_event_socket(model: RunningModel) -> None:
    events = asyncio.run(asyncio.wait_for(_call_with_events(model), DEADLINE * 2))
    assert [e["Event-Name"] for e in events] == ["CHANNEL_CREATE", "CHANNEL_HANGUP_COMPLETE"]


# ---------------------------------------------------------------- robustness
def _corpus_files() -> list[Path]:
    return sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.suffix != ".md")


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"conformance corpus not found at {CORPUS}")
def test_model_keeps_serving_after_the_whole_corpus(tmp_path: Path) -> None:
    files = _corpus_files()
    assert files
    with _start(tmp_path) as running, UdpPeer(LISTED) as peer:
        for target in (running.sbc, running.media):
            for path in files:
                data = path.read_bytes()
                peer.send(data[:65000], target)
                tcp_exchange(target, data, half_close=True)
            peer.barrier(target)  # still answering, over UDP...
            received, _ = tcp_exchange(target, options((LISTED, 5060), target))
            assert b"SIP/2.0 200" in received  # ...and over TCP
        routed = Invite(ROUTED, peer.address, running.sbc)
        peer.send(routed.render(), running.sbc)
        _, final = peer.final(routed.call_id)
        assert final is not None and final.code == 200


# ---------------------------------------------------------------- the subcommand
def test_model_subcommand_runs_until_sigint(tmp_path: Path) -> None:
    ready = tmp_path / "ready.json"
    command = [
        sys.executable, "-m", "harness.cli", "model", "--profile", "kazoo-5",
        "--sbc", "127.0.0.1:0", "--media", "127.0.0.1:0", "--esl", "127.0.0.1:0", "--couch", "127.0.0.1:0",
        "--log-dir", str(tmp_path / "logs"), "--ready-file", str(ready), "--role-switch", "acl=off",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=Path(__file__).parents[2]
    )
    try:
        assert process.stdout is not None
        output = _read_until(process.stdout, b"Ctrl-C to stop.", DEADLINE * 2)
        assert b"SBC (Kamailio)" in output and b"CouchDB API" in output
        info = json.loads(ready.read_text())
        host, port = info["sbc"]["udp"].rsplit(":", 1)
        with UdpPeer(LISTED) as peer:
            assert peer.barrier((host, int(port))) == []
        process.send_signal(signal.SIGINT)
        assert process.wait(DEADLINE) == 0
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(DEADLINE)


def _read_until(stream: object, marker: bytes, timeout: float) -> bytes:
    selector = selectors.DefaultSelector()
    selector.register(stream, selectors.EVENT_READ)  # type: ignore[arg-type]
    out = b""
    end = time.monotonic() + timeout
    fd = stream.fileno()  # type: ignore[attr-defined]
    while marker not in out:
        left = end - time.monotonic()
        if left <= 0 or not selector.select(left):
            raise AssertionError(f"no {marker!r} within {timeout} s; output so far: {out!r}")
        chunk = os.read(fd, 4096)
        if not chunk:
            raise AssertionError(f"process ended before {marker!r}; output: {out!r}")
        out += chunk
    return out


def test_model_subcommand_refuses_non_loopback_addresses() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "harness.cli", "model", "--sbc", "192.0.2.1:5060"],
        capture_output=True,
        timeout=DEADLINE * 2,
        cwd=Path(__file__).parents[2],
    )
    assert result.returncode == 2
    assert b"not a loopback address" in result.stderr
