"""Text and SVG ladder diagrams of exchange records."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from report_samples import invite, rejected_exchange, silent_exchange

from harness.net.exchange import Exchange, WireEvent
from harness.report.ladder import outcome_text, svg_ladder, text_ladder

SVG = "{http://www.w3.org/2000/svg}"


def test_text_ladder_shows_columns_times_first_lines_and_outcome() -> None:
    lines = text_ladder(rejected_exchange()).splitlines()
    assert "carrier 127.0.0.10:5060" in lines[1] and "target 127.0.0.2:5060" in lines[1]
    body = lines[2:6]
    assert "0.0 ms" in body[0] and "INVITE sip:+14155550100@127.0.0.2:5060 SIP/2.0" in body[0]
    assert body[0].rstrip().endswith("->|")
    assert "1.2 ms" in body[1] and "|<- SIP/2.0 100 Trying" in body[1]
    assert "12.3 ms" in body[2] and "404 Not Found" in body[2]
    assert "ACK sip:" in body[3] and body[3].rstrip().endswith("->|")
    assert lines[-1] == "outcome: final 404 Not Found after 12.5 ms"
    assert "silence" not in "\n".join(lines)


def test_text_ladder_of_silence_shows_retransmissions_then_silence_until_deadline() -> None:
    text = text_ladder(silent_exchange())
    assert text.count("INVITE sip:") == 3
    assert "... silence until 4000.0 ms" in text
    assert "outcome: silence: no final response after 4000.0 ms" in text
    assert "note: no line for this Call-ID in kamailio.log <&>" in text


def test_long_first_lines_are_shortened_and_strays_named() -> None:
    x = rejected_exchange()
    long_uri = "INVITE sip:" + "9" * 300 + "@127.0.0.2 SIP/2.0\r\n\r\n"
    x.events.append(WireEvent("received", 0.02, 0.0, ("127.0.0.3", 5060), x.local, "udp", long_uri.encode()))
    last = text_ladder(x).splitlines()[-2]
    assert "..." in last and len(last) < 100
    short = WireEvent("received", 0.02, 0.0, ("127.0.0.3", 5060), x.local, "udp", b"SIP/2.0 200 OK\r\n\r\n")
    x.events[-1] = short
    assert "SIP/2.0 200 OK (from 127.0.0.3:5060)" in text_ladder(x)


def test_unreachable_outcome_names_the_error() -> None:
    x = Exchange("c", "OPTIONS", "tcp", ("127.0.0.10", 40000), ("127.0.0.2", 5060), 0.0)
    x.outcome, x.error = "unreachable", "connection refused"
    assert outcome_text(x) == "unreachable: connection refused after 0.0 ms"


def test_svg_is_well_formed_and_escapes_message_text() -> None:
    x = silent_exchange()
    hostile = invite().replace(b"INVITE sip:+14155550100", b"INVITE sip:<script>&amp;\"'")
    x.events.append(WireEvent("sent", 2.0, 0.0, x.local, x.remote, "udp", hostile))
    svg = svg_ladder(x)
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    texts = ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]
    assert any("<script>&amp;\"'" in t for t in texts)
    assert any("silence until 4000.0 ms" in t for t in texts)
    assert any(t.startswith("outcome: silence") for t in texts)
    assert not list(root.iter(f"{SVG}script"))
    assert "href" not in svg and "@import" not in svg and "url(http" not in svg
    arrows = [line for line in root.iter(f"{SVG}line") if line.get("marker-end")]
    assert len(arrows) == len(x.events)


def test_svg_of_a_rejected_call_draws_responses_right_to_left() -> None:
    root = ET.fromstring(svg_ladder(rejected_exchange()))
    arrows = [line for line in root.iter(f"{SVG}line") if line.get("marker-end")]
    directions = [float(a.get("x2", 0)) > float(a.get("x1", 0)) for a in arrows]
    assert directions == [True, False, False, True]
