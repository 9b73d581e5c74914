"""Synthesized pcap of exchange records: read back by our reader and by tshark."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from report_samples import WALL0, rejected_exchange, silent_exchange

from harness.net.exchange import Exchange
from harness.replay.capture import read_messages
from harness.report.pcap import pcap_bytes, write_pcap

needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")


def _exchanges() -> list[Exchange]:
    return [
        rejected_exchange(),
        silent_exchange(),
        rejected_exchange("tcp", call_id="tcp-1", local=("127.0.0.11", 40000)),
        rejected_exchange("tls", call_id="tls-1", local=("127.0.0.13", 40001), remote=("127.0.0.2", 5061)),
        rejected_exchange("udp", call_id="big-1", local=("127.0.0.12", 5060), body_size=3000),
    ]


def _wire_order(exchanges: list[Exchange]) -> list[bytes]:
    return [e.data for e in sorted((e for x in exchanges for e in x.events), key=lambda e: e.wall)]


def _tshark(path: Path, *fields: str, display: str = "sip", opts: tuple[str, ...] = ()) -> list[list[str]]:
    cmd = ["tshark", "-n", *opts, "-r", str(path), "-Y", display, "-T", "fields", "-E", "separator=|"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True).stdout
    return [line.split("|") for line in out.splitlines()]


def test_own_reader_gets_every_message_back_byte_exact(tmp_path: Path) -> None:
    xs = _exchanges()
    path = tmp_path / "all.pcap"
    count = write_pcap(xs, path)
    # 11 UDP messages + 2 connections x (3 handshake + 4 data segments)
    assert count == 11 + 2 * 7
    msgs = read_messages(path)
    assert [m.data for m in msgs] == _wire_order(xs)
    assert {m.transport for m in msgs} == {"udp", "tcp"}
    assert msgs[0].time == pytest.approx(WALL0, abs=1e-6)
    assert path.read_bytes() == pcap_bytes(xs)


def test_file_header_is_classic_pcap_ethernet_and_empty_capture_is_valid(tmp_path: Path) -> None:
    magic, major, minor, _, _, _, linktype = struct.unpack("<IHHiIII", pcap_bytes([])[:24])
    assert (magic, major, minor, linktype) == (0xA1B2C3D4, 2, 4, 1)
    assert write_pcap([], tmp_path / "e.pcap") == 0
    assert read_messages(tmp_path / "e.pcap") == []


def test_fragmenting_option_splits_big_datagrams_and_they_reassemble(tmp_path: Path) -> None:
    xs = [rejected_exchange("udp", call_id="big-1", body_size=3000)]
    whole = write_pcap(xs, tmp_path / "whole.pcap")
    frag = write_pcap(xs, tmp_path / "frag.pcap", mtu=1500)
    assert whole == 4 and frag == 6  # the INVITE (about 3.4 kB) becomes 3 fragments
    assert [m.data for m in read_messages(tmp_path / "frag.pcap")] == _wire_order(xs)


@needs_tshark
@pytest.mark.parametrize("mtu", [None, 1500])
def test_tshark_dissects_every_message_as_sip_with_the_right_sources(tmp_path: Path, mtu: int | None) -> None:
    xs = _exchanges()
    path = tmp_path / "t.pcap"
    write_pcap(xs, path, mtu=mtu)
    rows = _tshark(path, "ip.src", "sip.Method", "sip.Status-Code", "sip.Call-ID")
    expected = []
    for e in sorted((e for x in xs for e in x.events), key=lambda e: e.wall):
        first = e.first_line.split()
        method, code = (first[0], "") if not first[0].startswith("SIP/") else ("", first[1])
        call_id = e.parsed().call_id
        expected.append([e.src[0], method, code, call_id])
    assert rows == expected


@needs_tshark
def test_tshark_finds_checksums_good_and_tcp_streams_clean(tmp_path: Path) -> None:
    path = tmp_path / "c.pcap"
    write_pcap(_exchanges(), path, mtu=1500)
    checks = (
        "-o",
        "ip.check_checksum:TRUE",
        "-o",
        "udp.check_checksum:TRUE",
        "-o",
        "tcp.check_checksum:TRUE",
    )
    bad = _tshark(
        path,
        "frame.number",
        display="ip.checksum.status==0 || udp.checksum.status==0 || tcp.checksum.status==0",
        opts=checks,
    )
    assert bad == []
    good = _tshark(
        path, "frame.number", display="udp.checksum.status==1 || tcp.checksum.status==1", opts=checks
    )
    assert len(good) > 20
    # no lost/out-of-order/retransmission/ack-of-unseen-segment complaints on the synthesized streams
    assert _tshark(path, "frame.number", display="tcp.analysis.flags && !tcp.analysis.window_update") == []
    handshakes = _tshark(path, "tcp.srcport", display="tcp.flags.syn==1 && tcp.flags.ack==0")
    assert sorted(r[0] for r in handshakes) == ["40000", "40001"]


def _ipv6_exchanges() -> list[Exchange]:
    return [
        rejected_exchange("udp", call_id="v6-udp", local=("::1", 5060), remote=("::1", 5070)),
        rejected_exchange("tcp", call_id="v6-tcp", local=("::1", 40010), remote=("::1", 5070)),
    ]


def test_ipv6_exchanges_round_trip(tmp_path: Path) -> None:
    xs = _ipv6_exchanges()
    write_pcap(xs, tmp_path / "v6.pcap")
    msgs = read_messages(tmp_path / "v6.pcap")
    assert [m.data for m in msgs] == _wire_order(xs)
    assert msgs[0].src == ("::1", 5060)


@needs_tshark
def test_tshark_dissects_ipv6_sip(tmp_path: Path) -> None:
    write_pcap(_ipv6_exchanges(), tmp_path / "v6.pcap")
    rows = _tshark(tmp_path / "v6.pcap", "ipv6.src", "sip.Call-ID")
    assert sorted(r[1] for r in rows) == sorted(["v6-udp", "v6-tcp"] * 4)
    assert {r[0] for r in rows} == {"::1"}
