"""Docker engine and images for the `docker` kind: the engine client (DOCKER_HOST), the build contexts
(only what each image needs), and the images built when missing or older than the sources, each build
step reported as the engine starts it (harness.progress).

``python -m harness.targets.docker_images build [--rebuild] [--base-image IMG]`` builds them (CI, by hand).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import os
import re
import tarfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from harness.progress import step
from harness.targets.target import TargetStartError

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


def docker_sdk() -> Any:
    # Imported by name: mypy run from the repository root resolves ``docker`` to the docker/ folder.
    try:
        return importlib.import_module("docker")
    except ImportError as exc:
        raise DockerUnavailable(f"the docker SDK is not installed (pip install docker): {exc}") from exc


def docker_client(timeout: float = 60.0) -> Any:
    """A client for the engine DOCKER_HOST names (or the default socket); raises DockerUnavailable."""
    docker = docker_sdk()
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
    docker = docker_sdk()
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
    docker = docker_sdk()
    tags: dict[str, str] = {}
    for role in roles:
        dockerfile, tag = IMAGES[role]
        context = build_context(role, ca_bundle=build_ca_bundle()).getvalue()
        digest = "ctx-" + hashlib.sha256(context).hexdigest()[:16]
        repository = tag.rsplit(":", 1)[0]
        tags[role] = tag
        built = f"{repository}:{digest}"
        if not rebuild and _image_exists(client, built):
            # `tag` may name another checkout's build on a shared engine: put it back on this context's
            if not _image_exists(client, tag) or client.images.get(tag).id != client.images.get(built).id:
                client.images.get(built).tag(repository, tag=tag.rsplit(":", 1)[1])
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


_BUILT = re.compile(r"Successfully built ([0-9a-f]{12,64})")


def build_image(
    client: Any, *, tag: str, progress: Callable[[str], None] | None = None, **build_args: Any
) -> Any:
    """Build like ``client.images.build(tag=tag, **build_args)`` and return the image, reporting every
    build step to ``progress`` (default: harness.progress.step) with the time since the build began.
    The SDK's ``images.build`` returns only when the build is over (minutes under vfs, with nothing to
    show meanwhile); the low-level API streams the build log. Raises docker.errors.BuildError."""
    docker = docker_sdk()
    report = progress or step
    started = time.monotonic()
    log: list[dict[str, Any]] = []
    image_id = None
    for chunk in client.api.build(tag=tag, decode=True, **build_args):
        log.append(chunk)
        if "error" in chunk:
            raise docker.errors.BuildError(str(chunk["error"]).strip(), log)
        text = str(chunk.get("stream", ""))
        if text.startswith("Step "):
            report(f"building {tag} ({time.monotonic() - started:.0f} s): {text.strip()[:120]}")
        built = _BUILT.search(text)
        image_id = chunk.get("aux", {}).get("ID") or (built.group(1) if built else image_id)
    if image_id is None:
        raise docker.errors.BuildError(f"the build of {tag} ended without an image", log)
    report(f"built {tag} in {time.monotonic() - started:.0f} s")
    return client.images.get(image_id)


def _remove_older_builds(client: Any, repository: str, keep: str) -> None:
    """Untag (and so delete) earlier context builds: under vfs every stale image costs its full size."""
    docker = docker_sdk()
    for image in client.images.list(name=repository):
        for tag in image.tags:
            if tag.startswith(f"{repository}:ctx-") and tag != f"{repository}:{keep}":
                with contextlib.suppress(docker.errors.APIError):  # e.g. still used by a container
                    client.images.remove(tag)


def main(argv: list[str] | None = None) -> int:
    """``python -m harness.targets.docker_images build [--rebuild] [--base-image IMG]`` (CI, by hand)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m harness.targets.docker_images")
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
