"""A carrier that places one real call with media through pjsua2, for audio checks (two-way, dead air).

pjsua2 allows one Endpoint per process and aborts if a Call outlives ``libDestroy()``, so the harness
never loads it in its own process: :func:`place_call` runs ``python -m harness.media.pjsua_carrier
... --json`` and parses the :class:`MediaResult` it prints. In the child, one Endpoint runs without
threads (``threadCnt=0``, ``mainThreadOnly``), pumped by ``libHandleEvents`` until a deadline, on the
null audio device, with its SIP transport *and* its RTP bound to the carrier's loopback address (else
the SDP would name the machine's external address). Packet counts come from pjmedia's stream
statistics; VAD is off so the null device's silence is really sent.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

Address = tuple[str, int]

USER_AGENT = "kazoo-harness-pjsua/0.1"  # never one of the scanner User-Agents Kamailio drops
PUMP_MS = 5  # one libHandleEvents slice: the loop re-checks its deadlines this often
HANGUP_DEADLINE = 5.0  # BYE/CANCEL to DISCONNECTED
PROCESS_MARGIN = 15.0  # start-up, teardown and the hang-up on top of the call's own deadlines


class PjsuaError(RuntimeError):
    """The pjsua2 child failed: it exited badly, printed no result, or ran past its deadline."""


@dataclass
class MediaResult:
    """What a pjsua2 call saw. Times are seconds; RTP counts are pjmedia's stream statistics."""

    final_code: int | None = None  # the INVITE's final answer (200 even when we hung up later)
    final_reason: str = ""
    answered: bool = False
    provisional_codes: list[int] = field(default_factory=list)  # 18x as pjsua reported them
    rtp_rx_packets: int = 0
    rtp_tx_packets: int = 0
    first_rtp_after: float | None = None  # from the answer to the first received RTP packet
    setup_time: float | None = None  # from makeCall to the answer
    held: float = 0.0  # how long the answered call was kept up
    cancelled: bool = False  # we ended the call before a final answer (CANCEL)
    rang_for: float | None = None  # from the first 18x to the answer, or to our CANCEL
    codec: str | None = None
    local_rtp: str | None = None  # ip:port of our RTP as the SDP offer named it
    remote_rtp: str | None = None  # where pjsua sent RTP (from the answer's SDP)
    call_id: str | None = None
    error: str | None = None

    @property
    def two_way_audio(self) -> bool:
        return self.answered and self.rtp_rx_packets > 0 and self.rtp_tx_packets > 0

    @property
    def dead_air(self) -> bool:
        """Answered, yet no RTP arrived while the call was held."""
        return self.answered and self.rtp_rx_packets == 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MediaResult:
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)


def pjsua_available() -> str | None:
    """None when the pjsua2 module (PyPI ``pjsua2-python``) can be imported, else the skip reason."""
    if importlib.util.find_spec("pjsua2") is None:
        return "pjsua2 is not installed (pip install pjsua2-python)"
    return None


def place_call(
    target: Address,
    from_ip: str,
    number: str,
    hold_seconds: float = 2.0,
    *,
    answer_timeout: float = 10.0,
    cancel_after_ringing: float | None = None,
    log_file: Path | None = None,
) -> MediaResult:
    """Call ``sip:<number>@<target>`` from ``from_ip`` in a pjsua2 child process and report its media.

    An answered call is held ``hold_seconds`` and then hung up (BYE). Without an answer the call is
    cancelled after ``answer_timeout``, or ``cancel_after_ringing`` seconds after the first 18x.
    """
    command = [
        sys.executable,
        "-m",
        "harness.media.pjsua_carrier",
        "--target",
        f"{target[0]}:{target[1]}",
        "--from-ip",
        from_ip,
        "--number",
        number,
        "--hold",
        f"{hold_seconds:g}",
        "--answer-timeout",
        f"{answer_timeout:g}",
        "--json",
    ]
    if cancel_after_ringing is not None:
        command += ["--cancel-after-ringing", f"{cancel_after_ringing:g}"]
    if log_file is not None:
        command += ["--log-file", str(log_file)]
    deadline = answer_timeout + hold_seconds + PROCESS_MARGIN
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=deadline)
    except subprocess.TimeoutExpired as exc:  # run() killed the child (by its PID) already
        raise PjsuaError(f"the pjsua2 call ran past {deadline:g} s: {' '.join(command)}") from exc
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise PjsuaError(
            f"pjsua2 child exited with rc {done.returncode}: {' '.join(command)}\n"
            f"stdout: {done.stdout[-1000:]}\nstderr: {done.stderr[-2000:]}"
        )
    return MediaResult.from_json(json.loads(lines[-1]))


# ---------------------------------------------------------------------------------------------------
# The child process: everything below imports pjsua2.


@dataclass
class _Plan:
    target: Address
    from_ip: str
    number: str
    hold: float
    answer_timeout: float
    cancel_after_ringing: float | None
    log_file: str | None


def _run_call(plan: _Plan) -> MediaResult:
    import pjsua2 as pj

    endpoint = pj.Endpoint()
    endpoint.libCreate()
    try:
        config = pj.EpConfig()
        config.uaConfig.threadCnt = 0
        config.uaConfig.mainThreadOnly = True
        config.uaConfig.userAgent = USER_AGENT
        config.medConfig.noVad = True  # send the silence: dead air must be the peer's fault
        config.logConfig.consoleLevel = 0  # stdout carries the JSON result only
        config.logConfig.level = 5 if plan.log_file else 0
        if plan.log_file:
            config.logConfig.filename = plan.log_file
        endpoint.libInit(config)
        endpoint.audDevManager().setNullDev()
        transport = pj.TransportConfig()
        transport.boundAddress = plan.from_ip
        transport.publicAddress = plan.from_ip
        transport_id = endpoint.transportCreate(pj.PJSIP_TRANSPORT_UDP, transport)
        endpoint.libStart()
        account = _account(pj, plan, transport_id)
        try:
            return _Dialer(pj, endpoint, account, plan).run()
        finally:
            account.shutdown()
            del account
    finally:
        gc.collect()  # no Call may survive into libDestroy (pjsua2 aborts with rc 134)
        endpoint.libDestroy()


def _account(pj: Any, plan: _Plan, transport_id: int) -> Any:
    config = pj.AccountConfig()
    config.idUri = f"sip:carrier@{plan.from_ip}"
    config.sipConfig.transportId = transport_id
    config.regConfig.registerOnAdd = False  # a carrier trunk: trusted by address, no registration
    media = config.mediaConfig.transportConfig
    media.boundAddress = plan.from_ip
    media.publicAddress = plan.from_ip
    media.port = 0  # any free port: several pjsua2 children may run at once
    # no NAT tricks: Contact, Via and SDP must name the loopback address the carrier is bound to
    config.natConfig.contactRewriteUse = 0
    config.natConfig.viaRewriteUse = 0
    config.natConfig.sdpNatRewriteUse = 0
    config.natConfig.iceEnabled = False
    account = pj.Account()
    account.create(config)
    return account


class _Dialer:
    """Drives one call through its states by pumping the Endpoint; keeps the only Call reference."""

    def __init__(self, pj: Any, endpoint: Any, account: Any, plan: _Plan) -> None:
        self.pj = pj
        self.endpoint = endpoint
        self.account = account
        self.plan = plan
        self.result = MediaResult()
        self.state: int | None = None
        self.started = 0.0
        self.answered_at: float | None = None
        self.first_ringing: float | None = None
        self.hung_up = False
        self._hung_up_at = 0.0

    def run(self) -> MediaResult:
        pj, plan = self.pj, self.plan
        call = _make_call_class(pj)(self.account, self)
        self.started = time.monotonic()
        host, port = plan.target
        try:
            call.makeCall(f"sip:{plan.number}@{host}:{port}", pj.CallOpParam(True))
            self._drive(call)
        except pj.Error as exc:
            self.result.error = f"pjsua2: {exc.info()}"
        finally:
            if self.state != pj.PJSIP_INV_STATE_DISCONNECTED:
                self.endpoint.hangupAllCalls()
                self._pump_until(lambda: self.state == pj.PJSIP_INV_STATE_DISCONNECTED, HANGUP_DEADLINE)
            call.dialer = None
            del call
        return self.result

    def _drive(self, call: Any) -> None:
        pj, plan, result = self.pj, self.plan, self.result
        disconnected = pj.PJSIP_INV_STATE_DISCONNECTED
        answer_deadline = self.started + plan.answer_timeout
        while self.state != disconnected:
            self.endpoint.libHandleEvents(PUMP_MS)
            now = time.monotonic()
            if self.answered_at is not None:
                self._read_stats(call, now)
                if not self.hung_up and now - self.answered_at >= plan.hold:
                    result.held = now - self.answered_at
                    self._hang_up(call)
            elif not self.hung_up:
                ringing_too_long = (
                    plan.cancel_after_ringing is not None
                    and self.first_ringing is not None
                    and now - self.first_ringing >= plan.cancel_after_ringing
                )
                if ringing_too_long or now >= answer_deadline:
                    result.cancelled = True
                    if self.first_ringing is not None:
                        result.rang_for = now - self.first_ringing
                    self._hang_up(call)
            if self.hung_up and now - self._hung_up_at >= HANGUP_DEADLINE:
                result.error = "no answer to our BYE/CANCEL"
                return

    def _hang_up(self, call: Any) -> None:
        self.hung_up = True
        self._hung_up_at = time.monotonic()
        call.hangup(self.pj.CallOpParam(True))

    def _pump_until(self, done: Any, seconds: float) -> None:
        until = time.monotonic() + seconds
        while not done() and time.monotonic() < until:
            self.endpoint.libHandleEvents(PUMP_MS)

    def _read_stats(self, call: Any, now: float) -> None:
        index = self._audio_index(call)
        if index is None:
            return
        try:
            stat = call.getStreamStat(index)
        except self.pj.Error:  # the stream is not up (yet, or any more)
            return
        result = self.result
        result.rtp_rx_packets = int(stat.rtcp.rxStat.pkt)
        result.rtp_tx_packets = int(stat.rtcp.txStat.pkt)
        if result.rtp_rx_packets and result.first_rtp_after is None and self.answered_at is not None:
            result.first_rtp_after = now - self.answered_at

    def _audio_index(self, call: Any) -> int | None:
        try:
            info = call.getInfo()  # keep it: ``info.media`` is a view into this object (SWIG)
        except self.pj.Error:
            return None
        for index, item in enumerate(info.media):
            if item.type == self.pj.PJMEDIA_TYPE_AUDIO:
                return index
        return None

    # callbacks from the Call (run inside libHandleEvents, on this thread)
    def on_state(self, call: Any) -> None:
        pj, result = self.pj, self.result
        info = call.getInfo()
        self.state = info.state
        result.call_id = info.callIdString
        now = time.monotonic()
        if info.state == pj.PJSIP_INV_STATE_EARLY and 100 < info.lastStatusCode < 200:
            if info.lastStatusCode not in result.provisional_codes:
                result.provisional_codes.append(info.lastStatusCode)
            if self.first_ringing is None:
                self.first_ringing = now
        elif info.state == pj.PJSIP_INV_STATE_CONFIRMED and self.answered_at is None:
            self.answered_at = now
            result.answered = True
            result.setup_time = now - self.started
            if self.first_ringing is not None:
                result.rang_for = now - self.first_ringing
            result.final_code, result.final_reason = info.lastStatusCode, info.lastReason
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            if self.answered_at is not None:
                self._read_stats(call, now)
            elif result.final_code is None:
                result.final_code, result.final_reason = info.lastStatusCode, info.lastReason

    def on_media(self, call: Any) -> None:
        pj = self.pj
        info = call.getInfo()
        for index, item in enumerate(info.media):
            if item.type != pj.PJMEDIA_TYPE_AUDIO or item.status != pj.PJSUA_CALL_MEDIA_ACTIVE:
                continue
            audio = call.getAudioMedia(index)
            devices = self.endpoint.audDevManager()
            devices.getCaptureDevMedia().startTransmit(audio)
            audio.startTransmit(devices.getPlaybackDevMedia())
            try:
                stream = call.getStreamInfo(index)
                self.result.codec = stream.codecName
                self.result.remote_rtp = stream.remoteRtpAddress
                transport = call.getMedTransportInfo(index)
                self.result.local_rtp = transport.localRtpName
            except pj.Error:
                pass


def _make_call_class(pj: Any) -> Any:
    class DialerCall(pj.Call):  # pjsua2 calls back into these methods
        def __init__(self, account: Any, dialer: _Dialer) -> None:
            super().__init__(account)
            self.dialer: _Dialer | None = dialer

        def onCallState(self, prm: Any) -> None:
            if self.dialer is not None:
                self.dialer.on_state(self)

        def onCallMediaState(self, prm: Any) -> None:
            if self.dialer is not None:
                self.dialer.on_media(self)

    return DialerCall


def _address(text: str) -> Address:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Place one pjsua2 call with media and report its RTP.")
    parser.add_argument("--target", type=_address, required=True, help="the SBC, HOST:PORT (loopback)")
    parser.add_argument("--from-ip", required=True, help="the carrier's loopback address to bind")
    parser.add_argument("--number", required=True, help="the Request-URI user, e.g. +14155550100")
    parser.add_argument("--hold", type=float, default=2.0, help="seconds to keep an answered call up")
    parser.add_argument("--answer-timeout", type=float, default=10.0, help="CANCEL without an answer by then")
    parser.add_argument("--cancel-after-ringing", type=float, default=None, help="CANCEL N s after an 18x")
    parser.add_argument("--log-file", default=None, help="write pjsua2's own log (level 5) here")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line")
    args = parser.parse_args(argv)
    for host in (args.target[0], args.from_ip):
        if not host.startswith("127."):
            parser.error(f"{host} is not a loopback address; this harness only ever talks to 127.0.0.0/8")
    plan = _Plan(
        args.target,
        args.from_ip,
        args.number,
        args.hold,
        args.answer_timeout,
        args.cancel_after_ringing,
        args.log_file,
    )
    result = _run_call(plan)
    if args.json:
        print(json.dumps(result.to_json()), flush=True)
    else:
        for name, value in result.to_json().items():
            print(f"{name:18} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
