"""The `kazoo-sbc` kind: Kazoo's own Kamailio configuration (2600Hz kazoo-configs-kamailio: the release's
tree from ../shared, or an operator's directory through ``--kazoo-sbc-config`` / ``KAZOO_SBC_CONFIG``) in
front of the embedded model's media and routing roles (harness.kazoo_sbc runs it).

The model's data reaches it the way Kazoo's apps deliver it (harness.kazoo_sbc.stackdata: the media role
in the dispatcher table, the trusted sources in the permissions address table as ecallmgr answers them);
the profile and the model follow the optional roles its local.cfg turns on. Its own SIP_TRACE_ROLE sends
HEP3 to a receiver the target owns, the `sbc-capture` log source (harness.kazoo_sbc.trace; docs/hep.md):
not a complete capture, since that role traces only what passes the sanity and ACL checks.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from harness.kazoo.profile import Profile
from harness.kazoo.roles import BROKEN_ON_DEBIAN, OPTIONAL_ROLES
from harness.kazoo_sbc.launcher import KazooSbc, SbcError, copy_config, kazoo_sbc_available
from harness.kazoo_sbc.localcfg import roles_of, set_roles
from harness.kazoo_sbc.rabbit import BrokerError
from harness.kazoo_sbc.releases import CONFIG_ENV, sbc_release
from harness.kazoo_sbc.stackdata import dispatcher_rows, trusted_rows
from harness.model.stack import RunningModel
from harness.progress import step
from harness.targets.capture import loopback_capture
from harness.targets.embedded import (
    CATALOG_ROUTE_TIMEOUT,
    ModelSetup,
    roles_for,
    start_model_for,
    target_for_model,
)
from harness.targets.target import SetupUnsupported, Target, TargetStartError, file_logs

AMQP_ENV = "KAZOO_SBC_AMQP_URL"  # a broker to share (one per test session, say) instead of a private one


def configuration_roles(profile: Profile, config_dir: Path | None) -> frozenset[str]:
    """The optional roles the configuration that will run turns on (its local.cfg)."""
    try:
        source = config_dir if config_dir is not None else sbc_release(profile.release.name).pristine
    except ValueError as exc:
        raise TargetStartError(str(exc)) from exc
    local = source / "local.cfg"
    if not local.is_file():
        raise TargetStartError(f"{source}: not a Kazoo Kamailio configuration directory (no local.cfg)")
    return roles_of(local.read_text(encoding="utf-8")) & frozenset(OPTIONAL_ROLES)


class SbcSetup(ModelSetup):
    """Scenario setup on kazoo-sbc: documents in the model's store (the routing role reads them); `media:
    down` empties the real configuration's dispatcher table (restored after); `kamailio_roles` starts a
    twin SBC from a copy of the configuration with those roles switched in its local.cfg, as an operator
    would, in front of the same model and on the same broker."""

    def __init__(self, model: RunningModel, sbc: KazooSbc) -> None:
        super().__init__(model, self._media_down, self._with_roles)
        self.sbc = sbc

    @contextmanager
    def _media_down(self, target: Target) -> Iterator[Target]:
        saved = self.sbc.media
        self.sbc.set_media(())
        try:
            yield target
        finally:
            self.sbc.set_media(saved)

    def media_down(self, target: Target) -> AbstractContextManager[Target]:
        return self._media_down(target)

    def _start_twin(self, config: Path, wanted: frozenset[str]) -> tuple[KazooSbc, bool]:
        """Kazoo's configuration in ``config`` started beside the first, mirroring to the same capture
        (its own address tells its legs apart), and whether it does. Kazoo 5.x's tree is close to
        Kamailio's MAX_DEFINES: an optional role and the SIP_TRACE_ROLE together may not parse
        (docs/kazoo-sbc-5x-port.md); then the twin runs without the trace role (what the tree allows)."""

        def started(trace_to: tuple[str, int] | None) -> KazooSbc:
            twin = KazooSbc(
                self.sbc.release,
                config_dir=config,
                media=self.sbc.media,
                trusted=self.sbc.trusted,
                broker_url=self.sbc.amqp_url,  # the broker of the first: one per target
                trace_to=trace_to,
            )
            twin.start()
            return twin

        traced = self.sbc.trace_to
        try:
            try:
                return started(traced), traced is not None
            except SbcError as exc:
                if traced is None or TOO_MANY_DEFINES not in str(exc):
                    raise
            return started(None), False
        except (SbcError, BrokerError, OSError, ValueError) as exc:
            raise TargetStartError(
                f"Kazoo's Kamailio configuration with {', '.join(sorted(wanted))}: {exc}"
            ) from exc

    @contextmanager
    def _with_roles(self, target: Target, roles: Mapping[str, bool]) -> Iterator[Target]:
        running = self.sbc.roles & frozenset(OPTIONAL_ROLES)
        on = frozenset(name for name, active in roles.items() if active)
        off = frozenset(roles) - on
        wanted = (running | on) - off
        if wanted == running:
            yield target
            return
        broken = sorted((wanted - running) & set(BROKEN_ON_DEBIAN))
        if broken:
            raise SetupUnsupported("; ".join(f"{name}: {BROKEN_ON_DEBIAN[name]}" for name in broken))
        with tempfile.TemporaryDirectory(prefix="kh-sbc-roles-") as workdir:
            config = Path(workdir) / "kamailio"
            copy_config(self.sbc.config_source, config)
            local = config / "local.cfg"
            local.write_text(set_roles(local.read_text(encoding="utf-8"), on, off), encoding="utf-8")
            twin, traced = self._start_twin(config, wanted)
            logs = {**target.logs, **file_logs({"kamailio": twin.log_path})}
            if not traced:  # its SBC sends no capture: the twin has none to judge by
                logs = {name: source for name, source in logs.items() if name not in _capture_names(target)}
            try:
                yield dataclasses.replace(
                    target,
                    name=f"{target.name} ({'+'.join(sorted(wanted)) or 'no optional roles'})",
                    profile=target.profile.with_roles(wanted),
                    sbc=twin.address,
                    carriers={**target.carriers, "sbc_self": (twin.address[0], None)},
                    logs=logs,
                    setup=SbcSetup(self.model, twin),
                )
            finally:
                twin.stop()


TOO_MANY_DEFINES = "too many defines -- adjust MAX_DEFINES"  # Kamailio's cfg.lex, at its compile-time cap


def _capture_names(target: Target) -> set[str]:
    return {capture.name for capture in target.captures}


@contextmanager
def open_kazoo_sbc(
    profile: Profile,
    *,
    config_dir: Path | None = None,
    route_timeout: float = CATALOG_ROUTE_TIMEOUT,
    name: str = "kazoo-sbc",
) -> Iterator[Target]:
    """Kazoo's Kamailio configuration for ``profile``'s release (or ``config_dir``, default
    $KAZOO_SBC_CONFIG), a private broker and database, in front of a model; all stopped when the block
    ends."""
    reason = kazoo_sbc_available()
    if reason is not None:
        raise TargetStartError(f"the kazoo-sbc target needs Kazoo's Kamailio modules and RabbitMQ: {reason}")
    if config_dir is None and os.environ.get(CONFIG_ENV):
        config_dir = Path(os.environ[CONFIG_ENV])
    followed = profile.with_roles(configuration_roles(profile, config_dir))  # the profile follows it
    model = start_model_for(followed, route_timeout=route_timeout)  # and so does the model
    try:
        embedded = target_for_model(model, followed, roles_for(None), name)
        assert embedded.media is not None
        with loopback_capture(complete=False) as capture:
            sbc = KazooSbc(
                followed.release.name,
                config_dir=config_dir,
                media=dispatcher_rows([embedded.media], node=model.config.node),
                trusted=trusted_rows(model.store, model.config.node),
                broker_url=os.environ.get(AMQP_ENV) or None,
                trace_to=capture.receiver.address("udp"),
            )
            step(f"starting Kazoo's own Kamailio configuration ({followed.release.name}) and its broker")
            try:
                sbc.start()
            except (SbcError, BrokerError, OSError, ValueError) as exc:
                raise TargetStartError(f"Kazoo's Kamailio configuration did not start: {exc}") from exc
            try:
                yield dataclasses.replace(
                    embedded,
                    kind="kazoo-sbc",
                    sbc=sbc.address,
                    carriers={**embedded.carriers, "sbc_self": (sbc.address[0], None)},
                    logs={**embedded.logs, **file_logs({"kamailio": sbc.log_path}), capture.name: capture},
                    setup=SbcSetup(model, sbc),
                )
            finally:
                sbc.stop()
    finally:
        model.stop()
