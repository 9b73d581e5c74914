"""The kazoo-sbc target: Kazoo's own Kamailio configuration (2600Hz kazoo-configs-kamailio, the release's
tree from ../shared or an operator's directory: ``--kazoo-sbc-config`` / ``KAZOO_SBC_CONFIG``) in front
of the embedded model's media and routing roles. The model's data reaches it as Kazoo's apps deliver it
(harness.kazoo_sbc.stackdata); the model and the profile follow the roles its local.cfg turns on."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.kazoo.profiles import Profile
from harness.kazoo_sbc.launcher import KazooSbc, SbcError, kazoo_sbc_available
from harness.kazoo_sbc.localcfg import roles_of
from harness.kazoo_sbc.rabbit import BrokerError
from harness.kazoo_sbc.releases import CONFIG_ENV, sbc_release
from harness.kazoo_sbc.roles import model_switches, profile_for_roles
from harness.kazoo_sbc.stackdata import dispatcher_rows, trusted_rows
from harness.model.stack import ModelConfig, start_model
from harness.scenario.embedded import CATALOG_ROUTE_TIMEOUT, roles_for, target_for_model
from harness.scenario.target import Target
from harness.scenario.targets import TargetStartError

AMQP_ENV = "KAZOO_SBC_AMQP_URL"  # a broker to share (e.g. one per test session) instead of a private one


def start_kazoo_sbc(profile: Profile, *, route_timeout: float = CATALOG_ROUTE_TIMEOUT) -> Target:
    reason = kazoo_sbc_available()
    if reason is not None:
        raise TargetStartError(f"the kazoo-sbc target needs Kazoo's Kamailio modules and RabbitMQ: {reason}")
    config_dir = os.environ.get(CONFIG_ENV) or None
    if config_dir is not None and not Path(config_dir, "kamailio.cfg").is_file():
        raise TargetStartError(f"{CONFIG_ENV}={config_dir}: not a Kazoo Kamailio configuration directory")
    try:
        release_tree = sbc_release(profile.release).pristine
    except ValueError as exc:
        raise TargetStartError(str(exc)) from exc
    source = Path(config_dir) if config_dir is not None else release_tree
    roles = roles_of((source / "local.cfg").read_text(encoding="utf-8"))
    config = ModelConfig(
        profile=profile.release,
        sbc_port=0,
        media_port=0,
        esl_port=0,
        couch_port=0,
        route_timeout=route_timeout,
        role_switches=model_switches(roles),  # the model follows the operator's roles
    )
    try:
        model = start_model(config)
    except (OSError, RuntimeError, TimeoutError) as exc:
        raise TargetStartError(f"the embedded Kazoo model failed to start: {exc}") from exc
    target = target_for_model(model, profile_for_roles(profile, roles), roles_for(None))
    assert target.media is not None
    sbc = KazooSbc(
        profile.release,
        config_dir=config_dir,
        media=dispatcher_rows([target.media], node=model.config.node),
        trusted=trusted_rows(model.store, model.config.node),
        broker_url=os.environ.get(AMQP_ENV) or None,
    )
    try:
        sbc.start()
    except (SbcError, BrokerError, OSError, ValueError) as exc:
        model.stop()
        raise TargetStartError(f"Kazoo's Kamailio configuration did not start: {exc}") from exc

    def close() -> None:
        sbc.stop()
        model.stop()

    target.name = "kazoo-sbc"
    target.kind = "kazoo-sbc"
    target.sbc = sbc.address
    target.carriers["sbc_self"] = (sbc.address[0], None)
    target.log_files = {**target.log_files, "kamailio": sbc.log_path}
    target.close = close
    target.source_file = sbc  # what setup hooks and tests reach the running SBC through
    return target


@contextmanager
def media_down(target: Target) -> Iterator[Target]:
    """Scenario setup ``media: down`` on the real configuration: no media server in the dispatcher table
    (reloaded through Kamailio's RPC), restored afterwards."""
    sbc = target.source_file
    assert isinstance(sbc, KazooSbc)
    saved = sbc.media
    sbc.set_media(())
    try:
        yield target
    finally:
        sbc.set_media(saved)
