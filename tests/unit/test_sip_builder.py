from __future__ import annotations

import re

import pytest
from faker import Faker

from harness.sip.builder import (
    SCANNER_USER_AGENTS_CONTAINED,
    SCANNER_USER_AGENTS_EXACT,
    InviteSpec,
    build_ack,
    build_bye,
    build_cancel,
    build_invite,
    build_options,
    is_scanner_user_agent,
    resolve,
)
from harness.sip.message import Request, Response
from harness.sip.response import make_response
from harness.sip.sdp import parse_sdp


def test_same_seed_gives_same_bytes_and_other_seed_differs() -> None:
    first = build_invite(InviteSpec(seed=1234)).to_bytes()
    assert build_invite(InviteSpec(seed=1234)).to_bytes() == first
    assert build_invite(InviteSpec(seed=1235)).to_bytes() != first


def test_seed_is_recorded_when_the_spec_is_made() -> None:
    spec = InviteSpec()
    assert isinstance(spec.seed, int)
    assert build_invite(spec).to_bytes() == build_invite(InviteSpec(seed=spec.seed)).to_bytes()


def test_caller_name_comes_from_seeded_faker() -> None:
    fake = Faker("en_US")
    fake.seed_instance(99)
    resolved = resolve(InviteSpec(seed=99))
    assert resolved.from_display == fake.name()
    assert resolved.from_user is not None and re.fullmatch(
        r"\+1[2-9][0-9]{2}[2-9][0-9]{6}", resolved.from_user
    )
    assert build_invite(InviteSpec(seed=99)).from_.display == resolved.from_display


def test_overriding_one_field_leaves_the_other_random_values() -> None:
    base = resolve(InviteSpec(seed=5))
    other = resolve(InviteSpec(seed=5, call_id="fixed@127.0.0.10"))
    assert other.call_id == "fixed@127.0.0.10"
    assert (other.from_tag, other.branch, other.from_user) == (base.from_tag, base.branch, base.from_user)


def test_rfc3261_defaults() -> None:
    spec = InviteSpec(
        seed=3, target_host="127.0.0.1", target_port=5060, local_ip="127.0.0.10", local_port=5070
    )
    msg = build_invite(spec)
    assert msg.method == "INVITE"
    assert msg.uri_text == "sip:+14155550100@127.0.0.1"
    assert re.fullmatch(
        r"SIP/2\.0/UDP 127\.0\.0\.10:5070;branch=z9hG4bK[0-9a-f]+;rport", msg.get("via") or ""
    )
    assert msg.max_forwards == 70
    assert msg.from_.tag and msg.from_.uri.host == "127.0.0.10"
    assert msg.to.tag is None
    assert (msg.to.uri.user, msg.to.uri.host) == ("+14155550100", "127.0.0.1")
    assert re.fullmatch(r"[0-9a-f]+@127\.0\.0\.10", msg.call_id)
    assert (msg.cseq.number, msg.cseq.method) == (1, "INVITE")
    contact = msg.contact
    assert contact is not None and (contact.uri.host, contact.uri.port) == ("127.0.0.10", 5070)
    assert msg.user_agent == "kazoo-harness/0.1"
    assert msg.get("allow") == "INVITE, ACK, CANCEL, BYE, OPTIONS"
    assert msg.content_type == "application/sdp"
    assert msg.content_length == len(msg.body) > 0
    (audio,) = parse_sdp(msg.body).media
    assert audio.codec_names == ["PCMU", "PCMA", "telephone-event"]
    assert (parse_sdp(msg.body).connection, audio.port) == ("127.0.0.10", 40000)


def test_only_loopback_addresses_in_the_message() -> None:
    data = build_invite(InviteSpec(seed=8)).to_bytes().decode()
    addresses = re.findall(r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b", data)
    assert addresses and all(a.startswith("127.") for a in addresses)


def test_number_only_in_to_and_hosts() -> None:
    msg = build_invite(
        InviteSpec(
            seed=1,
            ruri_user="carrier-trunk",
            to_user="+14155550100",
            ruri_host="127.0.0.2",
            to_host="127.0.0.3",
        )
    )
    assert (msg.uri.user, msg.uri.host) == ("carrier-trunk", "127.0.0.2")
    assert (msg.to.uri.user, msg.to.uri.host) == ("+14155550100", "127.0.0.3")


def test_target_port_in_request_uri_when_not_5060() -> None:
    assert build_invite(InviteSpec(seed=1, target_port=11000)).uri.port == 11000


def test_caller_fields_rtp_and_tcp() -> None:
    spec = InviteSpec(
        seed=1,
        transport="tcp",
        from_user="+14155551234",
        from_display='Q "quoted" Caller',
        from_host="127.0.0.9",
        rtp_ip="127.0.0.11",
        rtp_port=30000,
        codecs=("PCMA",),
        cseq=42,
        call_id="c@127.0.0.10",
        branch="z9hG4bKfixed",
        from_tag="ft",
    )
    msg = build_invite(spec)
    assert msg.top_via.transport == "TCP" and msg.top_via.branch == "z9hG4bKfixed"
    assert (msg.from_.uri.user, msg.from_.uri.host, msg.from_.tag) == ("+14155551234", "127.0.0.9", "ft")
    assert msg.from_.display == r"Q \"quoted\" Caller"  # quotes escaped; the parser keeps the escapes
    contact = msg.contact
    assert contact is not None and contact.uri.params.get("transport") == "tcp"
    assert (msg.cseq.number, msg.call_id) == (42, "c@127.0.0.10")
    sd = parse_sdp(msg.body)
    assert (sd.connection, sd.media[0].port, sd.media[0].codec_names) == ("127.0.0.11", 30000, ["PCMA"])


def test_no_sdp_when_rtp_port_is_none() -> None:
    msg = build_invite(InviteSpec(seed=1, rtp_port=None))
    assert msg.body == b"" and msg.content_length == 0 and not msg.has("content-type")


def test_extra_and_removed_headers() -> None:
    msg = build_invite(
        InviteSpec(
            seed=1, extra_headers=[("P-Asserted-Identity", "<sip:+1@127.0.0.10>")], remove_headers=["allow"]
        )
    )
    assert msg.get("p-asserted-identity") == "<sip:+1@127.0.0.10>"
    assert not msg.has("allow")
    assert [h.name for h in msg.headers][-3:] == ["P-Asserted-Identity", "Content-Type", "Content-Length"]
    assert not build_invite(InviteSpec(seed=1, remove_headers=["v", "M"])).has("via")  # compact names too


SCANNERS = [*SCANNER_USER_AGENTS_EXACT, *SCANNER_USER_AGENTS_CONTAINED]


def test_scanner_list_is_kazoos() -> None:
    assert set(SCANNERS) == {"friendly-scanner", "sundayddr", "pplsip", "NiceGuy", "PortSIP", "sipcli", "QNQ"}


@pytest.mark.parametrize("ua", [*SCANNERS, "my PortSIP phone", "FRIENDLY-SCANNER"])
def test_scanner_user_agents_are_refused(ua: str) -> None:
    assert is_scanner_user_agent(ua)
    with pytest.raises(ValueError):
        build_invite(InviteSpec(seed=1, user_agent=ua))


def test_default_user_agent_is_not_a_scanner() -> None:
    for seed in range(20):
        ua = build_invite(InviteSpec(seed=seed)).user_agent
        assert ua == "kazoo-harness/0.1" and not is_scanner_user_agent(ua)
    assert not is_scanner_user_agent(build_options(InviteSpec(seed=1)).user_agent or "")


def test_options() -> None:
    msg = build_options(InviteSpec(seed=2, target_port=5080))
    assert (msg.method, msg.uri_text) == ("OPTIONS", "sip:127.0.0.1:5080")
    assert (msg.cseq.method, msg.content_length, msg.body) == ("OPTIONS", 0, b"")
    assert msg.get("accept") == "application/sdp"


# -- requests after the INVITE ---------------------------------------------------------------------


def _invite() -> Request:
    return build_invite(InviteSpec(seed=11, extra_headers=[("Route", "<sip:127.0.0.5;lr>")]))


def _answer(code: int) -> Response:
    return make_response(
        _invite(),
        code,
        "X",
        to_tag="totag",
        headers=[
            ("Record-Route", "<sip:127.0.0.2;lr>, <sip:127.0.0.3;lr>"),
            ("Contact", "<sip:callee@127.0.0.4:11000;transport=udp>"),
        ],
    )


def test_ack_for_non_2xx_is_the_same_transaction() -> None:
    invite, resp = _invite(), _answer(486)
    ack = build_ack(invite, resp)
    assert (ack.method, ack.uri_text) == ("ACK", invite.uri_text)
    assert ack.top_via.branch == invite.top_via.branch
    assert len(ack.vias) == 1
    assert ack.to.tag == "totag" and ack.get("from") == invite.get("from")
    assert (ack.call_id, ack.cseq.number, ack.cseq.method) == (invite.call_id, invite.cseq.number, "ACK")
    assert ack.values("route") == ["<sip:127.0.0.5;lr>"]
    assert ack.content_length == 0 and ack.max_forwards == 70


def test_ack_for_2xx_is_a_new_transaction_to_the_contact() -> None:
    invite, resp = _invite(), _answer(200)
    ack = build_ack(invite, resp, branch="z9hG4bKack")
    assert ack.uri_text == "sip:callee@127.0.0.4:11000;transport=udp"
    assert ack.top_via.branch == "z9hG4bKack"
    assert ack.values("route") == ["<sip:127.0.0.3;lr>", "<sip:127.0.0.2;lr>"]  # Record-Route reversed
    assert ack.to.tag == "totag" and ack.cseq.method == "ACK"
    random_branch = build_ack(invite, resp).top_via.branch
    assert random_branch and random_branch.startswith("z9hG4bK") and random_branch != invite.top_via.branch


def test_bye() -> None:
    invite, resp = _invite(), _answer(200)
    bye = build_bye(invite, resp, 2)
    assert (bye.method, bye.uri_text) == ("BYE", "sip:callee@127.0.0.4:11000;transport=udp")
    assert (bye.cseq.number, bye.cseq.method) == (2, "BYE")
    assert bye.from_.tag == invite.from_.tag and bye.to.tag == "totag"
    assert bye.top_via.branch != invite.top_via.branch
    assert bye.values("route") == ["<sip:127.0.0.3;lr>", "<sip:127.0.0.2;lr>"]


def test_cancel_matches_the_invite() -> None:
    invite = _invite()
    cancel = build_cancel(invite)
    assert (cancel.method, cancel.uri_text) == ("CANCEL", invite.uri_text)
    assert cancel.top_via.branch == invite.top_via.branch
    assert cancel.get("to") == invite.get("to") and cancel.get("from") == invite.get("from")
    assert (cancel.call_id, cancel.cseq.number, cancel.cseq.method) == (
        invite.call_id,
        invite.cseq.number,
        "CANCEL",
    )
    assert cancel.values("route") == invite.values("route")
