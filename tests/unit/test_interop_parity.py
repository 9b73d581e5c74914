"""The parity table's comparison (harness.interop.parity): what ran is compared, a skip is not an answer."""

from __future__ import annotations

from harness.interop.parity import same_results, verdict_cell


def _record(verdict: str, final: int | None = None) -> dict[str, object]:
    return {"verdict": verdict, "codes": {"final": final}}


def test_a_skip_is_compared_with_nothing_and_a_different_code_is_a_difference() -> None:
    passed_604, passed_486 = _record("passed", 604), _record("passed", 486)
    assert verdict_cell(passed_604) == "passed 604"
    assert same_results([passed_604, _record("skipped"), None, passed_604])
    assert not same_results([passed_604, _record("skipped"), passed_486])
    assert not same_results([passed_604, _record("failed", 604)])
    assert same_results([_record("skipped"), None])
