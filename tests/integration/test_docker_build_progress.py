"""An image build on the Docker engine reports each step while it runs (harness.targets.docker_images).

A two-step image FROM scratch (no base image, no network): the build takes well under a second, and the
steps come from the engine's own streamed build log.
"""

from __future__ import annotations

import io
import tarfile
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from harness.progress import listening
from harness.targets.docker_images import build_image, docker_client, engine_unavailable_reason

_SKIP_REASON = engine_unavailable_reason()
pytestmark = pytest.mark.skipif(_SKIP_REASON is not None, reason=_SKIP_REASON or "")


def _context(dockerfile: str, files: dict[str, bytes]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in {"Dockerfile": dockerfile.encode(), **files}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


@pytest.fixture
def client() -> Iterator[Any]:
    c = docker_client()
    try:
        yield c
    finally:
        c.close()


def test_each_build_step_is_reported_as_a_progress_step(client: Any) -> None:
    import docker

    tag = f"kazoo-harness-test/progress:{uuid.uuid4().hex[:8]}"
    context = _context('FROM scratch\nCOPY hello.txt /hello.txt\nLABEL kazoo-harness-test="1"\n',
                       {"hello.txt": b"hello\n"})  # fmt: skip
    steps: list[str] = []
    with listening(steps.append):
        image = build_image(client, tag=tag, fileobj=context, custom_context=True, rm=True, forcerm=True)
    try:
        assert tag in image.tags
        assert image.labels.get("kazoo-harness-test") == "1"
        assert [s.split(": ", 1)[1] for s in steps if ": Step " in s] == [
            "Step 1/3 : FROM scratch",
            "Step 2/3 : COPY hello.txt /hello.txt",
            'Step 3/3 : LABEL kazoo-harness-test="1"',
        ]
        assert all(s.startswith(f"building {tag} (") for s in steps[:-1])
        assert steps[-1].startswith(f"built {tag} in ")
    finally:
        client.images.remove(image.id, force=True)

    broken = _context("FROM scratch\nCOPY missing.txt /missing.txt\n", {})
    with pytest.raises(docker.errors.BuildError, match=r"missing\.txt"):
        build_image(client, tag=tag, fileobj=broken, custom_context=True, rm=True, forcerm=True)
