"""sofia siptrace dumps and pasted messages."""

from __future__ import annotations

import pytest
from report_samples import invite, response

from harness.replay.siptrace import UNKNOWN, read_raw, read_siptrace
from harness.sip.message import parse_message

SEP = "------------------------------------------------------------------------\n"


def sofia_block(
    what: str, peer: str, port: int, data: bytes, proto: str = "udp", at: str = "12:34:56.123456"
) -> str:
    """A block as sofia-sip's tport_log_msg() prints it (tport_logging.c), transliterated: each line
    indented by three spaces, CR/LF/CRLF line ends printed as LF."""
    via = "from" if what == "recv" else "to"
    out = [f"{what} {len(data)} bytes {via} {proto}/[{peer}]:{port} at {at}:\n", "   " + SEP]
    s, linelen = 0, 0
    text = data.decode()
    while s < len(text):
        n = 0
        while s + n < len(text) and text[s + n] not in "\r\n":
            n += 1
        out.append(("" if linelen > 0 else "   ") + text[s : s + n])
        s += n
        linelen += n
        if s == len(text):
            break
        linelen = 0
        out.append("\n")
        if text[s] == "\r":
            s += 1
        if s < len(text) and text[s] == "\n":
            s += 1
    out.append(("\n" if linelen > 0 else "") + "   " + SEP)
    return "".join(out)


def test_udp_blocks_give_the_exact_messages_both_directions() -> None:
    inv = invite()
    trying = response(inv, 100, "Trying")
    dump = (
        "2026-11-26 04:00:00.000000 [NOTICE] sofia.c:1 some other log line\n"
        + sofia_block("recv", "127.0.0.10", 5060, inv)
        + "\n"
        + sofia_block("send", "127.0.0.10", 5060, trying, at="12:34:56.125000")
    )
    msgs = read_siptrace(dump, local=("127.0.0.2", 5060), day=1_764_115_200.0)
    assert [m.data for m in msgs] == [inv, trying]
    assert (msgs[0].src, msgs[0].dst, msgs[0].transport) == (("127.0.0.10", 5060), ("127.0.0.2", 5060), "udp")
    assert (msgs[1].src, msgs[1].dst) == (("127.0.0.2", 5060), ("127.0.0.10", 5060))
    assert msgs[0].time == pytest.approx(1_764_115_200.0 + 12 * 3600 + 34 * 60 + 56.123456, abs=1e-6)
    assert abs(msgs[1].time - msgs[0].time - 0.001544) < 1e-6


def test_literal_dump_as_seen_in_a_freeswitch_console() -> None:
    dump = (
        "recv 177 bytes from udp/[::1]:5080 at 00:00:01.000001:\n"
        "   ------------------------------------------------------------------------\n"
        "   OPTIONS sip:[::1]:5060 SIP/2.0\n"
        "   Via: SIP/2.0/UDP [::1]:5080;branch=z9hG4bK1\n"
        "   From: <sip:a@[::1]>;tag=1\n"
        "   To: <sip:b@[::1]>\n"
        "   Call-ID: lit-1\n"
        "   CSeq: 1 OPTIONS\n"
        "   Content-Length: 0\n"
        "   \n"
        "   ------------------------------------------------------------------------\n"
    )
    [msg] = read_siptrace(dump)
    assert msg.src == ("::1", 5080) and msg.dst == UNKNOWN
    assert len(msg.data) == 177
    assert msg.data.endswith(b"Content-Length: 0\r\n\r\n")
    assert parse_message(msg.data).call_id == "lit-1"


def test_declared_size_decides_the_last_line_end() -> None:
    inv = invite()
    no_final_crlf = inv[:-2]  # the SDP's last line has no line end
    head = no_final_crlf.split(b"\r\n\r\n")[0]
    cl = f"Content-Length: {len(no_final_crlf) - len(head) - 4}".encode()
    msg = no_final_crlf.replace(b"Content-Length: " + inv.split(b"Content-Length: ")[1].split(b"\r\n")[0], cl)
    [got] = read_siptrace(sofia_block("recv", "127.0.0.10", 5060, msg))
    assert got.data == msg


def test_tcp_blocks_are_framed_across_and_within_blocks() -> None:
    inv = invite(transport="TCP")
    trying, ringing = response(inv, 100, "Trying"), response(inv, 180, "Ringing")
    cut = inv.index(b"\r\n", 60) + 2  # split at a line end, as a read may
    dump = (
        sofia_block("recv", "127.0.0.10", 40000, inv[:cut], "tcp")
        + sofia_block("recv", "127.0.0.10", 40000, inv[cut:], "tcp")
        + sofia_block("send", "127.0.0.10", 40000, trying + ringing, "tcp")
    )
    msgs = read_siptrace(dump, local=("127.0.0.2", 5060))
    assert [m.data for m in msgs] == [inv, trying, ringing]
    assert all(m.transport == "tcp" for m in msgs)


def test_block_cut_off_at_the_end_is_dropped() -> None:
    whole = sofia_block("recv", "127.0.0.10", 5060, invite("a"))
    cut = sofia_block("recv", "127.0.0.10", 5060, invite("b"))
    assert [m.data for m in read_siptrace(whole + cut[: len(cut) // 2])] == [invite("a")]


def test_read_raw_fixes_bare_lf_and_nothing_else() -> None:
    inv = invite()
    pasted = "\n\n" + inv.decode().replace("\r\n", "\n")
    got = read_raw(pasted)
    assert got.data == inv
    assert read_raw(inv).data == inv  # already CRLF: untouched
    mixed = inv.replace(b"\r\nMax-Forwards", b"\nMax-Forwards")
    assert read_raw(mixed).data == inv


def test_read_raw_keeps_a_wrong_content_length_and_adds_a_missing_blank_line() -> None:
    text = "OPTIONS sip:127.0.0.2 SIP/2.0\nCall-ID: x\nContent-Length: 99\n"
    got = read_raw(text, transport="tcp")
    assert got.data == b"OPTIONS sip:127.0.0.2 SIP/2.0\r\nCall-ID: x\r\nContent-Length: 99\r\n\r\n"
    assert got.transport == "tcp"
    assert parse_message(got.data).content_length == 99
