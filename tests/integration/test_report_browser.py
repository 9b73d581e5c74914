"""The HTML report of `kazoo-harness run --html`, loaded in a real headless Chromium.

One catalog run against the embedded model (a scenario file whose expectation is wrong, plus real catalog
scenarios), one browser for the module. The checks read the rendered DOM, after the page's script ran:
counts per cause, the failure first and on the first screen, ladder arrows per message, the drop marker
of a silence, highlighted log patterns, filter and search, the pcap links, no network request at all.
A screenshot is kept as an artifact ($HARNESS_ARTIFACTS, else the test's tmp dir; the path is printed).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import browser
import pytest

from harness.report.html_report import write_html

pytestmark = pytest.mark.skipif(browser.missing() is not None, reason=str(browser.missing()))

REPO = Path(__file__).resolve().parents[2]
WRONG = """\
name: unlisted carrier expected to route
cause: acl
description: Wrong on purpose - an unlisted carrier is challenged, this expects the call to be routed.
carrier: {role: unlisted}
send: {number: routed}
expect: {outcome: routed}
"""
REAL = [
    "acl/unlisted_carrier.yaml",
    "call_flow/routed_call.yaml",  # two params: udp and tcp
    "malformed/missing_via.yaml",  # a silence ended by the drop line
    "number_mapping/absent_number.yaml",
]


class Run:
    def __init__(self, folder: Path, records: list[dict[str, Any]], html: Path, proc: Any) -> None:
        self.folder, self.records, self.html, self.proc = folder, records, html, proc

    def record(self, name: str) -> dict[str, Any]:
        return next(r for r in self.records if r["name"] == name)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    folder = tmp_path_factory.mktemp("report-run")
    (folder / "scenarios").mkdir()
    (folder / "scenarios" / "wrong.yaml").write_text(WRONG, encoding="utf-8")
    for rel in REAL:
        shutil.copy(REPO / "scenarios" / rel, folder / "scenarios" / Path(rel).name)
    args = ["scenarios", "--html", "out/report.html", "--json", "out/results.json", "--pcap", "out/pcaps"]
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", *args, "--seed", "11"],
        cwd=folder, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr  # exactly the wrong scenario fails
    records = json.loads((folder / "out/results.json").read_text(encoding="utf-8"))
    return Run(folder, records, folder / "out/report.html", proc)


@pytest.fixture(scope="module")
def context() -> Iterator[Any]:
    with browser.chromium() as ctx:
        yield ctx


@pytest.fixture
def page(context: Any, run: Run) -> Iterator[Any]:
    page = context.new_page()
    errors: list[str] = []
    requests: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda req: requests.append(req.url))
    page.goto(run.html.as_uri())
    yield page
    assert errors == [], f"script errors on the page: {errors}"
    # self-contained: the file itself and nothing else (no CDN, no fonts, no images from anywhere)
    assert [u for u in requests if u != run.html.as_uri()] == []
    page.close()


def _artifacts(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("HARNESS_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _visible_names(page: Any) -> list[str]:
    return page.eval_on_selector_all(
        "section.scenario:not([hidden]) summary .name", "els => els.map(e => e.textContent)"
    )


def test_counts_per_cause_match_the_records(page: Any, run: Run) -> None:
    for cause in ("acl", "number_format", "number_mapping", "malformed", "call_flow"):
        mine = [r for r in run.records if r["cause"] == cause]
        for verdict in ("passed", "failed", "skipped"):
            cell = page.locator(f'#counts td[data-cause="{cause}"][data-verdict="{verdict}"]')
            assert cell.inner_text() == str(sum(r["verdict"] == verdict for r in mine)), (cause, verdict)
    assert page.locator('#counts td[data-cause="acl"][data-verdict="failed"]').inner_text() == "1"
    assert page.locator("#totals").inner_text().startswith("1 failed · 5 passed")
    assert page.locator("#meta-target").inner_text() == "embedded"
    assert page.locator("#meta-profile").inner_text() == "kazoo-4.3"
    assert page.locator("#meta-seed").inner_text() == "11"


def test_the_failure_is_first_and_on_the_first_screen(page: Any, run: Run, tmp_path: Path) -> None:
    first = page.locator("section.scenario").first
    assert first.get_attribute("data-verdict") == "failed"
    assert first.locator("summary .name").inner_text() == "unlisted carrier expected to route"
    box = first.bounding_box()
    assert box is not None and box["y"] < page.viewport_size["height"] / 2
    assert first.locator("details").get_attribute("open") is not None  # failures are shown expanded
    assert first.locator("td.expected").inner_text() == "200 (outcome routed)"
    assert first.locator("td.got").inner_text() == "407 Proxy Authentication Required"
    assert "expected final 200, got 407" in first.locator("ul.failures").inner_text()
    missing = first.locator("table.patterns tr.missing")
    assert missing.count() == len(run.record("unlisted carrier expected to route")["logs"]["missing"]) > 0
    shot = _artifacts(tmp_path) / "report.png"
    page.screenshot(path=str(shot))
    print(f"report screenshot: {shot}")
    assert shot.stat().st_size > 10_000


def test_every_ladder_has_one_arrow_per_message(page: Any, run: Run) -> None:
    sections = page.locator("section.scenario")
    by_name = {r["name"] + (f" [{r['param']}]" if r.get("param") else ""): r for r in run.records}
    assert sections.count() == len(by_name)
    for i in range(sections.count()):
        section = sections.nth(i)
        record = by_name[section.locator("summary .name").inner_text()]
        messages = len(record["exchange"]["sent"]) + len(record["exchange"]["received"])
        assert section.locator("svg.ladder line.arrow").count() == messages, record["name"]
    wrong = page.locator("section.scenario").first.locator("svg.ladder")
    arrows = wrong.locator("line.arrow")
    assert arrows.count() == 4  # INVITE, 100, 407, ACK
    # drawn left to right for what the carrier sent, right to left for what came back
    rightwards = [float(arrows.nth(i).get_attribute("x2")) > float(arrows.nth(i).get_attribute("x1"))
                  for i in range(4)]  # fmt: skip
    assert rightwards == [True, False, False, True]
    assert wrong.bounding_box()["width"] > 300  # rendered, not just present in the DOM


def test_a_silence_shows_its_drop_line_and_highlighted_pattern(page: Any, run: Run) -> None:
    record = next(r for r in run.records if r["outcome"] == "silence")
    section = page.locator("section.scenario", has_text=record["name"])
    section.locator("summary").click()  # passes are collapsed: open it as a reader would
    ladder = section.locator("svg.ladder")
    assert ladder.locator("path.drop-marker").count() == 1
    assert ladder.locator("line.silence").count() == 1
    assert "drop line: [kamailio]" in ladder.text_content()
    marks = section.locator(".log-line.matched mark").all_inner_texts()
    assert marks == ["no via found in request"]


def test_filter_by_cause_and_verdict_and_search(page: Any, run: Run) -> None:
    total = page.locator("section.scenario").count()
    page.select_option("#filter-cause", "call_flow")
    assert sorted(_visible_names(page)) == sorted(
        f"{r['name']} [{r['param']}]" for r in run.records if r["cause"] == "call_flow"
    )
    assert page.locator("#shown").inner_text() == f"2 of {total} shown"
    page.select_option("#filter-cause", "")
    page.select_option("#filter-verdict", "failed")
    assert _visible_names(page) == ["unlisted carrier expected to route"]
    page.select_option("#filter-verdict", "")
    # a click on a count filters by that cause and verdict
    page.locator('#counts td[data-cause="acl"][data-verdict="passed"]').click()
    assert _visible_names(page) == ["unlisted carrier is challenged"]
    page.select_option("#filter-cause", "")
    page.select_option("#filter-verdict", "")

    call_id = run.record("unlisted carrier expected to route")["call_id"]
    page.fill("#search", call_id)
    assert _visible_names(page) == ["unlisted carrier expected to route"]
    absent = run.record("a number with no document gets 604")["placeholders"]["number"]
    page.fill("#search", absent)
    assert _visible_names(page) == ["a number with no document gets 604"]
    page.fill("#search", "no such scenario anywhere")
    assert _visible_names(page) == [] and page.locator("#no-match").is_visible()
    page.fill("#search", "")
    assert len(_visible_names(page)) == total


def test_reproduce_copy_button_and_pcap_link(page: Any, run: Run) -> None:
    first = page.locator("section.scenario").first
    record = run.record("unlisted carrier expected to route")
    assert first.locator(".reproduce code").inner_text() == record["reproduce"]
    button = first.locator("button.copy")
    button.click()
    page.wait_for_function("b => b.textContent === 'copied'", arg=button.element_handle())
    href = first.locator("a.pcap").get_attribute("href")
    assert href is not None and not href.startswith(("/", "file:"))  # relative to the page
    assert (run.html.parent / href).resolve() == Path(record["pcap"])
    assert Path(record["pcap"]).stat().st_size > 0


def test_runs_of_several_sbc_nodes_sit_side_by_side(context: Any, run: Run, tmp_path: Path) -> None:
    # the records of an `--each-sbc` run carry `sbc` (and `@node` in the param); same scenarios twice
    nodes = []
    for node in ("sbc1", "sbc2"):
        for r in run.records:
            param = " ".join(filter(None, [r.get("param"), f"@{node}"]))
            nodes.append({**r, "sbc": node, "param": param})
    # a cluster where one node passes what the other fails: the scenario as a whole has failed
    i = next(i for i, r in enumerate(nodes) if r["sbc"] == "sbc1" and r["verdict"] == "failed")
    nodes[i] = {**nodes[i], "verdict": "passed", "failures": []}
    html = write_html(nodes, tmp_path / "nodes.html")
    page = context.new_page()
    page.goto(html.as_uri())
    assert page.locator("section.scenario").count() == len(run.records)
    assert page.locator("#node-counts tr[data-node]").count() == 2
    first = page.locator("section.scenario").first
    left, right = first.locator("article.run[data-node=sbc1]"), first.locator("article.run[data-node=sbc2]")
    assert first.get_attribute("data-verdict") == "failed"
    assert "verdict-passed" in str(left.get_attribute("class"))
    assert "verdict-failed" in str(right.get_attribute("class"))
    lbox, rbox = left.bounding_box(), right.bounding_box()
    assert lbox is not None and rbox is not None
    assert abs(lbox["y"] - rbox["y"]) < 2 and rbox["x"] >= lbox["x"] + lbox["width"]
    page.screenshot(path=str(_artifacts(tmp_path) / "report-nodes.png"))
    page.close()
