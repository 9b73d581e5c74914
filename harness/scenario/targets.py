"""Open the target a run names: `embedded` (default), `lab`, `docker`, or a target file."""

from __future__ import annotations

from pathlib import Path

from harness.kazoo.profiles import Profile
from harness.scenario.target import Target


class TargetStartError(RuntimeError):
    """The target could not be started or reached (an infrastructure error, not a scenario failure)."""


def open_target(name: str, profile: Profile) -> Target:
    name = name or "embedded"
    if name == "embedded":
        from harness.scenario.embedded import start_embedded

        try:
            return start_embedded(profile)
        except OSError as exc:
            raise TargetStartError(f"the embedded Kazoo model failed to start: {exc}") from exc
    if name == "lab":
        from harness.scenario.lab import start_lab

        return start_lab(profile)
    if name == "docker":
        raise TargetStartError("the docker target is not built yet (see the Docker issue)")
    path = Path(name)
    if not path.is_file():
        raise TargetStartError(f"no such target file: {name} (use embedded, lab, docker or a TOML target file)")
    raise TargetStartError("target files are not supported yet (see the real-stacks issue)")
