"""The `docker` target: the lab stack (real Kamailio in front of the model's media and routing roles) in
containers on a Docker engine, driven through the docker SDK.

Once per session: build the images that are missing, create and start the model container, wait until its
media role answers OPTIONS, then the Kamailio container, wait until it answers OPTIONS. Every container
runs with ``network_mode=host`` on loopback ports chosen here. Kamailio's log is its container log
(streamed by DockerSource); the model's freeswitch.log and kazoo.log are written into a host directory
bound into its container. Everything is removed at the end by ``DockerStack.stop()`` — also from an
atexit hook and on SIGTERM/SIGHUP, and containers left behind by a killed run (their owner PID gone)
are removed at the next start.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import importlib
import io
import os
import shutil
import signal
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from harness.kazoo.profiles import Profile
from harness.lab.kamailio import free_ports
from harness.lab.ready import wait_options_answer
from harness.logs.docker_source import DockerSource
from harness.logs.source import LogSource
from harness.model.demo import demo_roles
from harness.model.stack import DEFAULT_NODE
from harness.progress import step
from harness.scenario.docker_build import build_image
from harness.scenario.embedded import CATALOG_ROUTE_TIMEOUT, carrier_roles
from harness.scenario.target import Address, StackAccess, Target
from harness.scenario.targets import TargetStartError

REPO_ROOT = Path(__file__).resolve().parents[2]
ENGINE_HINT = "start one with `docker/engine.sh start` and export the DOCKER_HOST it prints"
LOCAL_BASE_IMAGE = "local/debian:bookworm"  # made by docker/build-base.sh
REGISTRY_BASE_IMAGE = "debian:bookworm-slim"
# role -> (Dockerfile, image tag)
IMAGES: dict[str, tuple[str, str]] = {
    "harness": ("docker/Dockerfile.harness", "kazoo-harness/harness:latest"),
    "model": ("docker/Dockerfile.model", "kazoo-harness/model:latest"),
    "kamailio": ("docker/Dockerfile.kamailio", "kazoo-harness/kamailio:latest"),
}
LABEL_SESSION = "org.kazoo-harness.session"
LABEL_OWNER_PID = "org.kazoo-harness.owner-pid"
LABEL_ROLE = "org.kazoo-harness.role"
MODEL_LOG_DIR = "/var/log/kazoo-model"  # inside the model container
ESL_PASSWORD = "ClueCon"  # the model's default
LISTEN_IP = "127.0.0.1"  # the SBC's address: the demo's authoritative (trusted) proxy
# What each image's build context holds (no .venv, .git or caches; less context, fewer rebuilds). The
# harness and model contexts are equal so that the builder's cache shares their big layers.
_PYTHON_CONTEXT = ("pyproject.toml", "README.md", "conftest.py", "harness", "scenarios", "docker")
CONTEXT_PATHS: dict[str, tuple[str, ...]] = {
    "harness": _PYTHON_CONTEXT,
    "model": _PYTHON_CONTEXT,
    "kamailio": ("harness/__init__.py", "harness/lab", "docker"),
}
BUILD_CA_NAME = "docker/build-ca.crt"  # the Dockerfiles give it to pip when present


class DockerUnavailable(TargetStartError):
    """No Docker engine can be reached (or the SDK is missing)."""


def _docker_sdk() -> Any:
    # Imported by name: mypy run from the repository root resolves ``docker`` to the docker/ folder.
    try:
        return importlib.import_module("docker")
    except ImportError as exc:
        raise DockerUnavailable(f"the docker SDK is not installed (pip install docker): {exc}") from exc


def docker_client(timeout: float = 60.0) -> Any:
    """A client for the engine DOCKER_HOST names (or the default socket); raises DockerUnavailable."""
    docker = _docker_sdk()
    where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock (DOCKER_HOST unset)")
    try:
        client = docker.from_env(timeout=int(timeout))
        client.ping()
    except docker.errors.DockerException as exc:
        raise DockerUnavailable(f"no Docker engine reachable at {where}: {exc}; {ENGINE_HINT}") from exc
    return client


def engine_unavailable_reason() -> str | None:
    """None when an engine answers, else why not (for pytest skips)."""
    try:
        docker_client(timeout=5.0).close()
    except DockerUnavailable as exc:
        return str(exc)
    return None


# -- images ------------------------------------------------------------------------------------------


def _context_filter(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    parts = Path(info.name).parts
    if "__pycache__" in parts or info.name.endswith((".pyc", ".pyo")) or ".egg-info" in info.name:
        return None
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mtime = 0  # stable content for the builder's cache
    return info


def build_ca_bundle() -> Path | None:
    """The CA bundle pip inside the build should trust: $KAZOO_DOCKER_CA_BUNDLE, else the one pip or
    Python trusts here (PIP_CERT, SSL_CERT_FILE, REQUESTS_CA_BUNDLE) — needed behind a TLS-inspecting
    egress proxy, harmless otherwise."""
    for var in ("KAZOO_DOCKER_CA_BUNDLE", "PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        value = os.environ.get(var)
        if value and Path(value).is_file():
            return Path(value)
    return None


def build_context(role: str, root: Path = REPO_ROOT, ca_bundle: Path | None = None) -> io.BytesIO:
    """``role``'s build context as a tar: only what its image needs (CONTEXT_PATHS), plus ``ca_bundle``
    as docker/build-ca.crt."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in CONTEXT_PATHS[role]:
            if (root / name).exists():
                tar.add(root / name, arcname=name, filter=_context_filter)
        if ca_bundle is not None:
            tar.add(ca_bundle, arcname=BUILD_CA_NAME, filter=_context_filter)
    buffer.seek(0)
    return buffer


def default_base_image(client: Any) -> str:
    """$KAZOO_DOCKER_BASE_IMAGE, else the local debootstrap image when present, else Debian's slim one."""
    chosen = os.environ.get("KAZOO_DOCKER_BASE_IMAGE")
    if chosen:
        return chosen
    return LOCAL_BASE_IMAGE if _image_exists(client, LOCAL_BASE_IMAGE) else REGISTRY_BASE_IMAGE


def _image_exists(client: Any, tag: str) -> bool:
    docker = _docker_sdk()
    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def ensure_images(
    client: Any,
    roles: Iterable[str] = ("model", "kamailio"),
    *,
    base_image: str | None = None,
    rebuild: bool = False,
    progress: Callable[[str], None] | None = None,
) -> dict[str, str]:
    """Build the images of ``roles`` that are missing or older than the sources (all of them with
    ``rebuild``); role -> tag. Each build is also tagged with a digest of its context, so an image
    whose context digest tag exists is up to date (a changed harness/ rebuilds the images)."""
    docker = _docker_sdk()
    tags: dict[str, str] = {}
    for role in roles:
        dockerfile, tag = IMAGES[role]
        context = build_context(role, ca_bundle=build_ca_bundle()).getvalue()
        digest = "ctx-" + hashlib.sha256(context).hexdigest()[:16]
        repository = tag.rsplit(":", 1)[0]
        tags[role] = tag
        if not rebuild and _image_exists(client, f"{repository}:{digest}") and _image_exists(client, tag):
            continue
        base = base_image or default_base_image(client)
        (progress or step)(f"building {tag} from {dockerfile} (BASE_IMAGE={base})")
        try:
            image = build_image(  # streamed: each build step is reported as it starts
                client,
                progress=progress,
                fileobj=io.BytesIO(context),
                custom_context=True,
                dockerfile=dockerfile,
                tag=tag,
                buildargs={"BASE_IMAGE": base},
                network_mode="host",  # apt and pip inside the build: no bridge on the private engine
                rm=True,
                forcerm=True,
            )
        except docker.errors.BuildError as exc:
            tail = "".join(
                str(step.get("stream", step.get("error", ""))) for step in list(exc.build_log)[-15:]
            )
            raise TargetStartError(f"building {tag} failed: {exc}\n{tail}") from exc
        except docker.errors.APIError as exc:
            raise TargetStartError(f"building {tag} failed: {exc}") from exc
        image.tag(repository, tag=digest)
        _remove_older_builds(client, repository, keep=digest)
    return tags


def _remove_older_builds(client: Any, repository: str, keep: str) -> None:
    """Untag (and so delete) earlier context builds: under vfs every stale image costs its full size."""
    docker = _docker_sdk()
    for image in client.images.list(name=repository):
        for tag in image.tags:
            if tag.startswith(f"{repository}:ctx-") and tag != f"{repository}:{keep}":
                with contextlib.suppress(docker.errors.APIError):  # e.g. still used by a container
                    client.images.remove(tag)


# -- the stack ---------------------------------------------------------------------------------------


@dataclass
class DockerStack:
    """The lab stack's containers and where they listen; ``stop()`` removes everything (idempotent)."""

    client: Any
    session: str
    profile: str
    log_dir: Path  # host directory bound to the model container's log dir
    containers: dict[str, Any] = field(default_factory=dict)  # role -> Container
    sbc: Address = (LISTEN_IP, 0)
    media: Address = (LISTEN_IP, 0)
    esl: Address = (LISTEN_IP, 0)
    couch: Address = (LISTEN_IP, 0)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def container_id(self, role: str) -> str:
        return str(self.containers[role].id)

    def log_source(self, role: str, name: str) -> Callable[[], LogSource]:
        """A factory of DockerSources on ``role``'s container log (one per scenario)."""
        container_id = self.container_id(role)
        return lambda: DockerSource(container_id, name, client=self.client)

    def stop(self) -> None:
        with self._lock:
            containers, self.containers = self.containers, {}
            _LIVE.discard(self)
        _remove_containers(self.client, containers.values())
        shutil.rmtree(self.log_dir, ignore_errors=True)

    __hash__ = object.__hash__  # kept in a set by identity


def _remove_containers(client: Any, containers: Iterable[Any]) -> None:
    docker = _docker_sdk()
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
    profile: str,
    *,
    client: Any = None,
    ready_timeout: float = 60.0,
    route_timeout: float = CATALOG_ROUTE_TIMEOUT,
) -> DockerStack:
    """Build missing images, create and start the model and Kamailio containers, wait until both answer."""
    client = client or docker_client()
    remove_stale_containers(client)
    images = ensure_images(client, ("model", "kamailio"))
    _install_exit_handlers()
    stack = DockerStack(
        client=client,
        session=uuid.uuid4().hex[:12],
        profile=profile,
        log_dir=Path(tempfile.mkdtemp(prefix="kazoo-docker-logs-")),
    )
    _LIVE.add(stack)
    try:
        sbc, media, esl, couch, own_sbc = free_ports(LISTEN_IP, 5)
        stack.sbc, stack.media, stack.esl, stack.couch = ((LISTEN_IP, p) for p in (sbc, media, esl, couch))
        model_sbc = (LISTEN_IP, own_sbc)  # the model's own SBC role: unused behind Kamailio
        model = _create(
            client,
            stack,
            "model",
            images["model"],
            [
                "--profile", profile,
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
                "--profile", profile,
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


def _text(address: Address) -> str:
    return f"{address[0]}:{address[1]}"


def target_for_stack(
    stack: DockerStack, profile: Profile, route_timeout: float = CATALOG_ROUTE_TIMEOUT
) -> Target:
    roles = demo_roles()
    carriers = carrier_roles(roles, stack.sbc[0])
    carriers["sbc_self"] = (stack.sbc[0], None)  # Kamailio's container address, whatever the roles say
    return Target(
        name="docker",
        kind="docker",
        sbc=stack.sbc,
        media=stack.media,
        profile=profile,
        carriers=carriers,
        numbers=dict(roles.get("numbers", {})),
        log_files={
            "freeswitch": stack.log_dir / "freeswitch.log",
            "kazoo": stack.log_dir / "kazoo.log",
        },
        log_sources={"kamailio": stack.log_source("kamailio", "kamailio")},
        esl=(stack.esl[0], stack.esl[1], ESL_PASSWORD),
        # provisioning (scenario setup) goes through the model container's CouchDB API
        stack=StackAccess(
            couch_url=f"http://{_text(stack.couch)}",
            esl=(stack.esl[0], stack.esl[1], ESL_PASSWORD),
            node=str(roles.get("node", DEFAULT_NODE)),
        ),
        route_timeout=route_timeout,
        silence_window=2.0,
        allow_malformed=True,
        model=None,  # no in-process model: setup goes through provisioning (``stack``)
        close=stack.stop,
    )


def start_docker(profile: Profile) -> Target:
    """The `docker` target for ``profile``; ``target.close()`` (or interpreter exit) removes the stack."""
    return target_for_stack(start_docker_stack(profile.release), profile)


# -- removal at exit, on SIGTERM/SIGHUP --------------------------------------------------------------

_LIVE: set[DockerStack] = set()
_HANDLERS_INSTALLED = False


def stop_all() -> None:
    """Stop every stack this process started (atexit, signals)."""
    for stack in list(_LIVE):
        with contextlib.suppress(Exception):
            stack.stop()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    stop_all()
    # then die of the same signal, as without the handler
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_exit_handlers() -> None:
    """atexit covers normal exit and Ctrl-C (KeyboardInterrupt unwinds pytest); SIGTERM and SIGHUP kill
    without unwinding, so they get a handler — only where none is installed and in the main thread."""
    global _HANDLERS_INSTALLED
    if _HANDLERS_INSTALLED:
        return
    _HANDLERS_INSTALLED = True
    atexit.register(stop_all)
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is signal.SIG_DFL:
            signal.signal(signum, _on_signal)


@contextlib.contextmanager
def docker_stack(profile: str, **kwargs: Any) -> Iterator[DockerStack]:
    stack = start_docker_stack(profile, **kwargs)
    try:
        yield stack
    finally:
        stack.stop()


def main(argv: list[str] | None = None) -> int:
    """``python -m harness.scenario.docker_target build [--rebuild] [--base-image IMG]`` (CI, by hand)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m harness.scenario.docker_target")
    parser.add_argument("action", choices=("build", "check"), help="build the images, or check the engine")
    parser.add_argument("--rebuild", action="store_true", help="build even when the image exists")
    parser.add_argument(
        "--base-image", default=None, help=f"BASE_IMAGE (default: {LOCAL_BASE_IMAGE} if present)"
    )
    parser.add_argument("--roles", default="harness,model,kamailio", help="images to build, comma-separated")
    args = parser.parse_args(argv)
    try:
        client = docker_client()
        if args.action == "build":
            started = time.monotonic()
            tags = ensure_images(
                client,
                args.roles.split(","),
                base_image=args.base_image,
                rebuild=args.rebuild,
                progress=print,
            )
            print(f"images ready in {time.monotonic() - started:.1f} s: {', '.join(tags.values())}")
        else:
            print(f"engine reachable: {client.version().get('Version')}")
    except TargetStartError as exc:
        print(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
