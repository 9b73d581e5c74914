"""The replay command's pure parts: cause classification, address rewriting, raw templates, the
scenario file writer and source recognition."""

from __future__ import annotations

import yaml

from harness.logs.line import LogLine
from harness.net.exchange import Exchange, WireEvent
from harness.replay.capture import CapturedMessage
from harness.replay.cause import diagnose_exchange
from harness.replay.rewrite import foreign_addresses, rewrite_foreign
from harness.replay.scenario_file import scenario_yaml, template_text
from harness.replay.source import Capture, SourceError, pick_invite, read_source
from harness.sip.message import Request, Response, parse_message
from harness.sip.template import fill_template, raw_bytes, to_template

CARRIER, SBC = ("127.0.0.10", 5099), ("127.0.0.1", 5060)
SDP = b"v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"


def invite(
    ruri_user: str = "+14155550100",
    *,
    via_host: str = "127.0.0.10",
    sdp_ip: str = "127.0.0.10",
    extra: str = "",
) -> bytes:
    body = SDP.replace(b"{ip}", sdp_ip.encode())
    head = (
        f"INVITE sip:{ruri_user}@127.0.0.1:5060 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {via_host}:5099;branch=z9hG4bK-abc;rport\r\n"
        "Max-Forwards: 70\r\n"
        'From: "Carrier" <sip:+12125550123@127.0.0.10>;tag=ft-1\r\n'
        f"To: <sip:{ruri_user}@127.0.0.1:5060>\r\n"
        "Call-ID: cid-1@127.0.0.10\r\n"
        "CSeq: 1 INVITE\r\n"
        f"Contact: <sip:+12125550123@{via_host}:5099>\r\n"
        "User-Agent: Carrier SBC 1.2.3.4\r\n"
        f"{extra}"
        "Content-Type: application/sdp\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def exchange(data: bytes, response: bytes | None, *, outcome: str = "response") -> Exchange:
    req = parse_message(data)
    assert isinstance(req, Request)
    events = [WireEvent("sent", 0.0, 1000.0, CARRIER, SBC, "udp", data)]
    final = None
    if response is not None:
        events.append(WireEvent("received", 0.01, 1000.01, SBC, CARRIER, "udp", response))
        parsed = parse_message(response)
        assert isinstance(parsed, Response)
        final = parsed
    return Exchange(
        call_id=req.call_id,
        method="INVITE",
        transport="udp",
        local=CARRIER,
        remote=SBC,
        started_wall=1000.0,
        events=events,
        outcome=outcome,  # type: ignore[arg-type]
        final=final,
        dialed=req.uri.user,
    )


def resp(code: int, reason: str) -> bytes:
    head = f"SIP/2.0 {code} {reason}\r\nCall-ID: cid-1@127.0.0.10\r\nCSeq: 1 INVITE\r\n"
    return (head + "Content-Length: 0\r\n\r\n").encode()


def line(source: str, text: str) -> LogLine:
    return LogLine.make(source, text, received=1000.005)


# -- cause ------------------------------------------------------------------------------------------


def test_challenge_with_its_log_line_is_acl() -> None:
    ex = exchange(invite(), resp(407, "Proxy Authentication Required"))
    log = line(
        "freeswitch",
        "2026-11-26 04:30:53.374318 [WARNING] sofia_reg.c:1734 SIP auth challenge (INVITE) on sofia profile "
        "'sipinterface_1' for [+14155550100@127.0.0.1] from ip 127.0.0.1",
    )
    d = diagnose_exchange(ex, [log])
    assert (d.cause, d.outcome) == ("acl", "acl_rejected")
    assert d.evidence and "SIP auth challenge" in d.evidence[0]


def test_604_names_mapping_for_a_reconcilable_number_and_format_for_one_that_is_not() -> None:
    fetch = "unable to determine account for fetch-id 1234, {n}: not_found"
    ex = exchange(invite("+14155550199"), resp(604, "Nope Nope Nope"))
    assert diagnose_exchange(ex, [line("kazoo", fetch.format(n="+14155550199"))]).cause == "number_mapping"
    ex = exchange(invite("trunk-7"), resp(604, "Nope Nope Nope"))
    assert diagnose_exchange(ex, [line("kazoo", fetch.format(n="trunk-7"))]).cause == "number_format"


def test_silence_with_a_drop_line_is_malformed_and_without_logs_it_still_is() -> None:
    ex = exchange(invite(), None, outcome="silence")
    drop = line("kamailio", "cid-1@127.0.0.10|end|dropping insane message from 127.0.0.10:5099")
    assert diagnose_exchange(ex, [drop]).outcome == "dropped_insane"
    assert diagnose_exchange(exchange(invite(), resp(483, "Too Many Hops")), []).cause == "malformed"


def test_routed_is_none_and_an_unexplained_answer_is_unknown() -> None:
    assert diagnose_exchange(exchange(invite(), resp(200, "OK")), []).cause == "none"
    assert diagnose_exchange(exchange(invite(), resp(503, "Service Unavailable")), []).cause == "unknown"


def test_log_lines_that_contradict_an_outcome_rule_it_out() -> None:
    # a 604 whose logs do not hold stepswitch's line is no known outcome
    ex = exchange(invite(), resp(604, "Nope Nope Nope"))
    assert diagnose_exchange(ex, [line("kazoo", "something else entirely")]).cause == "unknown"


# -- rewrite ----------------------------------------------------------------------------------------


def test_foreign_addresses_are_found_only_where_an_element_would_send() -> None:
    data = invite(via_host="203.0.113.5", sdp_ip="198.51.100.7")
    found = {(f.where, f.host) for f in foreign_addresses(data)}
    assert found == {("Via", "203.0.113.5"), ("Contact", "203.0.113.5"), ("SDP", "198.51.100.7")}
    assert foreign_addresses(invite()) == []  # the User-Agent's "1.2.3.4" is no destination


def test_rewrite_makes_them_local_and_keeps_content_length_right() -> None:
    data = invite(via_host="203.0.113.5", sdp_ip="198.51.100.7")
    out, changed = rewrite_foreign(data, "127.0.0.10")
    assert len(changed) == 3 and foreign_addresses(out) == []
    msg = parse_message(out)
    assert msg.content_length == len(msg.body) and b"c=IN IP4 127.0.0.10\r\n" in msg.body
    assert msg.get("user-agent") == "Carrier SBC 1.2.3.4"
    assert msg.get("from") == parse_message(data).get("from")


def test_hostnames_in_contact_count_as_foreign() -> None:
    data = invite(extra="Record-Route: <sip:edge.carrier.example;lr>\r\n")
    assert [str(f) for f in foreign_addresses(data)] == ["Record-Route edge.carrier.example"]


# -- template and scenario --------------------------------------------------------------------------


def test_template_round_trips_to_the_captured_bytes() -> None:
    data = invite(extra='X-Json: {"a": 1}\r\n')
    template = to_template(data)
    for name in (
        "{target_host}:{target_port}",
        "{source_ip}:{source_port}",
        "{call_id}",
        "{branch}",
        "{from_tag}",
    ):
        assert name in template
    values = {
        "target_host": "127.0.0.1",
        "target_port": "5060",
        "source_ip": "127.0.0.10",
        "source_port": "5099",
        "call_id": "cid-1@127.0.0.10",
        "branch": "z9hG4bK-abc",
        "from_tag": "ft-1",
    }
    assert fill_template(template, values) == data
    assert fill_template(template_text(data), values) == data  # the readable LF form too


def test_raw_bytes_fill_a_run() -> None:
    template = to_template(invite("+14155550199"))
    data = raw_bytes(
        template, target=("127.0.0.1", 6000), source=("127.0.0.66", 40000), call_id="new@x", seed=3
    )
    msg = parse_message(data)
    assert isinstance(msg, Request)
    assert msg.uri_text == "sip:+14155550199@127.0.0.1:6000" and msg.call_id == "new@x"
    assert (msg.top_via.host, msg.top_via.port) == ("127.0.0.66", 40000)
    assert msg.body == parse_message(invite()).body


def test_scenario_yaml_loads_back_with_the_template_and_the_observed_answer() -> None:
    data = invite()
    ex = exchange(data, resp(604, "Nope Nope Nope"))
    captured = CapturedMessage(0.0, CARRIER, SBC, "udp", data)
    text = scenario_yaml(
        captured, ex, diagnose_exchange(ex, []), carrier={"role": "listed"}, source_name="c.pcap"
    )
    loaded = yaml.safe_load(text)
    assert loaded["cause"] == "number_mapping"
    assert loaded["expect"] == {"final": {"code": 604, "reason": "^Nope Nope Nope$"}}
    assert loaded["send"]["raw"] == template_text(data)


# -- sources ----------------------------------------------------------------------------------------


def test_sources_are_told_apart_and_several_calls_need_a_call_id() -> None:
    raw = read_source("paste.txt", invite().replace(b"\r\n", b"\n"))
    assert raw.kind == "raw" and pick_invite(raw).data == invite()
    trace_block = invite()
    text = f"recv {len(trace_block)} bytes from udp/[127.0.0.10]:5099 at 12:00:00.000001:\n"
    text += "   " + "-" * 72 + "\n"
    text += "".join("   " + ln + "\n" for ln in trace_block.decode().split("\r\n")[:-1])
    text += "   " + "-" * 72 + "\n"
    trace = read_source("fs.log", text.encode())
    assert trace.kind == "siptrace" and pick_invite(trace).data == trace_block
    second = CapturedMessage(0.0, CARRIER, SBC, "udp", invite().replace(b"cid-1@", b"cid-2@"))
    both = Capture("siptrace", "two.log", [*trace.messages, second])
    try:
        pick_invite(both)
    except SourceError as exc:
        assert "cid-1@127.0.0.10" in str(exc) and "cid-2@127.0.0.10" in str(exc)
    else:
        raise AssertionError("two calls without --call-id must be refused")
    assert pick_invite(both, "cid-2@127.0.0.10") is second


def test_a_demo_data_target_does_not_judge_strangers_by_its_own_data() -> None:
    from harness.kazoo.profile import load_profile
    from harness.replay.demo_limits import demo_cannot_judge
    from harness.targets.target import Target

    demo = Target(
        "embedded",
        "embedded",
        load_profile(),
        SBC,
        carriers={"listed": ("127.0.0.10", None), "unlisted": ("127.0.0.66", None)},
        numbers={"routed": "+14155550100", "absent": "+14155550199"},
        demo_data=True,
    )
    stranger = demo_cannot_judge("number_mapping", "6505550123", "127.0.0.10", demo)
    assert stranger is not None and "no number +16505550123" in stranger  # normalized like Kazoo does
    assert demo_cannot_judge("number_mapping", "+14155550199", "127.0.0.10", demo) is None  # its own
    assert "not 127.0.0.77" in str(demo_cannot_judge("acl", "+14155550100", "127.0.0.77", demo))
    assert demo_cannot_judge("acl", "+14155550100", "127.0.0.66", demo) is None  # its unlisted carrier
    # causes that do not depend on the data, and any target not on the demo data, are judged
    assert demo_cannot_judge("number_format", "6505550123", "127.0.0.77", demo) is None
    assert demo_cannot_judge("malformed", None, "127.0.0.77", demo) is None
    customer = Target("embedded", "embedded", load_profile(), SBC, numbers=demo.numbers)
    assert demo_cannot_judge("number_mapping", "+16505550123", "127.0.0.77", customer) is None
