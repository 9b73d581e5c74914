"""Captured legs of one call: roles of addresses, what ties a captured message to the call, leg
expectations decided as early as the evidence allows, and parity with the carrier's own wire."""

from __future__ import annotations

import asyncio
import time

import pytest

from harness.hep import HepPacket
from harness.kazoo.siptrace import core_reads
from harness.logs.hep_source import HepLine, hep_line
from harness.logs.hub import LogHub
from harness.logs.legs import LegExpectation, LegVerdict, Roles, check_legs, legs_of, parity
from harness.net.exchange import Exchange, WireEvent

CARRIER = ("127.0.0.10", 5070)
SBC = ("127.0.0.1", 5060)
MEDIA = ("127.0.0.1", 11000)
ROLES = Roles(CARRIER, frozenset({SBC}), frozenset({MEDIA}))
T0 = 1_700_000_000.0


def sip(first: str, call_id: str = "c1@x", *extra: str) -> bytes:
    head = [
        first,
        "Via: SIP/2.0/UDP 127.0.0.10:5070;branch=z9hG4bK1",
        f"Call-ID: {call_id}",
        "CSeq: 1 INVITE",
    ]
    return ("\r\n".join([*head, *extra, "Content-Length: 0", "", ""])).encode()


INVITE = sip("INVITE sip:+14155550100@127.0.0.1 SIP/2.0")
RELAYED = sip(
    "INVITE sip:+14155550100@127.0.0.1 SIP/2.0", "c1@x", "X-AUTH-IP: 127.0.0.10", "X-AUTH-PORT: 5070"
)
TRYING = sip("SIP/2.0 100 Trying")
CHALLENGE = sip("SIP/2.0 407 Proxy Authentication Required")


def line(
    data: bytes, src: tuple[str, int], dst: tuple[str, int], at: float, *, source: str = "cap"
) -> HepLine:
    seconds = int(at)
    packet = HepPacket(3, payload=data, src=src, dst=dst, ip_protocol=17, protocol_type=1, capture_id=1,
                       seconds=seconds, microseconds=int((at - seconds) * 1e6))  # fmt: skip
    return hep_line(source, packet, ("127.0.0.1", 9), at)


def exchange(*events: tuple[str, bytes]) -> Exchange:
    ex = Exchange("c1@x", "INVITE", "udp", CARRIER, SBC, T0)
    for i, (direction, data) in enumerate(events):
        src, dst = (CARRIER, SBC) if direction == "sent" else (SBC, CARRIER)
        ex.events.append(WireEvent(direction, i * 0.001, T0 + i * 0.001, src, dst, "udp", data))  # type: ignore[arg-type]
    return ex


def test_roles_by_exact_address_then_by_the_carriers_ip() -> None:
    assert [ROLES.of(a) for a in (CARRIER, SBC, MEDIA, None)] == ["carrier", "sbc", "media", "other"]
    assert ROLES.of(("127.0.0.10", 40000)) == "carrier"  # a TCP carrier seen from another port
    assert ROLES.of(("127.0.0.1", 40000)) == "other"  # the SBC's IP on another port is not the carrier
    same_ip = Roles(("127.0.0.1", 5555), frozenset({SBC}), frozenset({MEDIA}))
    assert same_ip.of(("127.0.0.1", 5555)) == "carrier" and same_ip.of(("127.0.0.1", 6)) == "other"


def test_what_ties_a_captured_message_to_the_call() -> None:
    renamed = sip(
        "INVITE sip:x@127.0.0.1 SIP/2.0", "fs-b-leg@x", "X-AUTH-IP: 127.0.0.10", "X-AUTH-PORT: 5070"
    )
    lines = [
        line(INVITE, CARRIER, SBC, T0),
        line(renamed, SBC, MEDIA, T0 + 0.001),  # a leg the media server renamed, found by X-AUTH-IP
        line(sip("SIP/2.0 200 OK", "fs-b-leg@x"), MEDIA, SBC, T0 + 0.002),  # then by that Call-ID
        line(b"garbage\r\n\r\n", CARRIER, SBC, T0 + 0.003),  # no Call-ID: by the carrier's address
        line(sip("OPTIONS sip:127.0.0.1 SIP/2.0", "ping@x"), SBC, MEDIA, T0 + 0.004),  # not this call
        line(
            sip("INVITE sip:x SIP/2.0", "other@x", "X-AUTH-IP: 127.0.0.66"), SBC, MEDIA, T0
        ),  # another carrier
    ]
    legs = legs_of(lines, exchange(), ROLES)
    assert [(leg.hop, leg.reason, leg.kind) for leg in legs] == [
        ("carrier->sbc", "call-id", "INVITE"),
        ("sbc->media", "x-auth-ip", "INVITE"),
        ("media->sbc", "x-auth-ip", "200"),
        ("carrier->sbc", "carrier address", "?"),
    ]


@pytest.mark.parametrize(
    ("expectation", "hit"),
    [
        (LegExpectation(src="sbc", dst="media", message="INVITE"), True),
        (LegExpectation(src="sbc", dst="media", message="invite"), True),
        (LegExpectation(src="media", message="INVITE"), False),
        (LegExpectation(message="4xx"), False),
        (LegExpectation(headers=(("X-AUTH-IP", r"^127\.0\.0\.10$"),)), True),
        (LegExpectation(headers=(("X-AUTH-IP", r"^127\.0\.0\.66$"),)), False),
        (LegExpectation(headers=(("X-Missing", ".*"),)), False),
        (LegExpectation(source="cap", capture_id=1), True),
        (LegExpectation(capture_id=2), False),
        (LegExpectation(source="other-cap"), False),
    ],
)
def test_a_leg_expectation_matches(expectation: LegExpectation, hit: bool) -> None:
    [leg] = legs_of([line(RELAYED, SBC, MEDIA, T0)], exchange(), ROLES)
    assert expectation.matches(leg) is hit


def test_codes_and_classes_and_descriptions() -> None:
    [leg] = legs_of([line(CHALLENGE, MEDIA, SBC, T0)], exchange(), ROLES)
    assert LegExpectation(message="407").matches(leg) and LegExpectation(message="4xx").matches(leg)
    assert not LegExpectation(message="5xx").matches(leg)
    assert LegExpectation(src="media", message="407").describe() == "at least once: media -> any 407"
    assert (
        LegExpectation(src="sbc", dst="media", present=False).describe() == "never: sbc -> media any message"
    )
    assert "exactly 2x" in LegExpectation(count=2).describe()
    with pytest.raises(ValueError, match="unknown role 'proxy'"):
        LegExpectation(src="proxy")


async def _check(
    lines: list[HepLine],
    ex: Exchange,
    expectations: list[LegExpectation],
    *,
    parity_check: bool = False,
    window: float = 0.3,
    late: list[HepLine] | None = None,
) -> tuple[LegVerdict, float]:
    async with LogHub([]) as hub:
        for ln in lines:
            hub.add(ln)
        if late:
            asyncio.get_running_loop().call_later(0.05, lambda: [hub.add(ln) for ln in late])
        started = time.monotonic()
        verdict = await check_legs(
            hub, ex, ROLES, expectations, since=0.0, deadline=time.time() + window, sources=["cap"],
            parity_check=parity_check, core_reads=core_reads,
        )  # fmt: skip
        return verdict, time.monotonic() - started


def test_received_not_relayed_is_decided_after_a_short_quiet_window() -> None:
    ex = exchange(("sent", INVITE))
    expectations = [
        LegExpectation(src="carrier", dst="sbc"),
        LegExpectation(src="sbc", dst="media", present=False),
    ]
    verdict, took = asyncio.run(_check([line(INVITE, CARRIER, SBC, T0)], ex, expectations, parity_check=True))
    assert verdict.ok and verdict.decided_early and took < 0.25, (verdict.explain(), took)
    assert verdict.parity is not None and verdict.parity.ok


def test_a_relay_breaks_nothing_was_relayed_at_once() -> None:
    ex = exchange(("sent", INVITE))
    lines = [line(INVITE, CARRIER, SBC, T0), line(RELAYED, SBC, MEDIA, T0 + 0.001)]
    verdict, took = asyncio.run(
        _check(lines, ex, [LegExpectation(src="sbc", dst="media", present=False)], window=5)
    )
    assert not verdict.ok and verdict.decided_early and took < 1.0
    assert [e.describe() for e, _ in verdict.unexpected] == ["never: sbc -> media any message"]
    assert "FORBIDDEN never: sbc -> media" in verdict.explain()


def test_a_leg_that_arrives_late_is_still_seen_and_a_missing_one_is_reported() -> None:
    ex = exchange()
    want = [LegExpectation(src="media", dst="sbc", message="407")]
    verdict, _ = asyncio.run(_check([], ex, want, window=2.0, late=[line(CHALLENGE, MEDIA, SBC, T0)]))
    assert verdict.ok and verdict.matched[0][1][0].kind == "407"
    verdict, took = asyncio.run(_check([], ex, want, window=0.2))
    assert not verdict.ok and verdict.missing == want and took >= 0.19
    counted, _ = asyncio.run(
        _check([line(TRYING, MEDIA, SBC, T0)] * 2, ex, [LegExpectation(message="100", count=1)])
    )
    assert counted.wrong_count == [(LegExpectation(message="100", count=1), 2)]


def test_parity_missing_duplicated_foreign_and_unseen() -> None:
    ex = exchange(
        ("sent", INVITE), ("received", TRYING), ("sent", INVITE), ("sent", b"garbage garbage\r\n\r\n")
    )
    complete = [
        line(INVITE, CARRIER, SBC, T0),
        line(TRYING, SBC, CARRIER, T0),
        line(INVITE, CARRIER, SBC, T0),
    ]
    ok = parity(ex, legs_of(complete, ex, ROLES), ROLES, core_reads)
    assert ok.ok and ok.compared == 3
    assert [(e.first_line, why) for e, why in ok.unseen] == [
        ("garbage garbage", "its first line is not a SIP/2.0 request or status line (core sip_check_fline)")
    ]
    assert "not capturable" in ok.summary()
    short = parity(ex, legs_of(complete[:2], ex, ROLES), ROLES, core_reads)
    assert [e.t for e in short.missing] == [0.002]  # the retransmission is the copy not seen
    doubled = parity(ex, legs_of([*complete, complete[1]], ex, ROLES), ROLES, core_reads)
    assert doubled.duplicated == (("SIP/2.0 100 Trying", 1),)
    foreign = parity(ex, legs_of([*complete, line(CHALLENGE, SBC, CARRIER, T0)], ex, ROLES), ROLES)
    assert [leg.kind for leg in foreign.foreign] == ["407"] and not foreign.ok
    assert "captured but not on the carrier's wire" in foreign.summary()
    strict = parity(ex, legs_of(complete, ex, ROLES), ROLES)  # without the rule, garbage is missing
    assert [e.first_line for e in strict.missing] == ["garbage garbage"]


def test_a_reply_the_sbc_sent_after_the_carriers_last_read_is_late_not_foreign() -> None:
    # seen on the lab under load: one Kamailio worker relays the 487, another then sends the CANCEL's
    # 200; the carrier's UA ends at the 487 and never reads the 200
    cancel = sip("CANCEL sip:+14155550100@127.0.0.1 SIP/2.0")
    ringing, canceling = sip("SIP/2.0 180 Ringing"), sip("SIP/2.0 200 canceling")
    terminated = sip("SIP/2.0 487 Request Terminated")
    ex = exchange(("sent", INVITE), ("received", ringing), ("sent", cancel), ("received", terminated))
    captured = [
        line(INVITE, CARRIER, SBC, T0),
        line(ringing, SBC, CARRIER, T0 + 0.001),
        line(cancel, CARRIER, SBC, T0 + 0.002),
        line(terminated, SBC, CARRIER, T0 + 0.003),
        line(canceling, SBC, CARRIER, T0 + 0.004),
    ]
    after = parity(ex, legs_of(captured, ex, ROLES), ROLES)
    assert after.ok and [leg.kind for leg in after.late] == ["200"] and not after.foreign
    assert "'SIP/2.0 200 canceling' sent after the carrier stopped reading" in after.summary()
    # the same reply sent before the carrier's last read would have been on its wire: foreign
    captured[3], captured[4] = (
        line(canceling, SBC, CARRIER, T0 + 0.003),
        line(terminated, SBC, CARRIER, T0 + 0.004),
    )
    before = parity(ex, legs_of(captured, ex, ROLES), ROLES)
    assert not before.ok and [leg.kind for leg in before.foreign] == ["200"] and not before.late


def test_parity_waits_for_every_carrier_message() -> None:
    ex = exchange(("sent", INVITE), ("received", TRYING))
    verdict, _ = asyncio.run(
        _check([line(INVITE, CARRIER, SBC, T0)], ex, [], parity_check=True, window=2.0,
               late=[line(TRYING, SBC, CARRIER, T0)])
    )  # fmt: skip
    assert verdict.ok and verdict.parity is not None and verdict.parity.compared == 2
