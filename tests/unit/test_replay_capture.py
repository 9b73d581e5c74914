"""Reading SIP messages back out of pcap / pcapng files built by hand (replay_frames)."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from replay_frames import (
    LINKTYPE_ETHERNET,
    LINKTYPE_RAW,
    LINKTYPE_SLL,
    LINKTYPE_SLL2,
    ether,
    ipv4,
    ipv4_fragments,
    ipv6,
    ipv6_fragment,
    sll,
    sll2,
    tcp,
    udp,
    write_pcap,
    write_pcapng,
)
from report_samples import invite, response

from harness.replay.capture import CapturedMessage, find_invites, read_messages

A, B = "127.0.0.10", "127.0.0.2"
UDP_P, TCP_P = 17, 6


def test_udp_invite_over_ethernet_keeps_bytes_addresses_and_time(tmp_path: Path) -> None:
    inv = invite()
    path = write_pcap(
        tmp_path / "u.pcap", LINKTYPE_ETHERNET, [ether(ipv4(A, B, UDP_P, udp(5060, 5070, inv)))]
    )
    [msg] = read_messages(path)
    assert msg == CapturedMessage(msg.time, (A, 5060), (B, 5070), "udp", inv)
    assert msg.time == pytest.approx(1_764_130_000.0)


def test_fragmented_udp_invite_is_reassembled_byte_exact_in_any_order(tmp_path: Path) -> None:
    inv = invite(body_size=4000)
    frags = ipv4_fragments(A, B, UDP_P, udp(5060, 5060, inv), 1480, ident=77)
    assert len(frags) >= 3
    frags = [frags[-1], *frags[1:-1], frags[0]]  # last fragment first, first fragment last
    noise = ipv4(A, B, UDP_P, udp(40000, 40002, b"\x80\x00rtp-ish payload"), ident=78)
    path = write_pcap(tmp_path / "f.pcap", LINKTYPE_RAW, [frags[0], noise, *frags[1:]])
    [msg] = read_messages(path)
    assert msg.data == inv
    assert msg.src == (A, 5060)


def test_incomplete_fragments_yield_nothing(tmp_path: Path) -> None:
    frags = ipv4_fragments(A, B, UDP_P, udp(5060, 5060, invite(body_size=4000)), 1480, ident=5)
    path = write_pcap(tmp_path / "f.pcap", LINKTYPE_RAW, frags[:-1])
    assert read_messages(path) == []


def _tcp_invite_frames(inv: bytes, isn: int = 1000) -> list[bytes]:
    """SYN, then the INVITE in 3 segments: the third arrives before the second, the first is repeated."""
    a, b = len(inv) // 3, 2 * len(inv) // 3
    seg = [inv[:a], inv[a:b], inv[b:]]
    seqs = [isn + 1, isn + 1 + a, isn + 1 + b]
    pkt = [ipv4(A, B, TCP_P, tcp(40000, 5060, s, d)) for s, d in zip(seqs, seg, strict=True)]
    syn = ipv4(A, B, TCP_P, tcp(40000, 5060, isn, flags=0x02))
    return [syn, pkt[0], pkt[2], pkt[0], pkt[1]]


def test_tcp_invite_split_over_three_segments_is_reassembled(tmp_path: Path) -> None:
    inv = invite(transport="TCP", body_size=600)
    path = write_pcap(tmp_path / "t.pcap", LINKTYPE_RAW, _tcp_invite_frames(inv))
    [msg] = read_messages(path)
    assert msg.data == inv
    assert (msg.src, msg.dst, msg.transport) == ((A, 40000), (B, 5060), "tcp")


def test_tcp_sequence_wraparound(tmp_path: Path) -> None:
    inv = invite(transport="TCP")
    path = write_pcap(tmp_path / "w.pcap", LINKTYPE_RAW, _tcp_invite_frames(inv, isn=0xFFFFFF00))
    assert [m.data for m in read_messages(path)] == [inv]


def test_capture_joining_mid_message_resynchronizes_on_the_next_start_line(tmp_path: Path) -> None:
    first, second = invite("cut@127.0.0.10", transport="TCP"), invite("next@127.0.0.10", transport="TCP")
    tail = first[-30:]  # no SYN seen, and the first segment starts inside a message body
    cut = 7  # the next start line straddles two segments
    frames = [
        ipv4(A, B, TCP_P, tcp(40000, 5060, 9000, tail + second[:cut])),
        ipv4(A, B, TCP_P, tcp(40000, 5060, 9000 + len(tail) + cut, second[cut:])),
    ]
    msgs = read_messages(write_pcap(tmp_path / "mid.pcap", LINKTYPE_RAW, frames))
    assert [m.data for m in msgs] == [second]


def test_two_messages_in_one_segment_and_keepalives(tmp_path: Path) -> None:
    inv = invite(transport="TCP")
    ok = response(inv, 200, "OK")
    trying = response(inv, 100, "Trying")
    frames = [
        ipv4(B, A, TCP_P, tcp(5060, 40000, 500, trying + ok[:10])),
        ipv4(B, A, TCP_P, tcp(5060, 40000, 500 + len(trying) + 10, ok[10:] + b"\r\n\r\n")),
    ]
    path = write_pcap(tmp_path / "two.pcap", LINKTYPE_RAW, frames)
    assert [m.data for m in read_messages(path)] == [trying, ok]


def test_cooked_linux_v1_and_v2_and_ipv6(tmp_path: Path) -> None:
    inv4, inv6 = invite("v4@127.0.0.10"), invite("v6@[::1]")
    for linktype, wrap in ((LINKTYPE_SLL, sll), (LINKTYPE_SLL2, sll2)):
        frames = [
            wrap(ipv4(A, B, UDP_P, udp(5060, 5060, inv4))),
            wrap(ipv6("::1", "::1", UDP_P, udp(5062, 5060, inv6))),
        ]
        msgs = read_messages(write_pcap(tmp_path / f"{linktype}.pcap", linktype, frames))
        assert [(m.src, m.data) for m in msgs] == [((A, 5060), inv4), (("::1", 5062), inv6)]


def test_bsd_loopback_link_type(tmp_path: Path) -> None:
    inv = invite()
    frame = struct.pack("<I", 2) + ipv4(A, B, UDP_P, udp(5060, 5060, inv))  # DLT_NULL, AF_INET
    assert [m.data for m in read_messages(write_pcap(tmp_path / "null.pcap", 0, [frame]))] == [inv]


def test_not_a_capture_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("INVITE sip:a@127.0.0.2 SIP/2.0\r\n")
    with pytest.raises(ValueError, match=r"x\.txt: not a pcap or pcapng file"):
        read_messages(tmp_path / "x.txt")


def test_ipv6_fragments_and_ipv6_tcp(tmp_path: Path) -> None:
    inv = invite(body_size=3000)
    dgram = udp(5060, 5060, inv)
    cut = 1448  # a multiple of 8
    frames = [
        ipv6_fragment("::1", "::1", UDP_P, dgram[cut:], ident=9, offset=cut, more=False),
        ipv6_fragment("::1", "::1", UDP_P, dgram[:cut], ident=9, offset=0, more=True),
        ipv6("::1", "::1", TCP_P, tcp(40000, 5060, 1, invite("t6", transport="TCP"))),
    ]
    msgs = read_messages(write_pcap(tmp_path / "v6.pcap", LINKTYPE_RAW, [ether(f)[14:] for f in frames]))
    assert [m.data for m in msgs] == [inv, invite("t6", transport="TCP")]
    assert msgs[1].transport == "tcp"


def test_pcapng_with_two_interfaces_of_different_link_types(tmp_path: Path) -> None:
    inv = invite("png@127.0.0.10")
    trying = response(inv, 100, "Trying")
    frames = [
        (LINKTYPE_ETHERNET, "lo", ether(ipv4(A, B, UDP_P, udp(5060, 5060, inv)))),
        (LINKTYPE_SLL2, "any", sll2(ipv4(B, A, UDP_P, udp(5060, 5060, trying)))),
    ]
    path = write_pcapng(tmp_path / "c.pcapng", frames)
    assert path.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"  # really a pcapng section header
    msgs = read_messages(path)
    assert [m.data for m in msgs] == [inv, trying]
    assert msgs[1].time > msgs[0].time


def test_find_invites_filters_by_call_id_and_drops_retransmissions(tmp_path: Path) -> None:
    one, two = invite("one@127.0.0.10"), invite("two@127.0.0.10")
    frames = [ipv4(A, B, UDP_P, udp(5060, 5060, d)) for d in (one, one, response(one, 100, "Trying"), two)]
    msgs = read_messages(write_pcap(tmp_path / "i.pcap", LINKTYPE_RAW, frames))
    assert len(msgs) == 4
    assert [m.data for m in find_invites(msgs)] == [one, two]
    assert [m.data for m in find_invites(msgs, unique=False)] == [one, one, two]
    assert [m.data for m in find_invites(msgs, "two@127.0.0.10")] == [two]


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_hand_built_capture_is_what_tshark_sees(tmp_path: Path) -> None:
    """Guards the hand-built frames themselves: tshark must find the same SIP messages."""
    inv = invite(body_size=4000)
    frags = ipv4_fragments(A, B, UDP_P, udp(5060, 5060, inv), 1480, ident=3)
    path = write_pcap(tmp_path / "x.pcap", LINKTYPE_ETHERNET, [ether(f) for f in frags])
    out = subprocess.run(
        ["tshark", "-r", str(path), "-Y", "sip", "-T", "fields", "-e", "ip.src", "-e", "sip.Method"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    assert out == [A, "INVITE"]
    assert [m.data for m in read_messages(path)] == [inv]
