"""Open the target a run names: `embedded` (default), `lab`, `docker`, `kazoo-sbc`, or a target file."""

from __future__ import annotations

import tomllib
from pathlib import Path

from harness.kazoo.profiles import Profile
from harness.scenario.target import Target, TargetError


class TargetStartError(RuntimeError):
    """The target could not be started or reached (an infrastructure error, not a scenario failure)."""


BUILTIN = ("embedded", "lab", "docker", "kazoo-sbc")


def builtin_of(path: Path) -> str | None:
    """A target file that only names a target the harness starts itself: `builtin = "docker"`."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return None  # the full loader reports it, naming the file and the problem
    value = data.get("builtin")
    if value is None:
        return None
    extra = sorted(set(data) - {"builtin", "name", "profile"})
    if value not in BUILTIN or extra:
        raise TargetError(
            f"{path}: builtin must be one of {', '.join(BUILTIN)} and stand with only name/profile"
            + (f" (unexpected: {', '.join(extra)})" if extra else "")
        )
    return str(value)


def open_target(name: str, profile: Profile) -> Target:
    name = name or "embedded"
    if Path(name).is_file() and (builtin := builtin_of(Path(name))) is not None:
        name = builtin
    if name == "embedded":
        from harness.scenario.embedded import start_embedded

        try:
            return start_embedded(profile)
        except (OSError, RuntimeError, TimeoutError) as exc:
            raise TargetStartError(f"the embedded Kazoo model failed to start: {exc}") from exc
    if name == "lab":
        from harness.scenario.lab import start_lab

        return start_lab(profile)
    if name == "docker":
        from harness.scenario.docker_target import start_docker

        return start_docker(profile)
    if name == "kazoo-sbc":
        from harness.scenario.kazoo_sbc import start_kazoo_sbc

        return start_kazoo_sbc(profile)
    from harness.scenario.targetfile import load_target_file, split_target_ref

    file, sbc_node = split_target_ref(name)  # FILE#node picks one SBC node of the file
    path = Path(file)
    if not path.is_file():
        raise TargetStartError(
            f"no such target file: {file} (embedded, lab, docker, kazoo-sbc or a TOML target file)"
        )
    from harness.scenario.probe import sbc_unreachable
    from harness.scenario.safety import check_destination

    target = load_target_file(path).to_target(profile, sbc_node)
    check_destination(target, target.sbc)
    source = target.carriers.get("listed") or next(iter(target.carriers.values()), ("127.0.0.1", None))
    problem = sbc_unreachable(target.sbc, source[0])  # an unreachable stack is an infrastructure error
    if problem:
        raise TargetStartError(f"SBC unreachable, {problem}; target {target.name}")
    return target
