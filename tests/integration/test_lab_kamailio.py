"""The lab target's real Kamailio behaves as Kazoo's SBC (docs/kazoo-behaviour.md, docs/lab.md).

A carrier socket on 127.0.0.66 sends crafted requests to a real Kamailio; a UDP "media role"
written here stands in for FreeSWITCH and answers relayed INVITEs with the codes each test
chooses. Drops are proved by the Kamailio log line, then by the absence of any reply.
"""

from __future__ import annotations

import queue
import re
import socket
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import pytest

from harness.kazoo.release import KAZOO_4_3, KAZOO_5
from harness.lab.kamailio import LabKamailio, kamailio_available
from harness.sip.message import Request, Response, parse_message
from harness.sip.response import make_response

_SKIP_REASON = kamailio_available()
pytestmark = pytest.mark.skipif(_SKIP_REASON is not None, reason=_SKIP_REASON or "")

CARRIER_IP = "127.0.0.66"
REPLY_TIMEOUT = 5.0
# how long "no reply" is watched for once the log line proving the drop has arrived
SILENCE_WINDOW = 0.3

Plan = Sequence[tuple[int, str]]
# In a plan: stop here until the test calls MediaRole.release(). Kamailio handles replies in
# several worker processes, so a 180 and a 480 sent back to back may be processed in either
# order; a real media server has time between them, the test waits for the 180 to arrive.
HOLD = (0, "hold")


@dataclass
class MediaRole:
    """A FreeSWITCH stand-in on 127.0.0.1: answers OPTIONS 200 and each INVITE with its plan."""

    sock: socket.socket = field(default_factory=lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    plans: dict[str, Plan] = field(default_factory=dict)
    invites: queue.Queue[Request] = field(default_factory=queue.Queue)
    _seen: set[str] = field(default_factory=set)
    _held: dict[str, tuple[Request, tuple[str, int], list[tuple[int, str]]]] = field(default_factory=dict)
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> MediaRole:
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)  # lets the loop notice stop() within 0.1 s
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        return self

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.sock.getsockname()
        return str(host), int(port)

    def plan(self, call_id: str, *answers: tuple[int, str]) -> None:
        self.plans[call_id] = answers

    def invite_for(self, call_id: str, timeout: float = REPLY_TIMEOUT) -> Request:
        """The relayed INVITE with this Call-ID as the media role received it."""
        while True:
            request = self.invites.get(timeout=timeout)
            if request.call_id == call_id:
                return request

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            message = parse_message(data)
            if not isinstance(message, Request):
                continue
            if message.method == "OPTIONS":
                self.sock.sendto(make_response(message, 200, "OK").to_bytes(), peer)
            elif message.method == "CANCEL":
                self.sock.sendto(make_response(message, 200, "OK").to_bytes(), peer)
                held = self._held.pop(message.call_id, None)
                if held is not None:
                    invite_request, invite_peer, _ = held
                    terminated = make_response(invite_request, 487, "Request Terminated", to_tag="media1")
                    self.sock.sendto(terminated.to_bytes(), invite_peer)
            elif message.method == "INVITE":
                branch = message.top_via.branch or ""
                if branch in self._seen:  # a retransmission: the plan was already played
                    continue
                self._seen.add(branch)
                self.invites.put(message)
                self._play(message, peer, list(self.plans.get(message.call_id, ((200, "OK"),))))

    def _play(self, request: Request, peer: tuple[str, int], answers: list[tuple[int, str]]) -> None:
        now = answers
        if HOLD in answers:
            # stored before anything is sent: the test may release as soon as the 180 arrives
            now, later = answers[: answers.index(HOLD)], answers[answers.index(HOLD) + 1 :]
            self._held[request.call_id] = (request, peer, later)
        for code, reason in now:
            self.sock.sendto(make_response(request, code, reason, to_tag="media1").to_bytes(), peer)

    def release(self, call_id: str) -> None:
        """Send the answers planned after HOLD for this call."""
        request, peer, answers = self._held.pop(call_id)
        self._play(request, peer, answers)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self.sock.close()


class Carrier:
    """A UDP carrier on its own loopback source address."""

    def __init__(self, ip: str = CARRIER_IP) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((ip, 0))
        self.ip = ip
        self.port = int(self.sock.getsockname()[1])

    def send(self, data: bytes, target: tuple[str, int]) -> None:
        self.sock.sendto(data, target)

    def receive(self, timeout: float) -> Response | None:
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65535)
        except TimeoutError:
            return None
        message = parse_message(data)
        assert isinstance(message, Response), f"carrier received a request: {data!r}"
        return message

    def until(self, code: int, timeout: float = REPLY_TIMEOUT) -> list[Response]:
        """Responses up to and including the first with ``code``."""
        seen: list[Response] = []
        while not seen or seen[-1].code != code:
            response = self.receive(timeout)
            assert response is not None, f"no {code} within {timeout} s (got {[r.code for r in seen]})"
            seen.append(response)
        return seen

    def final_response(self, timeout: float = REPLY_TIMEOUT) -> tuple[list[Response], Response]:
        """Provisionals and the final response; fails when none comes within ``timeout``."""
        provisionals: list[Response] = []
        while True:
            response = self.receive(timeout)
            assert response is not None, (
                f"no final response within {timeout} s (got {[r.code for r in provisionals]})"
            )
            if response.code >= 200:
                return provisionals, response
            provisionals.append(response)

    def close(self) -> None:
        self.sock.close()


def new_call_id() -> str:
    return f"lab-{uuid.uuid4().hex}@{CARRIER_IP}"


def invite(
    carrier: Carrier,
    target: tuple[str, int],
    call_id: str,
    *,
    extra: Sequence[str] = (),
    drop: Sequence[str] = (),
    user_agent: str = "kazoo-harness-lab-test",
    max_forwards: str | None = "70",
    method: str = "INVITE",
) -> bytes:
    """A carrier INVITE to +14155550100; ``drop`` names headers to leave out."""
    host, port = target
    headers = [
        f"Via: SIP/2.0/UDP {carrier.ip}:{carrier.port};branch=z9hG4bK{uuid.uuid4().hex[:20]};rport",
        f"Max-Forwards: {max_forwards}" if max_forwards is not None else "",
        f"From: <sip:+14155550999@{carrier.ip}>;tag={uuid.uuid4().hex[:8]}",
        f"To: <sip:+14155550100@{host}>",
        f"Call-ID: {call_id}",
        f"CSeq: 1 {method}",
        f"Contact: <sip:+14155550999@{carrier.ip}:{carrier.port}>",
        f"User-Agent: {user_agent}",
        *extra,
        "Content-Length: 0",
    ]
    kept = [h for h in headers if h and h.split(":", 1)[0].lower() not in {d.lower() for d in drop}]
    start = f"{method} sip:+14155550100@{host}:{port} SIP/2.0"
    return ("\r\n".join([start, *kept]) + "\r\n\r\n").encode()


def assert_dropped(kamailio: LabKamailio, carrier: Carrier, log_pattern: str, mark: int) -> str:
    """The log line proving the drop appears, and the carrier gets no reply at all."""
    line = kamailio.wait_for_log(log_pattern, timeout=REPLY_TIMEOUT, since=mark)
    stray = carrier.receive(SILENCE_WINDOW)
    assert stray is None, f"expected silence, got {stray.code} {stray.reason}"
    return line


@pytest.fixture(scope="module")
def media() -> Iterator[MediaRole]:
    role = MediaRole().start()
    yield role
    role.stop()


@pytest.fixture(scope="module")
def kam43(media: MediaRole) -> Iterator[LabKamailio]:
    with LabKamailio(media=media.address, style=KAZOO_4_3) as lab:
        yield lab


@pytest.fixture(scope="module")
def kam5(media: MediaRole) -> Iterator[LabKamailio]:
    """5.x's reading: the carrier is trusted (the address table), 127.0.0.67 is not."""
    with LabKamailio(media=media.address, style=KAZOO_5, trusted=[(CARRIER_IP, 32, 0)]) as lab:
        yield lab


@pytest.fixture
def carrier() -> Iterator[Carrier]:
    c = Carrier()
    yield c
    c.close()


# --- answered locally --------------------------------------------------------------------------


def test_options_answered_rawr(kam43: LabKamailio, carrier: Carrier) -> None:
    carrier.send(invite(carrier, kam43.address, new_call_id(), method="OPTIONS"), kam43.address)
    _, final = carrier.final_response()
    assert (final.code, final.reason) == (200, "Rawr!!")


def test_missing_cseq_dropped_by_the_core_before_the_script(kam43: LabKamailio, carrier: Carrier) -> None:
    """As under Kazoo's own configuration (docs/parity.md): 5.6's core refuses it, sanity never sees it."""
    call_id = new_call_id()
    mark = kam43.log_mark()
    carrier.send(invite(carrier, kam43.address, call_id, drop=["CSeq"]), kam43.address)
    assert_dropped(
        kam43, carrier, r"ERROR: <core> .*receive_msg\(\): required headers not found in request", mark
    )
    assert not any(call_id in line for line in kam43.log_lines(mark))


def test_missing_via_dropped_by_core(kam43: LabKamailio, carrier: Carrier) -> None:
    mark = kam43.log_mark()
    carrier.send(invite(carrier, kam43.address, new_call_id(), drop=["Via"]), kam43.address)
    assert_dropped(kam43, carrier, r"ERROR: <core> .*no via found in request", mark)


def test_insane_message_gets_400_when_drop_flag_off(media: MediaRole, carrier: Carrier) -> None:
    # a CSeq naming another method is insane and, unlike a missing CSeq, can still be answered
    with LabKamailio(media=media.address, sanity_drops_request=False, style=KAZOO_4_3) as lab:
        call_id = new_call_id()
        message = invite(carrier, lab.address, call_id).replace(b"CSeq: 1 INVITE", b"CSeq: 1 BYE")
        carrier.send(message, lab.address)
        _, final = carrier.final_response()
        assert (final.code, final.reason) == (400, "CSeq method does not match request method")
        lab.wait_for_log(rf"{re.escape(call_id)}\|end\|insane message from {CARRIER_IP}", REPLY_TIMEOUT)


@pytest.mark.parametrize("value", ["0", "abc"])
def test_max_forwards_exhausted_or_garbage_gets_483(kam43: LabKamailio, carrier: Carrier, value: str) -> None:
    call_id = new_call_id()
    mark = kam43.log_mark()
    carrier.send(invite(carrier, kam43.address, call_id, max_forwards=value), kam43.address)
    _, final = carrier.final_response()
    assert final.code == 483
    kam43.wait_for_log(
        rf"{re.escape(call_id)}\|end\|too much hops, not enough barley from {CARRIER_IP}:{carrier.port}",
        REPLY_TIMEOUT,
        since=mark,
    )


@pytest.mark.parametrize(("sent", "relayed"), [(None, 10), ("70", 50), ("20", 19)])
def test_max_forwards_inserted_or_clamped(
    kam43: LabKamailio, media: MediaRole, carrier: Carrier, sent: str | None, relayed: int
) -> None:
    call_id = new_call_id()
    carrier.send(invite(carrier, kam43.address, call_id, max_forwards=sent), kam43.address)
    assert media.invite_for(call_id).max_forwards == relayed
    carrier.final_response()


def test_a_late_second_to_header_is_insane(kam43: LabKamailio, carrier: Carrier) -> None:
    """A second To after Call-ID and CSeq passes the core's parse of the four required headers; sanity
    then parses every header and fails (the catalog's second-to, right after the first To, is refused
    by the core itself: the model does both, as Kazoo's configuration does)."""
    call_id = new_call_id()
    mark = kam43.log_mark()
    extra = [f"To: <sip:other@{kam43.listen_ip}>"]
    carrier.send(invite(carrier, kam43.address, call_id, extra=extra), kam43.address)
    assert_dropped(kam43, carrier, rf"{re.escape(call_id)}\|end\|dropping insane message from", mark)
    assert any("duplicate To header field" in line for line in kam43.log_lines(mark))


@pytest.mark.parametrize(
    "user_agent",
    ["friendly-scanner", "sundayddr", "pplsip", "x NiceGuy x", "PortSIP VoIP SDK", "sipcli/v1.8"],
)
def test_scanner_user_agent_dropped(kam43: LabKamailio, carrier: Carrier, user_agent: str) -> None:
    call_id = new_call_id()
    mark = kam43.log_mark()
    carrier.send(invite(carrier, kam43.address, call_id, user_agent=user_agent), kam43.address)
    line = assert_dropped(kam43, carrier, r"dropping message with user-agent", mark)
    assert (
        f"{call_id}|end|dropping message with user-agent {user_agent} from {CARRIER_IP}:{carrier.port}"
        in line
    )


def test_scanner_name_only_equal_match_for_friendly_scanner(
    kam43: LabKamailio, media: MediaRole, carrier: Carrier
) -> None:
    # "friendly-scanner" is matched for equality, so a longer agent string passes
    call_id = new_call_id()
    carrier.send(invite(carrier, kam43.address, call_id, user_agent="friendly-scanner-2"), kam43.address)
    _, final = carrier.final_response()
    assert final.code == 200


def test_initial_invite_with_route_refused(kam43: LabKamailio, carrier: Carrier) -> None:
    call_id = new_call_id()
    mark = kam43.log_mark()
    extra = ["Route: <sip:127.0.0.99;lr>"]
    carrier.send(invite(carrier, kam43.address, call_id, extra=extra), kam43.address)
    _, final = carrier.final_response()
    assert (final.code, final.reason) == (403, "No pre-loaded routes")
    kam43.wait_for_log(rf"{re.escape(call_id)}\|end\|dropping initial request with route-set", 2.0, mark)


def test_garbage_logged_by_core(kam43: LabKamailio, carrier: Carrier) -> None:
    mark = kam43.log_mark()
    # a first line without spaces is no request line (three tokens would pass as non-SIP)
    carrier.send(b"thisisjustgarbagebytes-no-spaces\r\n\r\n", kam43.address)
    line = assert_dropped(kam43, carrier, r"core parsing of SIP message failed", mark)
    assert f"({CARRIER_IP}:{carrier.port}/1)" in line and "ERROR" in line


# --- relayed to the media role -----------------------------------------------------------------


def test_invite_relayed_with_auth_headers(kam43: LabKamailio, media: MediaRole, carrier: Carrier) -> None:
    call_id = new_call_id()
    media.plan(call_id, (180, "Ringing"), HOLD, (200, "OK"))
    extra = ["X-Foo: bar", "X-AUTH-IP: 127.9.9.9", "x-lower: 1"]
    carrier.send(invite(carrier, kam43.address, call_id, extra=extra), kam43.address)
    provisionals = carrier.until(180)
    assert [(r.code, r.reason) for r in provisionals] == [
        (100, "Attempting to connect your call"),
        (180, "Ringing"),
    ]
    media.release(call_id)
    _, final = carrier.final_response()
    assert final.code == 200
    relayed = media.invite_for(call_id)
    assert relayed.values("X-AUTH-IP") == [CARRIER_IP]
    assert relayed.values("X-AUTH-PORT") == [str(carrier.port)]
    assert not relayed.has("X-Foo") and not relayed.has("x-lower")


@pytest.mark.parametrize(
    ("plan", "expected", "log"),
    [
        pytest.param(
            [(407, "Proxy Authentication Required")],
            (407, "Proxy Authentication Required"),
            r"log\|media .* challenged the invite, creating redirect",
            id="407-relayed",
        ),
        pytest.param([(401, "Unauthorized")], (401, "Unauthorized"), None, id="401-relayed"),
        pytest.param([(486, "Busy Here")], (486, "Busy Here"), None, id="486-relayed"),
        pytest.param(
            [(403, "Forbidden")],
            (403, "Forbidden"),
            rf"failure\|Failed auth from IP {CARRIER_IP}$",
            id="403-relayed",
        ),
        pytest.param([(402, "Payment Required")], (486, "Insufficient Funds"), None, id="402-to-486"),
        pytest.param(
            [(686, "PICNIC")], (486, "PICNIC"), r"failure\|sending 686 reply as 486 PICNIC", id="686-to-486"
        ),
        pytest.param([(604, "Nope Nope Nope")], (604, "Nope Nope Nope"), None, id="604-kept"),
        pytest.param([(420, "Bad Extension")], (486, "Unable to Comply"), None, id="420-to-486"),
        pytest.param([(503, "Service Unavailable")], (486, "Unable to Comply"), None, id="503-to-486"),
        pytest.param(
            [(180, "Ringing"), HOLD, (480, "Temporarily Unavailable")],
            (603, "Endpoint Not Available"),
            None,
            id="480-after-180-to-603",
        ),
        pytest.param(
            [(183, "Session Progress"), HOLD, (486, "Number busy")],
            (486, "Number busy"),
            None,
            id="486-after-183-relayed",
        ),
    ],
)
def test_failure_rewrites_kazoo43(
    kam43: LabKamailio,
    media: MediaRole,
    carrier: Carrier,
    plan: Plan,
    expected: tuple[int, str],
    log: str | None,
) -> None:
    call_id = new_call_id()
    media.plan(call_id, *plan)
    mark = kam43.log_mark()
    carrier.send(invite(carrier, kam43.address, call_id), kam43.address)
    if HOLD in plan:
        carrier.until(plan[plan.index(HOLD) - 1][0])
        media.release(call_id)
    _, final = carrier.final_response()
    assert (final.code, final.reason) == expected
    if log is not None:
        kam43.wait_for_log(re.escape(call_id) + r"\|" + log, REPLY_TIMEOUT, since=mark)


def test_cancel_after_ringing_relayed(kam43: LabKamailio, media: MediaRole, carrier: Carrier) -> None:
    call_id = new_call_id()
    media.plan(call_id, (180, "Ringing"), HOLD, (200, "OK"))
    request = invite(carrier, kam43.address, call_id)
    carrier.send(request, kam43.address)
    carrier.until(180)
    first_lines = request.split(b"\r\n\r\n")[0].split(b"\r\n")
    keep = (b"Via:", b"From:", b"To:", b"Call-ID:", b"Max-Forwards:")
    cancel = [b"CANCEL" + first_lines[0][len(b"INVITE") :]]
    cancel += [line for line in first_lines[1:] if line.startswith(keep)]
    cancel += [b"CSeq: 1 CANCEL", b"Content-Length: 0"]
    carrier.send(b"\r\n".join(cancel) + b"\r\n\r\n", kam43.address)
    wanted = {("CANCEL", 200), ("INVITE", 487)}
    seen: set[tuple[str, int]] = set()
    while not wanted <= seen:  # the two may arrive in either order
        response = carrier.receive(REPLY_TIMEOUT)
        assert response is not None, f"expected {wanted}, got only {seen}"
        seen.add((response.cseq.method, response.code))


def test_604_becomes_unable_to_comply_for_kazoo5(
    kam5: LabKamailio, media: MediaRole, carrier: Carrier
) -> None:
    call_id = new_call_id()
    media.plan(call_id, (604, "Nope Nope Nope"))
    carrier.send(invite(carrier, kam5.address, call_id), kam5.address)
    _, final = carrier.final_response()
    assert (final.code, final.reason) == (486, "Unable to Comply")


def test_kazoo5_log_format(kam5: LabKamailio, carrier: Carrier) -> None:
    """5.x's xlog prefix: |<call-id>|<file>:<line> (<route>) text (the lab's own file and routes)."""
    call_id = new_call_id()
    mark = kam5.log_mark()
    message = invite(carrier, kam5.address, call_id).replace(b"CSeq: 1 INVITE", b"CSeq: 1 BYE")
    carrier.send(message, kam5.address)
    line = assert_dropped(kam5, carrier, r"dropping insane message", mark)
    assert re.search(
        rf"WARNING: \|{re.escape(call_id)}\|\S*kamailio\.cfg:\d+ \(sanity_check\) end - dropping insane "
        rf"message from {CARRIER_IP}:{carrier.port}$",
        line,
    ), line
    assert "<script>" not in line


def test_kazoo5_drops_qnq_but_43_does_not(kam5: LabKamailio, kam43: LabKamailio, carrier: Carrier) -> None:
    mark = kam5.log_mark()
    carrier.send(invite(carrier, kam5.address, new_call_id(), user_agent="QNQ"), kam5.address)
    assert_dropped(kam5, carrier, r"dropping message with user-agent QNQ", mark)
    carrier.send(invite(carrier, kam43.address, new_call_id(), user_agent="QNQ"), kam43.address)
    _, final = carrier.final_response()
    assert final.code == 200


def test_kazoo5_challenges_an_untrusted_invite_itself(kam5: LabKamailio, media: MediaRole) -> None:
    stranger = Carrier("127.0.0.67")
    try:
        call_id = new_call_id()
        mark = kam5.log_mark()
        stranger.send(invite(stranger, kam5.address, call_id), kam5.address)
        _, final = stranger.final_response()
        assert final.code == 407 and final.proxy_authenticate is not None
        kam5.wait_for_log(
            rf"\|{re.escape(call_id)}\|.* challenging INVITE from \S+ \(sip:\S+\) 127\.0\.0\.67:", 2.0, mark
        )
        assert all(r.call_id != call_id for r in list(media.invites.queue))  # FreeSWITCH never sees it
    finally:
        stranger.close()


def test_kazoo5_relays_an_initial_invite_without_its_route_set(kam5: LabKamailio, carrier: Carrier) -> None:
    call_id = new_call_id()
    carrier.send(invite(carrier, kam5.address, call_id, extra=["Route: <sip:127.0.0.99;lr>"]), kam5.address)
    _, final = carrier.final_response()
    assert final.code == 200


def test_no_media_server_gets_480(carrier: Carrier) -> None:
    with LabKamailio(media=None, style=KAZOO_4_3) as lab:
        call_id = new_call_id()
        carrier.send(invite(carrier, lab.address, call_id), lab.address)
        _, final = carrier.final_response()
        assert (final.code, final.reason) == (480, "All servers busy")
        lab.wait_for_log(rf"{re.escape(call_id)}\|end\|no servers available in primary or backup group", 2.0)


# --- TCP framing -------------------------------------------------------------------------------


def _tcp_to(lab: LabKamailio) -> socket.socket:
    sock = socket.create_connection(lab.address, timeout=REPLY_TIMEOUT, source_address=(CARRIER_IP, 0))
    return sock


def _assert_closed_by_peer(sock: socket.socket) -> None:
    sock.settimeout(REPLY_TIMEOUT)
    try:
        data = sock.recv(65535)
    except ConnectionResetError:
        return
    assert data == b"", f"expected the connection closed, got {data[:80]!r}"


def test_tcp_without_content_length_closed(kam43: LabKamailio) -> None:
    mark = kam43.log_mark()
    with _tcp_to(kam43) as sock:
        carrier = Carrier()
        message = invite(carrier, kam43.address, new_call_id(), drop=["Content-Length"])
        carrier.close()
        sock.sendall(message.replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP"))
        _assert_closed_by_peer(sock)
    # Kamailio 5.6's stream reader flags the missing length while reading the headers
    # (TCP_REQ_BAD_LEN = 4) and logs this line, not "content length not present or unparsable"
    kam43.wait_for_log(r"tcp_read_req\(\): bad request, state=\d+, error=4", REPLY_TIMEOUT, since=mark)


def test_tcp_message_over_80000_bytes_closed(kam43: LabKamailio) -> None:
    mark = kam43.log_mark()
    with _tcp_to(kam43) as sock:
        carrier = Carrier()
        body = b"v=0\r\n" + b"a=x-pad:" + b"x" * 81_000 + b"\r\n"
        head = invite(carrier, kam43.address, new_call_id(), drop=["Content-Length"])
        carrier.close()
        head = head[:-2].replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP")
        head += b"Content-Type: application/sdp\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
        try:
            sock.sendall(head + body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # Kamailio may close before everything is written: that is the behaviour under test
        _assert_closed_by_peer(sock)
    kam43.wait_for_log(r"buffer overrun, dropping", REPLY_TIMEOUT, since=mark)


@pytest.mark.slow
def test_dead_media_server_probed_out_gets_480(carrier: Carrier) -> None:
    # a bound socket that never answers: the keepalive OPTIONS time out (tm fr_timer 2 s)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as dead:
        dead.bind(("127.0.0.1", 0))
        with LabKamailio(media=dead.getsockname(), style=KAZOO_4_3) as lab:
            lab.wait_for_log(r"media server sip:127\.0\.0\.1:\d+ is down", timeout=10.0)
            call_id = new_call_id()
            carrier.send(invite(carrier, lab.address, call_id), lab.address)
            _, final = carrier.final_response()
            assert (final.code, final.reason) == (480, "All servers busy")


def test_bye_outside_dialog_refused(kam43: LabKamailio, carrier: Carrier) -> None:
    carrier.send(invite(carrier, kam43.address, new_call_id(), method="BYE"), kam43.address)
    _, final = carrier.final_response()
    assert (final.code, final.reason) == (403, "Dialog does not exist")


@pytest.mark.slow
def test_silent_media_server_gets_486_after_no_response_timer(
    kam43: LabKamailio, media: MediaRole, carrier: Carrier
) -> None:
    call_id = new_call_id()
    media.plan(call_id)  # the media role receives the INVITE and never answers
    carrier.send(invite(carrier, kam43.address, call_id), kam43.address)
    _, final = carrier.final_response(timeout=10.0)
    assert (final.code, final.reason) == (486, "Unable to Comply")


def test_tcp_message_under_80000_bytes_accepted(kam43: LabKamailio) -> None:
    # the other side of the limit: a 75,000-byte OPTIONS is read whole and answered
    with _tcp_to(kam43) as sock:
        carrier = Carrier()
        head = invite(carrier, kam43.address, new_call_id(), method="OPTIONS", drop=["Content-Length"])
        carrier.close()
        head = head[:-2].replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP")
        body = b"x" * (75_000 - len(head) - 60)
        head += b"Content-Type: text/plain\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
        assert 74_000 < len(head + body) < 80_000
        sock.sendall(head + body)
        reply = sock.recv(65535)
    assert reply.startswith(b"SIP/2.0 200 Rawr!!"), reply[:80]
