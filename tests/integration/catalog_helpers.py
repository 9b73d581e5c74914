"""Running the scenario catalog in a subprocess, as the catalog tests of each target do, and reading its
skips: the only skip a catalog run may have is a scenario that names the releases it applies to."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RELEASE_SKIP = "scenario applies to "  # harness.scenario.plan: a `releases:` scenario on another release


def run_catalog(
    target: str, profile: str, *extra: str, env: Mapping[str, str] | None = None, timeout: float = 900
) -> tuple[subprocess.CompletedProcess[str], str]:
    """``pytest scenarios --kazoo-target T --kazoo-profile P -rs`` from the repository; the run and its
    output (stdout and stderr)."""
    command = [sys.executable, "-m", "pytest", "scenarios", "--kazoo-target", target,
               "--kazoo-profile", profile, "-q", "-rs", "-p", "no:cacheprovider", *extra]  # fmt: skip
    done = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False, env=env
    )
    return done, done.stdout + done.stderr


def unexpected_skips(output: str, allowed: Sequence[str] = (RELEASE_SKIP,)) -> list[str]:
    """The SKIPPED lines of ``-rs`` whose reason is none of ``allowed``."""
    skipped = [line for line in output.splitlines() if line.startswith("SKIPPED")]
    return [line for line in skipped if not any(reason in line for reason in allowed)]


def tail(output: str, lines: int = 40) -> str:
    return "\n".join(output.strip().splitlines()[-lines:])
