"""Replay from Homer 7, against a local server that stands in for Homer (tests/integration/homer_standin.py:
Homer cannot run here; the stand-in follows homer-app's published API and response shapes). The client
logs in or uses an API token, finds the call, reads Homer's pcap export (every message rebuilt as UDP)
and puts each message back on the transport Homer's metadata records; the replay then names the cause.
The calls in the stand-in were captured from a real Kamailio: its recorded siptrace packets, and live
lab calls (unlisted carrier over UDP and TCP)."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from homer_standin import HomerStandIn
from typer.testing import CliRunner

from harness.cli import app
from harness.hep import decode_packet
from harness.kazoo.causes import Cause
from harness.kazoo.profile import load_profile
from harness.lab.kamailio import kamailio_available
from harness.replay.homer import HomerClient, HomerError, fetch_call, time_window
from harness.scenario.case import expand
from harness.scenario.runner import run_case_sync
from harness.targets.lab import open_lab

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
import hep_samples as kamailio  # type: ignore[import-not-found]

pytestmark = pytest.mark.slow
RECORDED = [decode_packet(d) for d in kamailio.HEP3_UDP]
INSANE_CALL = RECORDED[5].payload.split(b"Call-ID: ")[1].split(b"\r\n")[0].decode()
ROUTED_CALL = RECORDED[2].payload.split(b"Call-ID: ")[1].split(b"\r\n")[0].decode()
WHOLE_DAY = (RECORDED[0].timestamp or 0) - 3600, (RECORDED[0].timestamp or 0) + 3600


@pytest.fixture
def homer() -> Iterator[HomerStandIn]:
    standin = HomerStandIn().start()
    for packet in RECORDED:
        standin.add_hep(packet)
    yield standin
    standin.stop()


def client(homer: HomerStandIn, **credentials: str) -> HomerClient:
    return HomerClient(
        f"homer+{homer.url}", **(credentials or {"username": "admin", "password": "sipcapture"})
    )


def test_the_client_logs_in_finds_the_call_and_reads_the_export(homer: HomerStandIn) -> None:
    call = fetch_call(client(homer), ROUTED_CALL, *WHOLE_DAY)
    paths = [path for path, _, _ in homer.requests]
    assert paths == [
        "/api/v3/auth",
        "/api/v3/search/call/data",
        "/api/v3/search/call/message",
        "/api/v3/export/call/messages/pcap",
    ]
    _, headers, search = homer.requests[1]
    assert headers["Authorization"].startswith("Bearer ey")
    assert search["param"]["search"] == {
        "1_call": [{"name": "sid", "value": ROUTED_CALL, "type": "string", "hepid": 1}]
    }
    assert search["timestamp"] == {"from": int(WHOLE_DAY[0] * 1000), "to": int(WHOLE_DAY[1] * 1000)}
    assert homer.requests[3][2]["param"]["search"] == {"1_call": {"callid": [ROUTED_CALL]}}
    routed = [p for p in RECORDED if ROUTED_CALL.encode() in p.payload]
    assert [m.data for m in call.messages] == [p.payload for p in routed]  # byte for byte, in order
    assert [(m.src, m.dst) for m in call.messages] == [(p.src, p.dst) for p in routed]
    assert {m.transport for m in call.messages} == {"udp"} and len(call.notes) == 1


def test_an_api_token_is_sent_as_auth_token(homer: HomerStandIn) -> None:
    fetch_call(client(homer, token=homer.api_token), ROUTED_CALL, *WHOLE_DAY)
    assert homer.requests[0][0] == "/api/v3/search/call/data"  # no login
    assert all(h.get("Auth-Token") == homer.api_token for _, h, _ in homer.requests)


def test_the_transport_comes_back_from_the_metadata_or_is_said_unknown(homer: HomerStandIn) -> None:
    homer.rows.clear()
    tcp = [dataclasses.replace(p, ip_protocol=6) for p in RECORDED if ROUTED_CALL.encode() in p.payload]
    for packet in tcp[:-1]:
        homer.add_hep(packet)
    homer.add_hep(tcp[-1], protocol=False)
    call = fetch_call(client(homer), ROUTED_CALL, *WHOLE_DAY)
    assert [m.transport for m in call.messages] == ["tcp"] * (len(tcp) - 1) + ["udp"]
    assert any("rebuilds every message as UDP" in n and f"{len(tcp) - 1} put back" in n for n in call.notes)
    assert any("transport cannot be known for 1 message(s)" in n for n in call.notes), call.notes


@pytest.mark.parametrize(
    ("credentials", "message"),
    [
        (
            {"username": "admin", "password": "wrong"},
            "Homer answered 401 to /api/v3/auth: incorrect password",
        ),
        ({"token": "not-a-token"}, "Homer answered 401 to /api/v3/search/call/data: Login required"),
    ],
)
def test_refused_credentials_say_why(homer: HomerStandIn, credentials: dict[str, str], message: str) -> None:
    with pytest.raises(HomerError, match=message):
        fetch_call(client(homer, **credentials), ROUTED_CALL, *WHOLE_DAY)


def test_no_credentials_no_call_and_no_homer(homer: HomerStandIn) -> None:
    with pytest.raises(HomerError, match="set HOMER_TOKEN"):
        HomerClient.from_env(f"homer+{homer.url}", {})
    with pytest.raises(HomerError, match="no message with Call-ID nope@x between"):
        fetch_call(client(homer), "nope@x", *WHOLE_DAY)
    with pytest.raises(HomerError, match="no message"):  # the call is outside the window searched
        fetch_call(client(homer), ROUTED_CALL, WHOLE_DAY[1], WHOLE_DAY[1] + 60)
    with pytest.raises(HomerError, match="cannot be reached"):
        fetch_call(HomerClient("homer+http://127.0.0.1:9", token="t", timeout=2), ROUTED_CALL, *WHOLE_DAY)


def test_time_window() -> None:
    assert time_window(None, None, now=1000.0) == (1000.0 - 86400, 1000.0)
    ten = datetime(2026, 12, 1, 10, tzinfo=UTC).timestamp()
    assert time_window("2026-12-01T10:00:00Z", str(ten + 3600)) == (ten, ten + 3600)
    with pytest.raises(HomerError, match="must come before"):
        time_window("2000", "1000")
    with pytest.raises(HomerError, match="not a time"):
        time_window("yesterday", None)


def replay(homer: HomerStandIn, call_id: str, monkeypatch: pytest.MonkeyPatch, *extra: str) -> dict[str, Any]:
    monkeypatch.setenv("HOMER_USER", homer.username)
    monkeypatch.setenv("HOMER_PASSWORD", homer.password)
    result = CliRunner().invoke(app, ["replay", f"homer+{homer.url}", "--call-id", call_id, "--json", *extra])
    assert result.exit_code == 0, result.stdout
    loaded: dict[str, Any] = json.loads(result.stdout)
    return loaded


def test_replay_from_homer_names_the_cause(homer: HomerStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    start, end = (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)) for t in WHOLE_DAY)
    out = replay(homer, INSANE_CALL, monkeypatch, "--from", start, "--to", end)
    assert out["as_captured"] and out["invite"]["src"].startswith(kamailio.CARRIER)
    assert out["cause"] == Cause.MALFORMED and out["exchange"]["outcome"] == "silence"
    assert any(n.startswith(f"from Homer {homer.url}") for n in out["notes"])


def test_a_homer_source_needs_a_call_id(homer: HomerStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOMER_TOKEN", homer.api_token)
    result = CliRunner().invoke(app, ["replay", f"homer+{homer.url}"])
    assert result.exit_code == 2 and "needs --call-id" in result.output


# -- live: a lab call captured by Kamailio's siptrace, stored as Homer stores it, replayed ------------------

LAB_MISSING = kamailio_available("siptrace")


@pytest.mark.skipif(LAB_MISSING is not None, reason=f"needs Kamailio with siptrace: {LAB_MISSING}")
@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_a_lab_call_exported_by_homer_replays_to_the_acl_cause(
    homer: HomerStandIn, monkeypatch: pytest.MonkeyPatch, transport: str
) -> None:
    with open_lab(load_profile("kazoo-4.3")) as lab:
        scenario = {"name": f"homer {transport}", "cause": "acl", "description": "d",
                    "carrier": {"role": "unlisted", "transport": transport}, "send": {"number": "routed"},
                    "expect": {"outcome": "acl_rejected"}}  # fmt: skip
        [case] = expand(scenario, Path("<homer>"), 1)
        result = run_case_sync(case, lab)
    assert result.ok, result.failures
    assert result.capture is not None and result.exchange is not None
    homer.rows.clear()
    for leg in result.capture.legs:
        assert leg.line.packet is not None
        homer.add_hep(leg.line.packet)
    out = replay(homer, str(result.exchange.call_id), monkeypatch)
    assert out["invite"]["src"].startswith("127.0.0.66:") and out["invite"]["transport"] == transport
    assert out["exchange"]["transport"] == transport
    assert out["cause"] == Cause.ACL and out["outcome"] == "acl_rejected"
    if transport == "tcp":
        assert any("rebuilds every message as UDP" in n for n in out["notes"]), out["notes"]
