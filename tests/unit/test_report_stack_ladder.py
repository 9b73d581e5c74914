"""The stack's legs beside the carrier's: a column per role, one row per message, who saw it; a drop
reads as an arrow into the SBC with nothing leaving it."""

from __future__ import annotations

from test_logs_legs import CARRIER, CHALLENGE, INVITE, MEDIA, RELAYED, ROLES, SBC, T0, exchange, line

from harness.logs.legs import legs_of
from harness.report.stack_ladder import stack_ladder


def test_a_relayed_call_has_a_column_per_role_and_a_row_per_message() -> None:
    ex = exchange(("sent", INVITE), ("received", CHALLENGE))
    captured = [
        line(INVITE, CARRIER, SBC, T0 + 0.0002),
        line(RELAYED, SBC, MEDIA, T0 + 0.0003),
        line(CHALLENGE, MEDIA, SBC, T0 + 0.0004),
        line(CHALLENGE, SBC, CARRIER, T0 + 0.0005),
    ]
    text = stack_ladder(ex, legs_of(captured, ex, ROLES), ROLES)
    lines = text.splitlines()
    assert lines[0] == "the stack's legs beside the carrier's (call-id c1@x)"
    assert lines[1].split() == ["carrier", "sbc", "media"]
    rows = lines[2:]
    assert [r.split()[2] for r in rows] == ["carrier", "cap", "cap", "cap", "cap", "carrier"]
    arrow = "|-INVITE--------------->|"
    assert rows[0].startswith(f"      0.0 ms  carrier        {arrow} ")  # carrier -> sbc
    assert rows[2].endswith(f"|                       {arrow}")  # sbc -> media
    assert rows[3].endswith("|<407 Proxy Authent...--|")  # media -> sbc, the reason shortened
    assert rows[4].startswith("      0.5 ms  cap            |<407 Proxy Authent...--|")
    assert rows[5].startswith("      1.0 ms  carrier")


def test_a_drop_shows_received_and_nothing_else() -> None:
    ex = exchange(("sent", INVITE))
    text = stack_ladder(ex, legs_of([line(INVITE, CARRIER, SBC, T0)], ex, ROLES), ROLES)
    assert text.splitlines()[1].split() == ["carrier", "sbc"]  # no media column: nothing went there
    assert len(text.splitlines()) == 4


def test_nothing_captured_is_said() -> None:
    ex = exchange(("sent", INVITE))
    assert stack_ladder(ex, [], ROLES).endswith("(no leg of this call was captured)")
