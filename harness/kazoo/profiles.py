"""Expectation profiles: what each named outcome looks like on a given Kazoo release.

A profile is a YAML file (see profiles/kazoo-4.3.yaml for the fields). The shipped profiles are
`kazoo-4.3` (default) and `kazoo-5`; a user profile is any file with `name`, optional `extends`
(a shipped profile name or a path) and `outcomes`, each outcome replacing the inherited one whole,
and optional `roles` (Kazoo's optional Kamailio roles the stack runs, e.g. `{antiflood: on}`; all off
by default, merged over the inherited ones).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.kazoo.kamailio_roles import check_roles

PROFILE_DIR = Path(__file__).with_name("profiles")
DEFAULT_PROFILE = "kazoo-4.3"
RELEASES = ("kazoo-4.3", "kazoo-5")


class ProfileError(ValueError):
    """A profile that cannot be found or read."""


@dataclass(frozen=True)
class Profile:
    name: str
    release: str  # the Kazoo release family the embedded model imitates: "kazoo-4.3" or "kazoo-5"
    outcomes: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: str = ""
    roles: dict[str, bool] = field(default_factory=dict)  # optional Kamailio roles switched on/off

    def outcome(self, name: str, via: str = "sbc") -> dict[str, Any]:
        """The expectation of an outcome, for a call sent through the SBC or straight to the media role."""
        for key in (f"{name}@{via}", name) if via != "sbc" else (name,):
            if key in self.outcomes:
                return self.outcomes[key]
        known = sorted({k.split("@")[0] for k in self.outcomes})
        raise ProfileError(f"profile {self.name!r} has no outcome {name!r} (known: {', '.join(known)})")

    def names(self) -> list[str]:
        return sorted(self.outcomes)


def shipped_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def load_profile(name_or_path: str | Path | None = None, _seen: tuple[str, ...] = ()) -> Profile:
    """Load a shipped profile by name, or a user profile file by path."""
    ref = str(name_or_path or DEFAULT_PROFILE)
    path = PROFILE_DIR / f"{ref}.yaml" if ref in shipped_profiles() else Path(ref)
    if not path.is_file():
        raise ProfileError(
            f"unknown profile {ref!r}: use one of {', '.join(shipped_profiles())} or a path to a profile file"
        )
    if str(path.resolve()) in _seen:
        raise ProfileError(f"profile {ref!r} extends itself")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("outcomes", {}), dict):
        raise ProfileError(f"{path}: a profile is a mapping with 'name' and 'outcomes'")
    outcomes: dict[str, dict[str, Any]] = {}
    roles: dict[str, bool] = {}
    source = str(path)
    release = data.get("release")
    if data.get("extends"):
        base = load_profile(str(data["extends"]), (*_seen, str(path.resolve())))
        outcomes.update(base.outcomes)
        roles.update(base.roles)
        source = f"{base.source} <- {path}"
        release = release or base.release
    if release not in RELEASES:
        raise ProfileError(
            f"{path}: 'release' must be one of {', '.join(RELEASES)} (or inherited via 'extends')"
        )
    for key, value in (data.get("outcomes") or {}).items():
        if not isinstance(value, dict):
            raise ProfileError(f"{path}: outcome {key!r} must be a mapping")
        outcomes[str(key)] = value
    if "roles" in data:
        try:
            roles.update(check_roles(data["roles"] or {}, str(path)))
        except ValueError as exc:
            raise ProfileError(str(exc)) from exc
    name = str(data.get("name") or path.stem)
    return Profile(name=name, release=release, outcomes=outcomes, source=source, roles=roles)
