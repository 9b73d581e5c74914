"""SIPp runner and pjsua2 carrier, the parts that need no process: command lines, statistics, traces."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.interop.sipp import (
    Sipp,
    SippOptions,
    SippStats,
    _proc_net_key,
    parse_message_trace,
    scenario_path,
)
from harness.media.pjsua_carrier import MediaResult, main

# Cut from a real SIPp 3.6.1 -trace_stat file (a step with failures): the header and the final row.
STATS_CSV = (
    "StartTime;CurrentTime;ElapsedTime(C);CallRate(C);TotalCallCreated;SuccessfulCall(C);FailedCall(C);"
    "FailedMaxUDPRetrans(C);FailedUnexpectedMessage(C);FailedTimeoutOnRecv(C);Retransmissions(C);\n"
    "2026-11-26\t04:31:44.000000\t1795667504.000000;2026-11-26\t04:31:52.020000\t1795667512.020000;"
    "00:00:08;37.4;300;274;26;0;18;8;12;\n"
)

TRACE = """\
----------------------------------------------- 2026-11-26 04:28:38.413167
UDP message received [731] bytes :

INVITE sip:+14155550100@127.0.0.60:38417 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.10:5060;branch=z9hG4bKa

----------------------------------------------- 2026-11-26 04:28:39.614783
UDP message sent (295 bytes):

SIP/2.0 486 Busy Here
Via: SIP/2.0/UDP 127.0.0.10:5060;branch=z9hG4bKa

----------------------------------------------- 2026-11-26 04:28:39.616561
UDP message received [334] bytes :

ACK sip:+14155550100@127.0.0.60:38417 SIP/2.0
"""


def test_stats_come_from_the_last_row_with_failure_counters(tmp_path: Path) -> None:
    path = tmp_path / "stats.csv"
    path.write_text(STATS_CSV)
    stats = SippStats.from_csv(path)
    assert (stats.created, stats.successful, stats.failed, stats.retransmissions) == (300, 274, 26, 12)
    assert stats.call_rate == pytest.approx(37.4)
    assert stats.elapsed == pytest.approx(8.02)
    assert stats.failures == {"FailedCall": 26, "FailedUnexpectedMessage": 18, "FailedTimeoutOnRecv": 8}


def test_stats_without_a_row_are_an_error(tmp_path: Path) -> None:
    path = tmp_path / "stats.csv"
    path.write_text(STATS_CSV.splitlines()[0] + "\n")
    with pytest.raises(ValueError, match="no statistics row"):
        SippStats.from_csv(path)


def test_message_trace_gives_direction_and_first_line() -> None:
    traced = parse_message_trace(TRACE)
    assert [(m.direction, m.first_line.split()[0]) for m in traced] == [
        ("received", "INVITE"),
        ("sent", "SIP/2.0"),
        ("received", "ACK"),
    ]


def test_uac_command_is_bounded_and_traced(tmp_path: Path) -> None:
    options = SippOptions(
        "uac", "127.0.0.10", 5099, remote=("127.0.0.1", 5060), service="+14155550100", calls=7, rate=2.5
    )
    command = Sipp(options, work_dir=tmp_path).command
    joined = " ".join(command[1:])
    assert command[1] == "127.0.0.1:5060"
    for expected in ("-sn uac", "-i 127.0.0.10", "-p 5099", "-m 7", "-r 2.5", "-s +14155550100", "-nostdin"):
        assert expected in joined
    assert f"-stf {tmp_path / 'stats.csv'}" in joined and "-trace_err" in command


def test_uas_command_uses_the_scenario_file_and_a_free_port(tmp_path: Path) -> None:
    options = SippOptions(
        scenario_path("uas_reject.xml"), "127.0.0.61", buff_size=4194304, trace_messages=True
    )
    sipp = Sipp(options, work_dir=tmp_path)
    assert sipp.local_port > 0 and sipp.address == ("127.0.0.61", sipp.local_port)
    assert ["-sf", str(scenario_path("uas_reject.xml"))] == sipp.command[1:3]
    assert "-trace_msg" in sipp.command and "4194304" in sipp.command


def test_missing_scenario_is_named() -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.xml"):
        scenario_path("nope.xml")


def test_proc_net_udp_key_is_little_endian_hex() -> None:
    assert _proc_net_key("127.0.0.1", 5060) == "0100007F:13C4"


def test_media_result_round_trips_and_names_dead_air() -> None:
    dead = MediaResult(final_code=200, answered=True, rtp_tx_packets=50)
    assert dead.dead_air and not dead.two_way_audio
    assert MediaResult.from_json({**dead.to_json(), "unknown_field": 1}) == dead
    live = MediaResult(final_code=200, answered=True, rtp_rx_packets=49, rtp_tx_packets=50)
    assert live.two_way_audio and not live.dead_air
    assert not MediaResult(final_code=486).dead_air


def test_pjsua_cli_refuses_non_loopback_addresses(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--target", "192.0.2.1:5060", "--from-ip", "127.0.0.10", "--number", "+14155550100"])
    assert exit_info.value.code == 2
    assert "not a loopback address" in capsys.readouterr().err
