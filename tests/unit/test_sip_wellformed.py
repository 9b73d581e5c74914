"""harness.sip.wellformed: what the send gate calls malformed, judged on the bytes alone."""

from __future__ import annotations

import pytest

from harness.sip import builder
from harness.sip.mutators import apply_mutators
from harness.sip.wellformed import UDP_SIZE_LIMIT, defects


def invite(**fields: object) -> bytes:
    spec = builder.InviteSpec(
        target_host="127.0.0.1", target_port=5060, local_ip="127.0.0.10", local_port=5070,
        ruri_user="+14155550100", to_user="+14155550100", seed=3, **fields,  # type: ignore[arg-type]
    )  # fmt: skip
    return builder.build_invite(spec).to_bytes()


@pytest.mark.parametrize("fields", [{}, {"rtp_port": None}, {"transport": "tcp"}, {"codecs": ("G722",)}])
def test_what_the_builder_makes_is_well_formed(fields: dict[str, object]) -> None:
    assert defects(invite(**fields)) == ()


def test_options_are_well_formed() -> None:
    spec = builder.InviteSpec(
        target_host="127.0.0.1",
        target_port=5060,
        local_ip="127.0.0.10",
        local_port=5070,
        rtp_port=None,
        seed=3,
    )
    assert defects(builder.build_options(spec).to_bytes()) == ()


@pytest.mark.parametrize(
    ("mutator", "found"),
    [
        ("drop-header=CSeq", "no cseq header"),
        ("drop-header=Via", "no via header"),
        ("drop-header=From", "no from header"),
        ("second-to", "2 to headers"),
        ("cseq-mismatch", "CSeq method"),
        ("content-length=999", "Content-Length 999"),
        ("sip-version=SIP/7.0", "SIP version"),
        ("uri-scheme=nobodyKnowsThisScheme", "Request-URI scheme"),
        ("garbage=64", "does not parse"),
        (f"pad={UDP_SIZE_LIMIT + 100}", "over the 1300-byte limit"),
    ],
)
def test_a_breaking_mutator_leaves_a_defect_the_gate_names(mutator: str, found: str) -> None:
    problems = defects(apply_mutators(invite(), [mutator], seed=3))
    assert any(found in p for p in problems), problems


def test_well_formed_but_unwelcome_is_not_malformed() -> None:
    # an unsupported option tag or a scanner's User-Agent: proper SIP, answered by the stack on its own
    for mutator in ("require=100rel", "user-agent=scanner"):
        assert defects(apply_mutators(invite(), [mutator], seed=3)) == ()


def test_the_size_limit_is_per_transport() -> None:
    big = apply_mutators(invite(transport="tcp"), ["pad=4000"], seed=3)
    assert defects(big, "tcp") == ()
    assert defects(big, "udp") and "UDP" in defects(big, "udp")[0]
