"""The embedded Kazoo model as a target: start one on free loopback ports, describe it as a Target."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.kazoo.profiles import Profile
from harness.model.demo import demo_roles
from harness.model.stack import ModelConfig, RunningModel, start_model
from harness.scenario.target import Target

# The embedded model answers non-reconcilable numbers and missing callflows after the route timeout;
# the catalog shrinks it (Kazoo's is ~2.6 s) so the whole catalog runs in seconds. Scenarios that
# assert the delay read it from the target, so they stay true at any value.
CATALOG_ROUTE_TIMEOUT = 0.15


def roles_for(data_dir: Path | None) -> dict[str, Any]:
    """The role map: the demo's, or `roles.json` in a user's data directory."""
    if data_dir is not None and (data_dir / "roles.json").is_file():
        loaded: dict[str, Any] = json.loads((data_dir / "roles.json").read_text(encoding="utf-8"))
        return loaded
    return demo_roles()


def carrier_roles(roles: dict[str, Any], sbc_ip: str) -> dict[str, tuple[str, int | None]]:
    """Carrier roles of a role map as (ip, port); `sbc_self` is the SBC's own address unless named."""
    carriers = {name: (str(v["ip"]), v.get("port")) for name, v in roles.get("carriers", {}).items()}
    carriers.setdefault("sbc_self", (sbc_ip, None))
    return carriers


def target_for_model(model: RunningModel, profile: Profile, roles: dict[str, Any]) -> Target:
    carriers = carrier_roles(roles, model.sbc[0])
    return Target(
        name="embedded",
        kind="embedded",
        sbc=model.sbc,
        media=model.media,
        profile=profile,
        carriers=carriers,
        numbers=dict(roles.get("numbers", {})),
        log_files={
            "freeswitch": model.log_dir / "freeswitch.log",
            "kamailio": model.log_dir / "kamailio.log",
            "kazoo": model.log_dir / "kazoo.log",
        },
        esl=(model.esl[0], model.esl[1], model.config.esl_password),
        route_timeout=model.config.route_timeout,
        silence_window=2.0,
        allow_malformed=True,
        model=model,
    )


def start_embedded(
    profile: Profile,
    *,
    data_dir: Path | None = None,
    log_dir: Path | None = None,
    route_timeout: float = CATALOG_ROUTE_TIMEOUT,
) -> Target:
    """Start a model on free loopback ports for ``profile``; stop it with ``target.model.stop()``."""
    config = ModelConfig(
        profile=profile.release,
        data_dir=data_dir,
        log_dir=log_dir,
        sbc_port=0,
        media_port=0,
        esl_port=0,
        couch_port=0,
        route_timeout=route_timeout,
        role_switches=dict(profile.roles),  # the model runs the Kamailio roles the profile says
    )
    model = start_model(config)
    return target_for_model(model, profile, roles_for(data_dir))
