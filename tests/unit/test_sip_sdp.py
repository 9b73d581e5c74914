from __future__ import annotations

import pytest

from harness.sip.errors import SipParseError
from harness.sip.sdp import (
    FREESWITCH_CODECS,
    freeswitch_codecs_offered,
    has_freeswitch_codec,
    make_answer,
    make_offer,
    parse_sdp,
)


def test_default_offer_bytes() -> None:
    assert make_offer("127.0.0.10", 40000, session_id=42) == (
        b"v=0\r\n"
        b"o=kazoo-harness 42 42 IN IP4 127.0.0.10\r\n"
        b"s=kazoo-harness\r\n"
        b"c=IN IP4 127.0.0.10\r\n"
        b"t=0 0\r\n"
        b"m=audio 40000 RTP/AVP 0 8 101\r\n"
        b"a=rtpmap:0 PCMU/8000\r\n"
        b"a=rtpmap:8 PCMA/8000\r\n"
        b"a=rtpmap:101 telephone-event/8000\r\n"
        b"a=fmtp:101 0-16\r\n"
        b"a=ptime:20\r\n"
        b"a=sendrecv\r\n"
    )


def test_offer_parses_back() -> None:
    sd = parse_sdp(make_offer("127.0.0.10", 40000, ("PCMU", "opus", "iLBC", "telephone-event")))
    (audio,) = sd.media
    assert sd.address(audio) == "127.0.0.10"
    assert (audio.media, audio.port, audio.proto) == ("audio", 40000, "RTP/AVP")
    assert audio.formats == ("0", "96", "97", "101")
    assert audio.codec_names == ["PCMU", "opus", "iLBC", "telephone-event"]
    assert audio.encoding("96") == ("opus", 48000)
    assert audio.fmtp == {"101": "0-16"}


def test_offer_needs_a_codec() -> None:
    with pytest.raises(ValueError):
        make_offer("127.0.0.1", 4000, ())


def test_answer_picks_common_codecs_case_insensitively_in_offer_order() -> None:
    offer = parse_sdp(make_offer("127.0.0.10", 40000))
    answer = make_answer(offer, "127.0.0.1", 30000, {"pcma", "TELEPHONE-EVENT", "G722"}, session_id=1)
    assert answer is not None
    (audio,) = parse_sdp(answer).media
    assert audio.port == 30000
    assert audio.codec_names == ["PCMA", "telephone-event"]
    assert audio.fmtp == {"101": "0-16"}
    assert parse_sdp(answer).connection == "127.0.0.1"


def test_answer_is_none_without_a_common_codec() -> None:
    offer = parse_sdp(make_offer("127.0.0.10", 40000, ("iLBC", "telephone-event")))
    assert make_answer(offer, "127.0.0.1", 30000, {"PCMU", "telephone-event"}) is None


def test_answer_declines_other_streams_with_port_zero() -> None:
    text = make_offer("127.0.0.10", 40000) + b"m=video 40002 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n"
    answer = make_answer(parse_sdp(text), "127.0.0.1", 30000, {"PCMU"})
    assert answer is not None
    media = parse_sdp(answer).media
    assert [(m.media, m.port) for m in media] == [("audio", 30000), ("video", 0)]


def test_static_payload_without_rtpmap_and_media_level_connection() -> None:
    sd = parse_sdp(
        b"v=0\no=- 1 1 IN IP4 127.0.0.5\ns=-\nt=0 0\nm=audio 5004 RTP/AVP 18 3\nc=IN IP4 127.0.0.6\n"
    )
    (audio,) = sd.media
    assert audio.codec_names == ["G729", "GSM"]
    assert sd.connection is None
    assert sd.address(audio) == "127.0.0.6"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello",
        b"o=- 1 1 IN IP4 127.0.0.1\r\n",  # no v=0 first
        b"v=0\r\nthis is not sdp\r\n",
        b"v=0\r\nc=IN IP4\r\n",
        b"v=0\r\nm=audio notaport RTP/AVP 0\r\n",
        b"v=0\r\nm=audio 70000 RTP/AVP 0\r\n",
        b"v=0\r\nm=audio " + b"9" * 5000 + b" RTP/AVP 0\r\n",
        b"v=0\r\n\xff\xfe\r\n",
    ],
)
def test_garbage_raises_sip_parse_error(data: bytes) -> None:
    with pytest.raises(SipParseError):
        parse_sdp(data)


def test_freeswitch_codec_list_matches_kazoo_behaviour() -> None:
    assert FREESWITCH_CODECS == (
        "OPUS", "VP8", "H263", "H264", "G7221@32000h", "G7221@16000h",
        "G722", "PCMU", "PCMA", "G729", "GSM", "Speex",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("codecs", "accepted"),
    [
        (("PCMU", "PCMA", "telephone-event"), ["PCMU", "PCMA"]),
        (("iLBC", "AMR", "G726-32", "telephone-event"), []),
        (("opus",), ["opus"]),
        (("G7221",), []),  # written at 8000 Hz: FreeSWITCH has G7221 only at 16000 and 32000
        (("speex", "iLBC"), ["speex"]),
    ],
)
def test_freeswitch_codecs_offered(codecs: tuple[str, ...], accepted: list[str]) -> None:
    offer = parse_sdp(make_offer("127.0.0.1", 4000, codecs))
    assert freeswitch_codecs_offered(offer) == accepted
    assert has_freeswitch_codec(offer) is bool(accepted)


def test_g7221_at_16000_is_accepted() -> None:
    offer = parse_sdp(b"v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP 99\r\na=rtpmap:99 G7221/16000\r\n")
    assert has_freeswitch_codec(offer)
