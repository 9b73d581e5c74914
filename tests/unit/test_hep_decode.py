"""The HEP decoder on bytes it did not make: Kamailio 5.6's siptrace output (hep_samples.py) and packets
written out by hand from the specification's layout (harness/hep/spec.py); then errors with offsets,
the encoder (byte exact against Kamailio's own layout) and a fuzz that may only ever raise HepError."""

from __future__ import annotations

import gzip
import struct
import zlib

import hep_samples as kamailio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.hep import (
    HepError,
    HepPacket,
    HepStreamDecoder,
    HepTruncated,
    decode_packet,
    encode_v2,
    encode_v3,
    looks_like_hep,
)
from harness.hep.framing import HepStreamError
from harness.sip.message import Request, Response, parse_message

# -- Kamailio's own packets --------------------------------------------------------------------------


def test_kamailio_hep3_datagrams_decode() -> None:
    packets = [decode_packet(data) for data in kamailio.HEP3_UDP]
    assert {(p.version, p.family, p.ip_protocol, p.protocol_type) for p in packets} == {(3, 2, 17, 1)}
    assert {p.capture_id for p in packets} == {kamailio.CAPTURE_ID}
    invite, trying, relayed, insane = packets[2], packets[3], packets[4], packets[5]
    assert invite.src is not None and invite.src[0] == kamailio.CARRIER
    assert invite.dst is not None and invite.dst[0] == kamailio.SBC
    assert trying.src == invite.dst and trying.dst == invite.src  # the SBC's answer, from its socket
    assert relayed.src == invite.dst and relayed.dst is not None and relayed.dst != invite.src
    first = parse_message(invite.payload)
    assert isinstance(first, Request) and first.method == "INVITE"
    assert isinstance(parse_message(trying.payload), Response)
    assert parse_message(relayed.payload).get("X-AUTH-IP") == kamailio.CARRIER
    assert parse_message(insane.payload).cseq.method == "BYE"  # the dropped one is captured too
    stamps = [p.timestamp for p in packets]
    assert all(s is not None and 1.6e9 < s < 4.1e9 for s in stamps)
    assert stamps == sorted(stamps)  # type: ignore[type-var]
    assert all(p.microseconds is not None and p.microseconds < 1_000_000 for p in packets)
    assert all(not p.extra and not p.compressed for p in packets)


def test_kamailio_hep2_datagrams_decode() -> None:
    packets = [decode_packet(data) for data in kamailio.HEP2_UDP]
    assert {(p.version, p.family, p.ip_protocol, p.capture_id) for p in packets} == {(2, 2, 17, 4321)}
    assert [p.payload.split(b" ", 1)[0] for p in packets[:4]] == [
        b"OPTIONS",
        b"SIP/2.0",
        b"INVITE",
        b"SIP/2.0",
    ]
    assert packets[2].src is not None and packets[2].src[0] == kamailio.CARRIER
    stamps = [p.timestamp for p in packets]
    assert all(s is not None and 1.6e9 < s < 4.1e9 for s in stamps)
    assert stamps == sorted(stamps)  # type: ignore[type-var]
    for p in packets:
        parse_message(p.payload)  # the payload starts right after the 12-byte time header


def test_kamailio_hep3_tcp_stream_decodes_whatever_the_chunking() -> None:
    expected = HepStreamDecoder()
    as_read = [p for chunk in kamailio.HEP3_TCP_CHUNKS for p in expected.feed(chunk)]
    assert len(as_read) == 8 and expected.pending == 0
    stream = b"".join(kamailio.HEP3_TCP_CHUNKS)
    one_by_one = HepStreamDecoder()
    by_byte = [p for i in range(len(stream)) for p in one_by_one.feed(stream[i : i + 1])]
    assert by_byte == as_read
    whole = HepStreamDecoder().feed(stream)
    assert whole == as_read
    assert {p.ip_protocol for p in as_read} == {17}  # the captured messages came over UDP


def test_the_encoder_writes_kamailios_layout_byte_for_byte() -> None:
    for data in kamailio.HEP3_UDP:
        assert encode_v3(decode_packet(data)) == data
    for data in kamailio.HEP2_UDP:
        assert encode_v2(decode_packet(data)) == data


# -- packets written out by hand from the layout ------------------------------------------------------


def chunk(ctype: int, value: bytes, vendor: int = 0) -> bytes:
    return struct.pack("!HHH", vendor, ctype, 6 + len(value)) + value


def hep3(*chunks: bytes) -> bytes:
    body = b"".join(chunks)
    return b"HEP3" + struct.pack("!H", 6 + len(body)) + body


SIP = b"OPTIONS sip:a@[::1] SIP/2.0\r\nCall-ID: hand@x\r\nContent-Length: 0\r\n\r\n"


def test_a_hand_written_ipv6_packet_with_every_generic_chunk() -> None:
    src6 = bytes.fromhex("00000000000000000000000000000001")  # ::1
    dst6 = bytes.fromhex("fe800000000000000000000000000002")  # fe80::2
    data = hep3(
        chunk(0x0001, b"\x0a"),  # IPv6
        chunk(0x0002, b"\x06"),  # TCP
        chunk(0x0005, src6),
        chunk(0x0006, dst6),
        chunk(0x0007, b"\x13\xc4"),  # 5060
        chunk(0x0008, b"\x13\xc5"),  # 5061
        chunk(0x0009, b"\x65\x00\x00\x00"),  # 1694498816
        chunk(0x000A, b"\x00\x07\xa1\x20"),  # 500000 us
        chunk(0x000B, b"\x01"),  # SIP
        chunk(0x000C, b"\x00\x00\x07\xd1"),  # capture 2001
        chunk(0x000D, b"\x00\x1e"),  # keep-alive 30 s
        chunk(0x000E, b"secret"),
        chunk(0x0011, b"corr-1"),
        chunk(0x0012, b"\x00\x64"),  # VLAN 100
        chunk(0x0013, b"kam1"),
        chunk(0x0020, b"\x01\x02"),  # a generic type this decoder does not read
        chunk(0x0001, b"vendor!", vendor=0x0002),  # a Kamailio vendor chunk
        chunk(0x000F, SIP),
    )
    p = decode_packet(data)
    assert p.version == 3 and p.family == 10 and p.ip_protocol == 6 and p.transport == "tcp"
    assert p.src == ("::1", 5060) and p.dst == ("fe80::2", 5061)
    assert p.seconds == 1694498816 and p.microseconds == 500000 and p.timestamp == 1694498816.5
    assert (p.protocol_type, p.capture_id, p.keep_alive, p.vlan) == (1, 2001, 30, 100)
    assert (p.auth_key, p.correlation_id, p.node_name) == (b"secret", b"corr-1", "kam1")
    assert p.payload == SIP and p.is_sip and not p.compressed
    assert [(c.vendor, c.type, c.value) for c in p.extra] == [(0, 0x20, b"\x01\x02"), (2, 1, b"vendor!")]
    assert decode_packet(encode_v3(p)) == p


@pytest.mark.parametrize("compress", [zlib.compress, gzip.compress])
def test_a_compressed_payload_is_inflated(compress: object) -> None:
    assert callable(compress)
    p = decode_packet(hep3(chunk(0x000B, b"\x01"), chunk(0x0010, compress(SIP))))
    assert p.payload == SIP and p.compressed


def test_a_keep_alive_and_a_log_event() -> None:
    keep_alive = decode_packet(hep3(chunk(0x000C, b"\x00\x00\x00\x07"), chunk(0x000D, b"\x00\x0a")))
    assert keep_alive.keep_alive == 10 and keep_alive.payload == b"" and not keep_alive.is_sip
    log = decode_packet(hep3(chunk(0x000B, b"\x64"), chunk(0x0011, b"abc@x"), chunk(0x000F, b"hello")))
    assert log.is_log and not log.is_sip and log.correlation_id == b"abc@x"


def test_hand_written_hep_v1_ipv6_and_v2_in_network_order() -> None:
    v1 = struct.pack("!BBBBHH", 1, 40, 10, 17, 5060, 5062) + bytes(15) + b"\x01" + bytes(15) + b"\x02" + SIP
    p = decode_packet(v1)
    assert (p.version, p.src, p.dst, p.seconds, p.payload) == (1, ("::1", 5060), ("::2", 5062), None, SIP)
    # Kazoo's Erlang hep library: header length 28 counts the time header, all fields in network order
    v2 = (
        struct.pack("!BBBBHH", 2, 28, 2, 6, 5070, 5060)
        + bytes([127, 0, 0, 10, 127, 0, 0, 1])
        + struct.pack("!IIH2x", 1700000000, 123456, 7)
        + SIP
    )
    p = decode_packet(v2)
    assert (p.src, p.dst, p.ip_protocol) == (("127.0.0.10", 5070), ("127.0.0.1", 5060), 6)
    assert (p.seconds, p.microseconds, p.capture_id, p.payload) == (1700000000, 123456, 7, SIP)
    assert decode_packet(encode_v2(p, network_order=True)) == p


def test_looks_like_hep() -> None:
    assert all(looks_like_hep(d) for d in kamailio.HEP3_UDP + kamailio.HEP2_UDP)
    assert not looks_like_hep(SIP) and not looks_like_hep(b"") and not looks_like_hep(b"\x02\x10")


# -- errors name what and where ----------------------------------------------------------------------

INVITE_V3 = kamailio.HEP3_UDP[2]


@pytest.mark.parametrize(
    ("data", "what", "offset", "truncated"),
    [
        (INVITE_V3[:3], "too short for a HEP3 header", 3, True),
        (INVITE_V3[:5], "the HEP3 header is 6", 5, True),
        (INVITE_V3[:100], "declared length", 100, True),
        (INVITE_V3 + b"x", "1 bytes after the declared length", len(INVITE_V3), False),
        (b"HEP3\x00\x03", "shorter than the HEP3 header", 4, False),
        (hep3(b"\x00\x00\x00\x07\x00\x02"), "shorter than its header", 10, False),
        (hep3(chunk(7, b"\x13\xc4"))[:-1] + b"", "declared length", 13, True),
        (hep3(b"\x00\x00\x00\x0f\x00\xff" + b"x"), "runs past the packet's end", 10, False),
        (hep3(chunk(7, b"\x13\xc4\x00")), "holds 3 bytes, expected 2", 12, False),
        (hep3(chunk(7, b"\x13\xc4"), chunk(7, b"\x13\xc4")), "given twice", 14, False),
        (hep3(chunk(3, bytes(4)), chunk(5, bytes(16))), "both an IPv4 and an IPv6 src", 16, False),
        (hep3(chunk(15, b"a"), chunk(16, zlib.compress(b"a"))), "both a payload and a compressed", 13, False),
        (hep3(chunk(16, b"not zlib")), "does not inflate", 12, False),
        (hep3(chunk(16, zlib.compress(SIP)[:-4])), "cut short", 12 + len(zlib.compress(SIP)) - 4, False),
        (hep3(b"\x00"), "too few for a chunk header", 6, False),
        (b"\x02\x11\x02\x11" + bytes(40), "header length 17", 1, False),
        (b"\x01\x1c\x02\x11" + bytes(40), "which v1 has not", 1, False),
        (b"\x02\x10\x02\x11\x00\x00", "the HEP v1/v2 header is 8", 6, True),
        (b"\x02\x10\x02\x11" + bytes(8), "addresses end at byte 16", 12, True),
        (b"\x02\x10\x02\x11" + bytes(12) + bytes(5), "time header ends at byte 28", 21, True),
        (
            b"\x02\x10\x02\x11" + bytes(12) + b"\x00" * 4 + b"\xff" * 4 + bytes(4),
            "a second or more",
            20,
            False,
        ),
        (b"INVITE sip:x SIP/2.0\r\n", "not a HEP packet", 0, False),
        (b"", "too short for a HEP3 header", 0, True),
    ],
)
def test_errors_say_what_and_where(data: bytes, what: str, offset: int, truncated: bool) -> None:
    with pytest.raises(HepError) as caught:
        decode_packet(data)
    assert what in caught.value.what, caught.value
    assert caught.value.offset == offset, caught.value
    assert isinstance(caught.value, HepTruncated) is truncated
    assert f"(byte {offset})" in str(caught.value)


def test_a_stream_skips_a_bad_packet_with_a_good_length_and_stops_at_a_bad_header() -> None:
    good = kamailio.HEP3_UDP[2]
    bad = hep3(chunk(7, b"\x13"))  # a port chunk of one byte
    decoder = HepStreamDecoder()
    with pytest.raises(HepStreamError) as caught:
        decoder.feed(good + bad + good)
    assert not caught.value.fatal and len(caught.value.decoded) == 1
    assert caught.value.offset == len(good) + 12  # counted from the stream's start
    assert decoder.feed(b"") == [decode_packet(good)]  # the packet after the bad one is still there
    with pytest.raises(HepStreamError) as caught:
        decoder.feed(b"\x02\x10" + bytes(20))
    assert caught.value.fatal and "HEP v1/v2 cannot be streamed" in caught.value.what
    with pytest.raises(HepStreamError, match="already unreadable"):
        decoder.feed(good)


def test_a_stream_refuses_a_short_non_hep_start_at_once() -> None:
    with pytest.raises(HepStreamError) as caught:
        HepStreamDecoder().feed(b"HEX")
    assert caught.value.fatal and caught.value.offset == 0


# -- the encoder -------------------------------------------------------------------------------------


def test_encoder_round_trips_and_refuses_what_cannot_be_written() -> None:
    p = HepPacket(3, payload=SIP, src=("127.0.0.10", 5070), dst=("127.0.0.1", 5060), family=2, ip_protocol=17,
                  seconds=1, microseconds=2, protocol_type=1, capture_id=9, node_name="n")  # fmt: skip
    assert decode_packet(encode_v3(p)) == p
    squeezed = decode_packet(encode_v3(p, compress=True))
    assert squeezed.payload == SIP and squeezed.compressed
    with pytest.raises(HepError, match="16-bit length"):
        encode_v3(HepPacket(3, payload=b"x" * 70000))
    with pytest.raises(HepError, match="both addresses"):
        encode_v2(HepPacket(2, payload=SIP))
    with pytest.raises(HepError, match="one family"):
        encode_v2(HepPacket(2, payload=SIP, src=("::1", 1), dst=("127.0.0.1", 2)))


# -- fuzz: only ever HepError ------------------------------------------------------------------------


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    base = bytearray(draw(st.sampled_from(kamailio.HEP3_UDP + kamailio.HEP2_UDP)))
    for _ in range(draw(st.integers(1, 6))):
        action = draw(st.sampled_from(["flip", "cut", "insert"]))
        at = draw(st.integers(0, len(base)))
        if action == "flip" and at < len(base):
            base[at] = draw(st.integers(0, 255))
        elif action == "cut":
            del base[at : at + draw(st.integers(1, 40))]
        else:
            base[at:at] = draw(st.binary(min_size=1, max_size=12))
    return bytes(base)


def _decode_or_hep_error(data: bytes) -> None:
    try:
        decode_packet(data)
    except HepError:
        pass


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_kamailio_packets_raise_only_hep_error(data: bytes) -> None:
    _decode_or_hep_error(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.sampled_from([b"HEP3", b"\x02\x10", b"\x01\x28", b""]))
def test_random_bytes_raise_only_hep_error(data: bytes, prefix: bytes) -> None:
    _decode_or_hep_error(prefix + data)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=12))
def test_a_stream_of_random_chunks_raises_only_hep_error(chunks: list[bytes]) -> None:
    decoder = HepStreamDecoder()
    for data in [kamailio.HEP3_UDP[0][:9], *chunks]:
        try:
            decoder.feed(data)
        except HepError:
            pass
