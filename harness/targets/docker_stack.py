"""The `docker` kind: the lab stack (real Kamailio in front of the model's media and routing roles) in
containers on a Docker engine, driven through the docker SDK (engine and images: docker_images.py).

Once per session: build the images that are missing, create and start the model container, wait until its
media role answers OPTIONS, then the Kamailio container, wait until it answers OPTIONS. Every container
runs with ``network_mode=host`` on loopback ports chosen here. Kamailio's log is its container log
(streamed by DockerSource); the model's freeswitch.log and kazoo.log are written into a host directory
bound into its container. Everything is removed when the target's block ends — also from an atexit hook
and on SIGTERM/SIGHUP, and containers left behind by a killed run (their owner PID gone) are removed at
the next start.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import lifetime
from harness.kazoo.access import StackAccess
from harness.kazoo.acls import edge_sources, entries_from_store
from harness.kazoo.profile import Profile
from harness.kazoo.release import DEFAULTS, KazooRelease
from harness.lab.kamailio import TrustedSource, free_ports, style_flags, trusted_flags
from harness.lab.ready import wait_options_answer
from harness.logs.docker_source import DockerSource
from harness.model.demo import demo_roles, load_demo
from harness.progress import step
from harness.targets.docker_images import docker_client, docker_sdk, ensure_images
from harness.targets.embedded import CATALOG_ROUTE_TIMEOUT, carrier_roles
from harness.targets.setup import LAB_ROLES_REASON, ProvisionedSetup
from harness.targets.target import Address, LogFactory, Target, TargetStartError, file_logs

LABEL_SESSION = "org.kazoo-harness.session"
LABEL_OWNER_PID = "org.kazoo-harness.owner-pid"
LABEL_ROLE = "org.kazoo-harness.role"
MODEL_LOG_DIR = "/var/log/kazoo-model"  # inside the model container
LISTEN_IP = "127.0.0.1"  # the SBC's address: the demo's authoritative (trusted) proxy


# -- the stack ---------------------------------------------------------------------------------------


@dataclass
class DockerStack:
    """The lab stack's containers and where they listen; ``stop()`` removes everything (idempotent)."""

    client: Any
    session: str
    release: KazooRelease
    log_dir: Path  # host directory bound to the model container's log dir
    containers: dict[str, Any] = field(default_factory=dict)  # role -> Container
    sbc: Address = (LISTEN_IP, 0)
    media: Address = (LISTEN_IP, 0)
    esl: Address = (LISTEN_IP, 0)
    couch: Address = (LISTEN_IP, 0)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def container_id(self, role: str) -> str:
        return str(self.containers[role].id)

    def log_source(self, role: str, name: str) -> LogFactory:
        """A factory of DockerSources on ``role``'s container log (one per scenario)."""
        container_id = self.container_id(role)
        return lambda: DockerSource(container_id, name, client=self.client)

    def stop(self) -> None:
        with self._lock:
            containers, self.containers = self.containers, {}
        _remove_containers(self.client, containers.values())
        shutil.rmtree(self.log_dir, ignore_errors=True)
        lifetime.unregister(self)

    __hash__ = object.__hash__  # kept in a set by identity


def _remove_containers(client: Any, containers: Iterable[Any]) -> None:
    docker = docker_sdk()
    for container in containers:
        with contextlib.suppress(docker.errors.NotFound):
            try:
                container.remove(force=True)
            except docker.errors.APIError as exc:
                if "already in progress" not in str(exc):
                    raise


def remove_stale_containers(client: Any) -> list[str]:
    """Remove harness containers whose owner process is gone (a run killed with SIGKILL); their names."""
    removed = []
    for container in client.containers.list(all=True, filters={"label": LABEL_SESSION}):
        owner = container.labels.get(LABEL_OWNER_PID, "")
        if owner.isdigit() and _pid_alive(int(owner)):
            continue
        _remove_containers(client, [container])
        removed.append(str(container.name))
    return removed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def wait_answering(address: Address, container: Any, deadline: float, *, want: bytes = b"SIP/2.0 ") -> None:
    """Send OPTIONS to ``address`` until a reply starting with ``want`` comes back; fail when the container
    exits or ``deadline`` (time.monotonic()) passes. Each probe waits up to 0.1 s for its reply."""

    def exited() -> bool:
        container.reload()
        return container.status in ("exited", "dead")

    readiness = wait_options_answer(
        address, deadline, who="docker-ready", exited=exited, want=want, probe_wait=0.1
    )
    ip, port = address
    if readiness == "exited":
        raise TargetStartError(
            f"container {container.name} exited before answering OPTIONS on {ip}:{port}:\n"
            + _log_tail(container)
        )
    if readiness == "timeout":
        raise TargetStartError(
            f"container {container.name} did not answer OPTIONS on {ip}:{port} in time:\n"
            + _log_tail(container)
        )


def _log_tail(container: Any, lines: int = 20) -> str:
    with contextlib.suppress(Exception):
        return bytes(container.logs(tail=lines)).decode("utf-8", "replace")
    return "(no log)"


def _create(client: Any, stack: DockerStack, role: str, image: str, command: list[str], **extra: Any) -> Any:
    container = client.containers.create(
        image,
        command=command,
        name=f"kazoo-harness-{role}-{stack.session}",
        network_mode="host",
        init=True,  # a real PID 1 (signals, zombies) in front of Python / Kamailio
        labels={LABEL_SESSION: stack.session, LABEL_OWNER_PID: str(os.getpid()), LABEL_ROLE: role},
        **extra,
    )
    stack.containers[role] = container  # registered before start: stop() removes it whatever happens
    return container


def start_docker_stack(
    release: KazooRelease,
    *,
    client: Any = None,
    ready_timeout: float = 60.0,
    route_timeout: float = CATALOG_ROUTE_TIMEOUT,
) -> DockerStack:
    """Build missing images, create and start the model and Kamailio containers, wait until both answer."""
    client = client or docker_client()
    remove_stale_containers(client)
    step("checking the model and Kamailio images")
    images = ensure_images(client, ("model", "kamailio"))
    stack = DockerStack(
        client=client,
        session=uuid.uuid4().hex[:12],
        release=release,
        log_dir=Path(tempfile.mkdtemp(prefix="kazoo-docker-logs-")),
    )
    lifetime.register(stack)  # removed at exit, on Ctrl-C, SIGTERM or SIGHUP too
    try:
        sbc, media, esl, couch, own_sbc = free_ports(LISTEN_IP, 5)
        stack.sbc, stack.media, stack.esl, stack.couch = ((LISTEN_IP, p) for p in (sbc, media, esl, couch))
        model_sbc = (LISTEN_IP, own_sbc)  # the model's own SBC role: unused behind Kamailio
        step("creating the model and Kamailio containers (a copy of each image's files under vfs)")
        model = _create(
            client,
            stack,
            "model",
            images["model"],
            [
                "--profile", release.name,
                "--sbc", _text(model_sbc),
                "--media", _text(stack.media),
                "--esl", _text(stack.esl),
                "--couch", _text(stack.couch),
                "--route-timeout", str(route_timeout),
                "--log-dir", MODEL_LOG_DIR,
            ],
            volumes={str(stack.log_dir): {"bind": MODEL_LOG_DIR, "mode": "rw"}},
        )  # fmt: skip
        kamailio = _create(
            client,
            stack,
            "kamailio",
            images["kamailio"],
            [
                "--listen", stack.sbc[0],
                "--port", str(stack.sbc[1]),
                "--media", _text(stack.media),
                *style_flags(release),
                *trusted_flags(_demo_trusted()),
            ],
        )  # fmt: skip
        deadline = time.monotonic() + ready_timeout
        step("starting the model and Kamailio containers")
        model.start()
        wait_answering(stack.media, model, deadline)  # the dispatcher's first probe then finds it up
        kamailio.start()
        wait_answering(stack.sbc, kamailio, deadline, want=b"SIP/2.0 200")
    except BaseException:
        stack.stop()
        raise
    return stack


def _demo_trusted() -> list[TrustedSource]:
    """The trusted sources of the model container's data (the demo's), for the Kamailio container's
    address checks (harness.kazoo.acls.edge_sources)."""
    entries = entries_from_store(load_demo(), DEFAULTS.model_node)
    return [(source.ip, source.mask, source.port) for source in edge_sources(entries)]


def _text(address: Address) -> str:
    return f"{address[0]}:{address[1]}"


def target_for_stack(
    stack: DockerStack, profile: Profile, route_timeout: float = CATALOG_ROUTE_TIMEOUT
) -> Target:
    roles = demo_roles()
    carriers = carrier_roles(roles, stack.sbc[0])
    carriers["sbc_self"] = (stack.sbc[0], None)  # Kamailio's container address, whatever the roles say
    esl = (stack.esl[0], stack.esl[1], DEFAULTS.esl_password)
    return Target(
        name="docker",
        kind="docker",
        profile=profile,
        sbc=stack.sbc,
        media=stack.media,
        carriers=carriers,
        numbers=dict(roles.get("numbers", {})),
        logs={
            **file_logs({n: stack.log_dir / f"{n}.log" for n in ("freeswitch", "kazoo")}),
            "kamailio": stack.log_source("kamailio", "kamailio"),
        },
        # provisioning (scenario setup) goes through the model container's CouchDB API
        stack=StackAccess(
            couch_url=f"http://{_text(stack.couch)}",
            esl=esl,
            node=str(roles.get("node", DEFAULTS.model_node)),
        ),
        route_timeout=route_timeout,
        setup=ProvisionedSetup(fixed_roles=LAB_ROLES_REASON),
        demo_data=True,  # the model image loads the demo data
    )


@contextlib.contextmanager
def open_docker(profile: Profile) -> Iterator[Target]:
    """The `docker` target for ``profile``; the stack is removed when the block ends (or at exit)."""
    with docker_stack(profile.release) as stack:
        yield target_for_stack(stack, profile)


@contextlib.contextmanager
def docker_stack(release: KazooRelease, **kwargs: Any) -> Iterator[DockerStack]:
    stack = start_docker_stack(release, **kwargs)
    try:
        yield stack
    finally:
        stack.stop()
