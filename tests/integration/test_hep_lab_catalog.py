"""The acceptance run: the whole catalog on the lab target, whose Kamailio mirrors every message as HEP
to the harness. For every scenario through the SBC its legs are collected and every message between
the carrier and the SBC appears in the SBC's capture once, byte exact (or is named as one siptrace
cannot see); every drop shows "received, not relayed" at the SBC; a call sent straight to the media
role leaves no trace at the SBC."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from catalog_helpers import RELEASE_SKIP

from harness.lab.kamailio import kamailio_available
from harness.scenario.case import ScenarioCase, load_cases
from harness.targets.setup import LAB_ROLES_REASON

REPO = Path(__file__).resolve().parents[2]
MISSING = kamailio_available("siptrace")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(MISSING is not None, reason=f"the lab target needs Kamailio with siptrace: {MISSING}"),
]


def _cases() -> dict[str, ScenarioCase]:
    out = {}
    for path in (REPO / "scenarios").rglob("*.yaml"):
        if "targets" not in path.parts:
            out.update({case.test_id: case for case in load_cases(path)})
    return out


def _hops(record: dict[str, Any]) -> list[str]:
    return [leg["hop"] for leg in record["capture"]["legs"]]


def test_every_scenario_s_sbc_legs_on_the_lab(tmp_path: Path) -> None:
    out = tmp_path / "records.json"
    command = [
        sys.executable,
        "-m",
        "pytest",
        "scenarios",
        "--kazoo-target",
        "lab",
        "--kazoo-profile",
        "kazoo-5",
    ]
    command += ["--harness-json", str(out), "-q", "-n", "2", "-p", "no:cacheprovider"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    output = (done.stdout + done.stderr).strip()
    assert done.returncode == 0, output[-6000:]
    records = json.loads(out.read_text())
    cases = _cases()
    assert len(records) == len(cases) > 80, (len(records), len(cases))
    drops = unseen = legs = 0
    for record in records:
        name = record["id"]
        capture = record.get("capture")
        if record["verdict"] == "skipped":  # a scenario for the other release, or for an optional role
            why = str(record.get("skipped", ""))
            assert RELEASE_SKIP in why or LAB_ROLES_REASON in why, (name, why)
            continue
        assert record["verdict"] == "passed", name
        # every scenario, `media: down` ones too (a second, media-less Kamailio sends to the same capture)
        assert capture is not None, name
        legs += len(capture["legs"])
        if cases[name].via == "media":
            assert capture["legs"] == [] and capture["parity"] is None, name  # the SBC never saw it
            continue
        parity = capture["parity"]
        assert parity is not None and parity["ok"], (name, parity)
        hops = _hops(record)
        if parity["unseen"]:  # bytes Kamailio's core never reads as SIP: nothing to capture
            unseen += 1
        else:
            assert "carrier->sbc" in hops, (name, hops)
        if record["outcome"] in ("silence", "closed"):
            drops += 1
            assert not {"sbc->media", "sbc->carrier"} & set(hops), (name, hops)  # received, not relayed
    print(
        f"\n{len(records)} scenarios, {legs} captured legs, {drops} drops proven at the SBC, "
        f"{unseen} uncapturable"
    )
    assert drops >= 10 and unseen >= 3
