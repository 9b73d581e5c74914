"""The whole scenario catalog passes against the lab target (a real Kamailio in front of the model's
media and routing roles) for both profiles, with the same scenarios as against the embedded model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from catalog_helpers import RELEASE_SKIP, unexpected_skips

from harness.interop.parity import PROFILES, run_catalog
from harness.lab.kamailio import kamailio_available
from harness.targets.setup import LAB_ROLES_REASON

REPO = Path(__file__).resolve().parents[2]
KAMAILIO_MISSING = kamailio_available()

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        KAMAILIO_MISSING is not None, reason=f"the lab target needs Kamailio: {KAMAILIO_MISSING}"
    ),
]


@pytest.mark.parametrize("profile", PROFILES)
def test_catalog_passes_against_the_lab_target(profile: str) -> None:
    command = [
        sys.executable,
        "-m",
        "pytest",
        "scenarios",
        "--kazoo-target",
        "lab",
        "--kazoo-profile",
        profile,
        "-q",
        "-rs",
        "-p",
        "no:cacheprovider",
    ]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900, check=False)
    output = done.stdout + done.stderr
    tail = "\n".join(output.strip().splitlines()[-30:])
    assert done.returncode == 0, f"{' '.join(command[2:])} exited {done.returncode}:\n{tail}"
    assert " passed" in tail, tail
    # a scenario written for one release only is skipped on the other, and one that needs an optional
    # Kamailio role our configuration does not have; nothing else may be
    assert not unexpected_skips(output, (RELEASE_SKIP, LAB_ROLES_REASON)), tail
    assert LAB_ROLES_REASON in output, "the role scenarios ran on the lab"


@pytest.mark.parametrize("profile", PROFILES)
def test_lab_and_embedded_give_the_same_results(profile: str) -> None:
    lab = run_catalog("lab", profile, cwd=REPO)
    embedded = run_catalog("embedded", profile, cwd=REPO)
    assert lab.records and set(lab.records) == set(embedded.records)
    # what our configuration cannot run is not compared: the lab skips it (the embedded model's twin with
    # the role plays it), and nothing else is left out
    roles_only = {s for s, r in lab.records.items() if LAB_ROLES_REASON in str(r.get("skipped", ""))}
    assert all(embedded.records[s].get("verdict") == "passed" for s in roles_only), roles_only
    differing = {
        scenario: {"embedded": _summary(embedded.records[scenario]), "lab": _summary(lab.records[scenario])}
        for scenario in set(lab.records) - roles_only
        if (embedded.records[scenario].get("verdict"), embedded.records[scenario].get("codes"))
        != (lab.records[scenario].get("verdict"), lab.records[scenario].get("codes"))
    }
    assert not differing, f"embedded vs lab ({profile}): {differing}"


def _summary(record: dict[str, object]) -> dict[str, object]:
    """What a reader needs to tell a real difference from a run that went wrong: verdict, codes, why."""
    keys = ("verdict", "codes", "failures", "timings")
    return {key: record.get(key) for key in keys if record.get(key)}
