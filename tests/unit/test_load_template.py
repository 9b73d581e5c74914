"""Pre-rendered load messages are the builder's and the mutators' bytes, with each call's ids in place."""

from __future__ import annotations

from typing import Any

from harness.load.template import build_templates
from harness.sip import builder
from harness.sip.message import Request, Response, parse_message
from harness.sip.mutators import apply_mutators
from harness.sip.response import make_response
from harness.sip.transaction import ack_for_non_2xx

FIELDS: dict[str, Any] = {
    "target_host": "127.0.0.1",
    "target_port": 5060,
    "transport": "udp",
    "local_ip": "127.0.0.10",
    "local_port": 40100,
    "rtp_port": 40102,
    "ruri_user": "+14155550199",
}
IDS = {b"cid": b"0123456789abcdef", b"br": b"00aa00000000112233445566", b"tag": b"deadbeef"}


def _scenario_ua_bytes(mutators: list[str], seed: int = 7) -> bytes:
    """What the scenario UA would send with the same ids: the builder's INVITE, then the mutators."""
    spec = builder.InviteSpec(
        **FIELDS,
        call_id="0123456789abcdef@127.0.0.10",
        branch="z9hG4bK00aa00000000112233445566",
        from_tag="deadbeef",
        seed=seed,
    )
    data = builder.build_invite(spec).to_bytes()
    return apply_mutators(data, mutators, seed=seed) if mutators else data


def test_rendered_invite_is_the_builders_bytes() -> None:
    templates = build_templates(FIELDS, [], seed=7)
    assert templates.render_invite(IDS) == _scenario_ua_bytes([])
    invite = parse_message(templates.render_invite(IDS))
    assert isinstance(invite, Request)
    assert invite.call_id == "0123456789abcdef@127.0.0.10"
    assert invite.top_via.branch == "z9hG4bK00aa00000000112233445566"


def test_byte_exact_mutators_still_apply() -> None:
    for mutators in (["pad=1400"], ["drop-header=User-Agent", "max-forwards=0"], ["truncate=300"]):
        templates = build_templates(FIELDS, mutators, seed=7)
        assert templates.render_invite(IDS) == _scenario_ua_bytes(mutators), mutators
    assert len(build_templates(FIELDS, ["pad=1400"], seed=7).render_invite(IDS)) == 1400


def test_a_mutator_that_removes_the_branch_is_reported() -> None:
    templates = build_templates(FIELDS, ["drop-header=Via"], seed=7)
    assert not templates.has_branch
    garbage = build_templates(FIELDS, ["garbage=200"], seed=7)
    assert garbage.ack is None and garbage.cancel is None  # no request to ACK or CANCEL


def test_ack_and_cancel_follow_the_scenario_uas_rules() -> None:
    templates = build_templates(FIELDS, [], seed=7)
    invite = parse_message(templates.render_invite(IDS))
    assert isinstance(invite, Request)
    final = make_response(invite, 604, "Nope Nope Nope", to_tag="sbc-tag")
    assert isinstance(final, Response)
    to = final.get("to")
    assert templates.ack is not None and templates.cancel is not None and to is not None
    assert templates.ack % {**IDS, b"to": to.encode()} == ack_for_non_2xx(invite, final)
    assert templates.cancel % IDS == builder.build_cancel(invite).to_bytes()


def test_a_literal_percent_survives_the_format() -> None:
    fields = {**FIELDS, "extra_headers": [("P-Rate", "100%")]}
    rendered = build_templates(fields, [], seed=7).render_invite(IDS)
    assert b"P-Rate: 100%\r\n" in rendered
