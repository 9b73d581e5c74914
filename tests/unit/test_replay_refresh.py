"""refresh_invite: new identifiers and our addresses, every other byte as captured.

Some inputs carry TEST-NET addresses (192.0.2.0/24, RFC 5737) as a customer capture would; these
functions are pure and nothing here is sent anywhere.
"""

from __future__ import annotations

import pytest
from report_samples import invite, response

from harness.replay.refresh import non_loopback_addresses, refresh_invite, retarget_uri
from harness.sip.errors import SipParseError
from harness.sip.message import Request, parse_message

TARGET = ("127.0.0.2", 5070)
LOCAL = ("127.0.0.10", 5062)
CHANGED = {"call-id", "from"}


def _refresh(data: bytes, seed: int = 7, transport: str = "udp") -> Request:
    out = parse_message(refresh_invite(data, target=TARGET, local=LOCAL, transport=transport, seed=seed))
    assert isinstance(out, Request)
    return out


def test_identifiers_and_addresses_change_and_every_other_byte_stays() -> None:
    orig = parse_message(invite())
    new = _refresh(invite())
    assert new.call_id != orig.call_id and new.call_id.endswith("@127.0.0.10")
    assert new.from_.tag not in (None, "orig-tag")
    assert new.from_.display == orig.from_.display and new.from_.uri == orig.from_.uri
    assert (new.top_via.branch or "").startswith("z9hG4bK") and new.top_via.branch != orig.top_via.branch
    assert (new.top_via.host, new.top_via.port, new.top_via.transport) == ("127.0.0.10", 5062, "UDP")
    assert new.uri_text == "sip:+14155550100@127.0.0.2:5070"
    assert new.method == "INVITE" and new.start_end == orig.start_end
    assert [h.name for h in new.headers] == [h.name for h in orig.headers]
    for old_h, new_h in zip(orig.headers, new.headers, strict=True):
        if old_h.key not in CHANGED and old_h is not orig.headers[0]:
            assert new_h.raw == old_h.raw
    assert new.blank == orig.blank and new.body == orig.body
    assert b"X-Custom:   odd   spacing  \r\n" in new.to_bytes()


def test_same_seed_same_bytes_other_seed_other_identifiers() -> None:
    a, b, c = _refresh(invite(), 1), _refresh(invite(), 1), _refresh(invite(), 2)
    assert a.to_bytes() == b.to_bytes()
    assert a.call_id != c.call_id and a.from_.tag != c.from_.tag and a.top_via.branch != c.top_via.branch


def test_shared_via_line_compact_names_and_missing_tag() -> None:
    raw = (
        b"INVITE sip:+14155550100;npdi;rn=+14155550000@192.0.2.7:5060;user=phone?X-H=1 SIP/2.0\r\n"
        b"v: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK-a ,  SIP/2.0/UDP 192.0.2.8;branch=z9hG4bK-b\r\n"
        b"Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK-c\r\n"
        b"f: <sip:carrier@192.0.2.7>\r\ni: orig@192.0.2.7\r\nt: <sip:+14155550100@192.0.2.7>\r\n"
        b"CSeq: 5 INVITE\r\nl: 0\r\n\r\n"
    )
    new = _refresh(raw, transport="tcp")
    assert new.uri_text == "sip:+14155550100;npdi;rn=+14155550000@127.0.0.2:5070;user=phone?X-H=1"
    first_via = new.headers[0]
    assert first_via.name == "v"
    assert first_via.value.endswith(" ,  SIP/2.0/UDP 192.0.2.8;branch=z9hG4bK-b")
    assert first_via.value.startswith("SIP/2.0/TCP 127.0.0.10:5062;branch=z9hG4bK")
    assert new.headers[1].raw == b"Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK-c\r\n"
    assert [h.name for h in new.headers] == ["v", "Via", "f", "i", "t", "CSeq", "l"]
    assert new.from_.tag is not None
    assert (new.get("f") or "").startswith("<sip:carrier@192.0.2.7>;tag=")
    assert new.to_bytes().endswith(b"t: <sip:+14155550100@192.0.2.7>\r\nCSeq: 5 INVITE\r\nl: 0\r\n\r\n")


def test_retarget_uri_keeps_user_params_and_handles_ipv6() -> None:
    assert (
        retarget_uri("sip:alice@192.0.2.1;transport=udp", ("::1", 5060))
        == "sip:alice@[::1]:5060;transport=udp"
    )
    assert retarget_uri("sips:192.0.2.1:5061", ("127.0.0.2", 5061)) == "sips:127.0.0.2:5061"
    with pytest.raises(SipParseError):
        retarget_uri("tel:+14155550100", ("127.0.0.2", 5060))


def test_responses_are_refused() -> None:
    with pytest.raises(SipParseError):
        refresh_invite(response(invite(), 200, "OK"), target=TARGET, local=LOCAL, seed=1)


def test_non_loopback_addresses_lists_what_a_replay_would_leak() -> None:
    raw = invite().replace(
        b"Contact: <sip:+12125550123@127.0.0.10:5060>", b"Contact: <sip:x@192.0.2.44:5060>"
    )
    raw = raw.replace(b"c=IN IP4 127.0.0.10", b"c=IN IP4 192.0.2.45")
    assert non_loopback_addresses(raw) == ["192.0.2.44", "192.0.2.45"]
    assert non_loopback_addresses(invite()) == []
    assert non_loopback_addresses(b"Via: SIP/2.0/UDP [2001:db8::1]:5060\r\nc=IN IP6 ::1\r\n") == [
        "2001:db8::1"
    ]
