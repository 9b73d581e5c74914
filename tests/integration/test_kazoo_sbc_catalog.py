"""The whole scenario catalog passes through Kazoo's own Kamailio configuration (the kazoo-sbc target), for
every release the harness can start, in a subprocess like the lab's catalog test."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.kazoo.roles import BROKEN_ON_DEBIAN
from harness.kazoo_sbc.launcher import kazoo_sbc_available
from harness.kazoo_sbc.releases import RELEASES

REPO = Path(__file__).resolve().parents[2]
MISSING = kazoo_sbc_available()

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(MISSING is not None, reason=f"the kazoo-sbc target needs: {MISSING}"),
]


@pytest.mark.parametrize("release", sorted(RELEASES))
def test_catalog_passes_through_kazoos_own_configuration(release: str) -> None:
    command = [
        sys.executable, "-m", "pytest", "scenarios", "--kazoo-target", "kazoo-sbc",
        "--kazoo-profile", release, "-q", "-rs", "-p", "no:cacheprovider",
    ]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    lines = (done.stdout + done.stderr).strip().splitlines()
    tail = "\n".join(lines[-40:])
    assert done.returncode == 0, f"{' '.join(command[2:])} exited {done.returncode}:\n{tail}"
    assert " passed" in tail, tail
    # skipped: a scenario for the other release, and the rate limiter's (Debian's kazoo module cannot run
    # it); the antiflood scenarios run, on a twin of the configuration with the role switched on
    skips = [line for line in lines if line.startswith("SKIPPED")]
    allowed = ("applies to kazoo-", BROKEN_ON_DEBIAN["rate_limiter"])
    assert all(any(reason in line for reason in allowed) for line in skips), "\n".join(skips)
