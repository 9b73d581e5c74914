"""exchange_summary: codes, timings and first lines for reports."""

from __future__ import annotations

import json

from report_samples import rejected_exchange, silent_exchange

from harness.report.json_report import exchange_summary


def test_rejected_call_summary_has_codes_timings_and_ordered_messages() -> None:
    s = exchange_summary(rejected_exchange())
    assert (s["outcome"], s["final_code"], s["provisional_codes"]) == ("response", 404, [100])
    assert (s["first_response_ms"], s["final_response_ms"], s["duration_ms"]) == (1.2, 12.3, 12.5)
    assert s["retransmissions"] == 0
    assert [m["first_line"].split()[0] for m in s["messages"]] == ["INVITE", "SIP/2.0", "SIP/2.0", "ACK"]
    assert s["messages"][1] == {
        "t_ms": 1.2,
        "direction": "received",
        "src": "127.0.0.2:5060",
        "dst": "127.0.0.10:5060",
        "first_line": "SIP/2.0 100 Trying",
        "bytes": s["messages"][1]["bytes"],
    }
    assert s["outcome_text"] == "final 404 Not Found after 12.5 ms"
    json.dumps(s)  # serializable as is


def test_silent_call_summary_counts_retransmissions_and_has_no_response_times() -> None:
    s = exchange_summary(silent_exchange())
    assert (s["final_code"], s["first_response_ms"], s["final_response_ms"]) == (None, None, None)
    assert s["retransmissions"] == 2
    assert s["outcome"] == "silence"
