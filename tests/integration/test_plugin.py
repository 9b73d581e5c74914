"""The pytest plugin seen from a user's project (pytester): schema errors at file:line, failure output,
JUnit XML, and the Python fixtures. Each run starts its own embedded model on free ports."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

GOOD = """\
name: listed carrier routes
cause: acl
description: A trusted carrier calls a routed number.
carrier: {role: listed}
send: {number: routed}
expect: {outcome: routed}
"""

WRONG = """\
name: deliberately wrong expectation
cause: acl
description: An unlisted carrier is challenged, but this scenario claims the call routes.
carrier: {role: unlisted}
send: {number: routed}
expect: {outcome: routed}
"""

BAD_SCHEMA = """\
name: typo in a field
cause: acl
description: The send section has a misspelt field on line 6.
send:
  number: routed
  formatt: nanp10
expect: {outcome: routed}
"""


def _scenarios(pytester: pytest.Pytester, **files: str) -> None:
    folder = pytester.mkdir("scenarios")
    for name, text in files.items():
        (folder / f"{name}.yaml").write_text(text, encoding="utf-8")


def test_schema_error_names_file_line_and_field(pytester: pytest.Pytester) -> None:
    _scenarios(pytester, bad=BAD_SCHEMA)
    result = pytester.runpytest("scenarios")
    result.stdout.fnmatch_lines(["*scenarios/bad.yaml:6: send.formatt: unknown field*"])
    assert result.ret == pytest.ExitCode.INTERRUPTED  # a collection error stops the run


def test_passing_scenario(pytester: pytest.Pytester) -> None:
    _scenarios(pytester, good=GOOD)
    result = pytester.runpytest("scenarios", "--harness-seed", "7")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*seed=7*"])


def test_wrong_expectation_explains_itself(pytester: pytest.Pytester) -> None:
    _scenarios(pytester, wrong=WRONG)
    result = pytester.runpytest("scenarios", "--harness-seed", "11")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "expected: 200" in out and "got:      407 Proxy Authentication Required" in out
    assert "ladder:" in out and "|-- INVITE sip:+14155550100@" in out
    assert "lines tied to this call" in out and "SIP auth challenge (INVITE)" in out
    assert "MISSING" in out and "New Channel" in out
    assert "reproduce: pytest scenarios/wrong.yaml::deliberately_wrong_expectation" in out
    assert "--harness-seed 11" in out
    # said once: the verdict's own header, not a second "not met:" line before it
    assert "- log expectations: NOT met" in out and "log expectations not met" not in out, out


def test_reproduce_names_a_scenario_outside_the_invocation_dir_by_its_absolute_path(
    pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory
) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "wrong.yaml"
    elsewhere.write_text(WRONG, encoding="utf-8")
    result = pytester.runpytest(str(elsewhere), "--harness-seed", "11")
    result.assert_outcomes(failed=1)
    found = re.search(r"reproduce: pytest (\S+)::deliberately_wrong_expectation", result.stdout.str())
    assert found is not None, result.stdout.str()
    assert found.group(1) == str(elsewhere)  # not "wrong.yaml", which only works from its own folder


def test_junit_xml(pytester: pytest.Pytester) -> None:
    _scenarios(pytester, good=GOOD, wrong=WRONG)
    result = pytester.runpytest("scenarios", "--junitxml", "junit.xml")
    result.assert_outcomes(passed=1, failed=1)
    root = ET.parse(pytester.path / "junit.xml").getroot()
    cases = root.findall(".//testcase")
    assert len(cases) == 2
    failed = [c for c in cases if c.find("failure") is not None]
    assert len(failed) == 1 and "deliberately_wrong_expectation" in failed[0].get("name", "")


def test_kazoo5_profile_changes_the_expectation_and_the_model(pytester: pytest.Pytester) -> None:
    _scenarios(pytester, unlisted=WRONG.replace("outcome: routed", "outcome: acl_rejected"))
    result = pytester.runpytest("scenarios", "--kazoo-profile", "kazoo-5", "--harness-json", "out.json")
    result.assert_outcomes(passed=1)
    # 5.x's Kamailio challenges the unlisted carrier itself (authorization.cfg; docs/parity.md)
    records = (pytester.path / "out.json").read_text()
    assert '"got": "407 Proxy Authentication Required"' in records
    assert "(authorization) challenging" in records


def test_python_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio

        def test_run_scenario(run_scenario):
            result = run_scenario({"name": "py", "cause": "acl", "carrier": {"role": "unlisted"},
                                   "send": {"number": "routed"}, "expect": {"outcome": "acl_rejected"}})
            assert result.exchange.final_code == 407

        def test_carrier_fixture(kazoo, carrier):
            ua = carrier("listed")
            exchange = asyncio.run(ua.options(kazoo.sbc, timeout=2))
            assert exchange.final_code == 200 and exchange.final.reason == "Rawr!!"
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2)


def test_unknown_profile_is_a_usage_error(pytester: pytest.Pytester) -> None:
    _scenarios(pytester, good=GOOD)
    result = pytester.runpytest("scenarios", "--kazoo-profile", "kazoo-9")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown profile 'kazoo-9'*"])


def test_harness_html_report_under_plain_pytest(pytester: pytest.Pytester) -> None:
    _scenarios(pytester, good=GOOD, wrong=WRONG)
    result = pytester.runpytest("scenarios", "--harness-html", "out/report.html")
    result.assert_outcomes(passed=1, failed=1)
    html = (pytester.path / "out/report.html").read_text(encoding="utf-8")
    assert re.findall(r'<section class="scenario verdict-(\w+)"', html) == ["failed", "passed"]
    assert "deliberately wrong expectation" in html and html.count('<line class="arrow"') >= 8
