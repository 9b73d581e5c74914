"""The HTML report's view and page, from JSON records (no browser: tests/integration/test_report_browser.py
renders the page in Chromium)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from report_samples import WALL0, rejected_exchange, silent_exchange
from typer.testing import CliRunner

from harness.cli import app
from harness.net.exchange import WireEvent
from harness.report.html_report import render_html, write_html
from harness.report.html_view import build_view, highlight, ladder_of_record, log_rows


def record(name: str, cause: str, verdict: str, **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": name.replace(" ", "_"),
        "name": name,
        "cause": cause,
        "file": f"scenarios/{cause}/{name.replace(' ', '_')}.yaml",
        "line": 1,
        "param": None,
        "verdict": verdict,
        "reproduce": f"pytest scenarios/{cause}.yaml::{name}",
        "expected": "404",
        "got": "404 Not Found",
        "failures": [] if verdict != "failed" else ["expected final 200, got 404 Not Found\nmore detail"],
        "timings": {"duration_ms": 12.0, "started": WALL0, "exchange_ms": 12.5},
        "run": {"target": "embedded", "profile": "kazoo-4.3", "release": "kazoo-4.3", "seed": 42},
        "exchange": rejected_exchange().to_json(),
    }
    return {**base, **extra}


def test_failures_come_first_then_skips_then_passes_in_cause_order() -> None:
    records = [
        record("routed", "call_flow", "passed"),
        record("unlisted", "acl", "passed"),
        record("skipped one", "acl", "skipped"),
        record("wrong format", "number_format", "failed"),
        record("wrong acl", "acl", "failed"),
    ]
    view = build_view(records)
    order = ["wrong acl", "wrong format", "skipped one", "unlisted", "routed"]
    assert [s.name for s in view.scenarios] == order
    counts = {c.cause: (c.failed, c.passed, c.skipped) for c in view.counts}
    assert counts == {
        "acl": (1, 1, 1),
        "number_format": (1, 0, 0),
        "number_mapping": (0, 0, 0),
        "malformed": (0, 0, 0),
        "call_flow": (0, 1, 0),
    }
    assert view.totals == {"passed": 2, "failed": 2, "skipped": 1, "all": 5}
    assert (view.targets, view.profiles, view.seeds) == (("embedded",), ("kazoo-4.3",), ("42",))
    assert view.scenarios[0].location == "scenarios/acl.yaml:1"  # as the reproduce command names it
    # a failure's first line in the list; the log detail has its own section
    assert view.scenarios[0].runs[0].failures == ("expected final 200, got 404 Not Found",)


def test_records_of_several_nodes_are_one_scenario_with_a_run_per_node() -> None:
    records = [
        record("unlisted", "acl", "passed", sbc="sbc1", param="@sbc1"),
        record("unlisted", "acl", "failed", sbc="sbc2", param="@sbc2"),
    ]
    view = build_view(records)
    (scenario,) = view.scenarios
    assert scenario.name == "unlisted" and scenario.verdict == "failed"
    assert [(r.node, r.verdict) for r in scenario.runs] == [("sbc1", "passed"), ("sbc2", "failed")]
    assert view.node_counts == (("sbc1", 1, 0, 0), ("sbc2", 0, 1, 0))


def test_ladder_of_a_record_keeps_time_order_and_gives_every_address_a_lane() -> None:
    x = rejected_exchange()
    stray = b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n"
    x.events.append(WireEvent("received", 0.013, WALL0, ("127.0.0.3", 5060), x.local, "udp", stray))
    data = x.to_json()
    data["received"].reverse()  # the record lists sent and received apart: order comes from the times
    ladder = ladder_of_record(record("r", "acl", "passed", exchange=data))
    assert ladder is not None
    assert [a.first_line.split()[1] if a.first_line.startswith("SIP") else a.first_line.split()[0]
            for a in ladder.arrows] == ["INVITE", "100", "404", "ACK", "200"]  # fmt: skip
    assert ladder.lanes == ["127.0.0.10:5060", "127.0.0.2:5060", "127.0.0.3:5060"]
    assert ladder.silence_until_ms is None and ladder.drops == ()


def test_a_silent_record_has_a_tail_and_a_drop_marker_at_the_drop_lines_time() -> None:
    logs = {
        "matched": [
            {
                "pattern": "at least once in kamailio: /dropping insane message/",
                "regex": "dropping insane message",
                "source": "kamailio",
                "line": "ERROR: <script>: dropping insane message",
                "received": WALL0 + 0.25,
            }
        ],
        "related": [],
    }
    silent = record("silent", "malformed", "passed", exchange=silent_exchange().to_json(), logs=logs)
    ladder = ladder_of_record(silent)
    assert ladder is not None and ladder.silence_until_ms == 4000.0
    drop = "[kamailio] ERROR: <script>: dropping insane message"
    assert [(d.t_ms, d.text) for d in ladder.drops] == [(250.0, drop)]
    html = render_html([silent])
    assert html.count('class="drop-marker"') == 1 and html.count('class="silence"') == 1
    assert html.count('<line class="arrow"') == 3  # the INVITE and its two retransmissions


def test_highlight_marks_every_matched_span_once() -> None:
    segments = highlight("a 127.0.0.66 b 127.0.0.66 c", [r"127\.0\.0\.66", r"0\.66 b"])
    assert [(s.text, s.hit) for s in segments] == [
        ("a ", False),
        ("127.0.0.66 b", True),
        (" ", False),
        ("127.0.0.66", True),
        (" c", False),
    ]
    assert highlight("no match", ["zzz"])[0].text == "no match"


def test_log_rows_highlight_only_the_matching_source_and_add_matched_lines() -> None:
    logs = {
        "matched": [
            {"pattern": "p", "regex": "auth challenge", "source": "freeswitch", "line": "SIP auth challenge"}
        ],
        "related": [
            {"source": "kamailio", "line": "auth challenge relayed", "reason": "call-id"},
            {"source": "freeswitch", "line": "New Channel", "reason": "call-id"},
        ],
    }
    rows = log_rows(logs)
    sources = [(r.source, r.matched) for r in rows]
    assert sources == [("kamailio", False), ("freeswitch", False), ("freeswitch", True)]
    assert not any(s.hit for s in rows[0].segments)
    assert [s.text for s in rows[2].segments if s.hit] == ["auth challenge"]


def test_record_text_is_escaped_and_the_page_loads_nothing_from_outside() -> None:
    hostile = record("<script>alert(1)</script>", "acl", "failed", got="<b>407</b>")
    html = render_html([hostile])
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;407&lt;/b&gt;" in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert html.count("<script>") == 1  # the page's own, inline


def test_pcap_links_are_relative_to_the_page(tmp_path: Path) -> None:
    pcap = tmp_path / "pcaps" / "acl-unlisted.pcap"
    page = write_html([record("unlisted", "acl", "passed", pcap=str(pcap))], tmp_path / "out" / "r.html")
    assert 'href="../pcaps/acl-unlisted.pcap"' in page.read_text(encoding="utf-8")


def test_report_command_renders_a_saved_run_and_refuses_other_files(tmp_path: Path) -> None:
    saved = tmp_path / "results.json"
    saved.write_text(json.dumps([record("wrong", "acl", "failed"), record("ok", "acl", "passed")]))
    out = tmp_path / "r.html"
    result = CliRunner().invoke(app, ["report", str(saved), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "2 records, 1 failed" in result.output
    assert re.findall(r'<section class="scenario verdict-(\w+)"', out.read_text()) == ["failed", "passed"]
    saved.write_text('{"not": "records"}')
    result = CliRunner().invoke(app, ["report", str(saved), "-o", str(out)])
    assert result.exit_code == 2 and "not a list of scenario records" in result.output


def test_the_stack_s_own_legs_are_drawn_beside_the_carrier_s_ladder() -> None:
    """A record with a HEP capture (the lab, kazoo-sbc) shows the SBC's legs: received from the carrier,
    relayed to media, and what came back; a record without one shows no such section."""
    ex = rejected_exchange()
    carrier, sbc, media = f"{ex.local[0]}:{ex.local[1]}", f"{ex.remote[0]}:{ex.remote[1]}", "127.0.0.9:11000"
    legs = [
        {"src": sbc, "dst": media, "t_ms": 2.0, "first_line": "INVITE sip:+14155550100@127.0.0.9 SIP/2.0",
         "node": "sbc", "source": "hep"},
        {"src": carrier, "dst": sbc, "t_ms": 1.0, "first_line": "INVITE sip:+14155550100@127.0.0.2 SIP/2.0",
         "node": "sbc", "source": "hep"},
        {"src": media, "dst": sbc, "t_ms": 3.0, "first_line": "SIP/2.0 404 Not Found", "node": "sbc",
         "source": "hep"},
        {"src": None, "dst": None, "t_ms": 4.0, "first_line": "no addresses: not drawn", "source": "hep"},
    ]  # fmt: skip
    capture = {"legs": legs, "parity": {"summary": "2 of 2 carrier messages seen at the SBC"}}
    view = build_view(
        [record("captured", "acl", "passed", capture=capture), record("plain", "acl", "passed")]
    )
    runs = {s.name: s.runs[0] for s in view.scenarios}
    captured, plain = runs["captured"], runs["plain"]
    assert captured.stack_legs == 3 and plain.stack_svg is None and plain.stack_legs == 0
    assert captured.stack_svg is not None and captured.stack_svg.count('class="arrow"') == 3
    assert captured.stack_svg.index("INVITE sip:+14155550100@127.0.0.2") < captured.stack_svg.index(
        "INVITE sip:+14155550100@127.0.0.9"
    )  # time order, whatever order the record lists them in
    assert (
        media in captured.stack_svg and captured.capture_summary == "2 of 2 carrier messages seen at the SBC"
    )
    page = render_html([record("captured", "acl", "passed", capture=capture)])
    assert "the stack&#39;s view" in page or "the stack's view" in page
    assert 'data-legs="3"' in page
