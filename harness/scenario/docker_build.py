"""One docker image build that reports each step as the engine starts it.

The SDK's ``client.images.build`` returns only when the build is over (minutes under vfs, with nothing to
show meanwhile); the low-level API streams the build log, so each ``Step N/M : ...`` line becomes a
progress step (harness.progress) with the time since the build began.
"""

from __future__ import annotations

import importlib
import re
import time
from collections.abc import Callable
from typing import Any

from harness.progress import step

_BUILT = re.compile(r"Successfully built ([0-9a-f]{12,64})")


def build_image(
    client: Any, *, tag: str, progress: Callable[[str], None] | None = None, **build_args: Any
) -> Any:
    """Build like ``client.images.build(tag=tag, **build_args)`` and return the image; every build step
    goes to ``progress`` (default: harness.progress.step). Raises docker.errors.BuildError on failure."""
    docker: Any = importlib.import_module("docker")  # imported on use, like docker_target does

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


__all__ = ["build_image"]
