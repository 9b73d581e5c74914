"""The stack's legs in the pytest plugin's output, on the lab target (its Kamailio sends every message to
the target's HEP receiver): a failing scenario's text shows the stack ladder beside the carrier's own,
the JSON record carries the legs, and --harness-pcap writes the legs as a HEP pcap that replay reads
back (the carrier's INVITE as the SBC received it); the HTML report shows the ladder and the verdict."""

from __future__ import annotations

import json
from html import unescape

import pytest

from harness.lab.kamailio import kamailio_available
from harness.replay.capture import read_messages

MISSING = kamailio_available("siptrace")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(MISSING is not None, reason=f"the lab target needs Kamailio with siptrace: {MISSING}"),
]

NEVER_ANSWERED = """\
name: challenged call claimed answered by media
cause: acl
description: An unlisted carrier is challenged; this scenario wrongly claims FreeSWITCH answered 200.
carrier: {role: unlisted}
send: {number: routed}
expect:
  outcome: acl_rejected
  capture:
    present:
      - {from: media, to: sbc, message: 200}
"""


def test_a_failing_scenario_shows_the_stacks_legs_and_writes_them_as_hep(pytester: pytest.Pytester) -> None:
    folder = pytester.mkdir("scenarios")
    (folder / "never_answered.yaml").write_text(NEVER_ANSWERED, encoding="utf-8")
    result = pytester.runpytest(
        "scenarios", "--kazoo-target", "lab", "--harness-pcap", "pcaps", "--harness-json", "out.json",
        "--html", "report.html",
    )  # fmt: skip
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*captured legs not as expected:*",
            "*MISSING  at least once: media -> sbc 200*",
            "*the stack's legs beside the carrier's (call-id *",
            "*sbc-capture*|<407 Proxy Authent*",
        ]
    )
    # escaped by the plugin, then again by pytest-html into the JSON blob its script renders
    html = unescape(unescape((pytester.path / "report.html").read_text(encoding="utf-8")))
    assert "the stack's legs beside the carrier's" in html and "captured legs (sbc-capture): NOT met" in html
    [record] = json.loads((pytester.path / "out.json").read_text())
    hops = [leg["hop"] for leg in record["capture"]["legs"]]
    assert {"carrier->sbc", "sbc->media", "media->sbc", "sbc->carrier"} <= set(hops), hops
    assert record["capture"]["parity"]["ok"], record["capture"]["parity"]
    [hep] = (pytester.path / "pcaps").glob("*.hep.pcap")
    messages = read_messages(hep)
    assert len(messages) == len(hops)
    assert messages[0].data.startswith(b"INVITE ") and messages[0].src[0] == "127.0.0.66"
