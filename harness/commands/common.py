"""What the subcommands share: exit codes, the one way to fail, and opening a target (any kind, through
harness.targets.open_target) with its errors turned into exit codes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from harness.kazoo.release import DEFAULT_RELEASE, RELEASES
from harness.targets.kinds import builtin_names, open_target
from harness.targets.target import Target, TargetError, TargetStartError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INFRA = 0, 1, 2, 3  # 1: scenario failures, or a cause found


def fail(message: str, code: int = EXIT_USAGE, prefix: str = "error") -> NoReturn:
    typer.echo(f"{prefix}: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def opened(
    ref: str,
    profile: str | None = None,
    *,
    what: str = "--target",
    reach: bool = True,
    data_dir: Path | None = None,
) -> Iterator[Target]:
    """The target ``ref`` names (started on ``data_dir`` where its kind takes data), open for the block:
    a bad reference exits 2, a target that cannot be started or reached exits 3 (the same for every kind:
    built-in, HOST:PORT or a file)."""
    with ExitStack() as stack:
        try:
            target = stack.enter_context(open_target(ref, profile, reach=reach, data_dir=data_dir))
        except TargetError as exc:
            fail(f"{what} {ref}: {exc}")
        except TargetStartError as exc:
            fail(f"{what} {ref}: {exc}", EXIT_INFRA)
        yield target


# The --target and --profile options every command that opens a target takes, spelled once
TargetOption = Annotated[
    str,
    typer.Option(
        "--target",
        envvar="KAZOO_TARGET",
        help=f"{', '.join(builtin_names())}, HOST:PORT, or a target file (default: embedded)",
    ),
]
ProfileOption = Annotated[
    str | None,
    typer.Option(
        "--profile",
        envvar="KAZOO_PROFILE",
        help=f"{', '.join(RELEASES)} or a profile file (default: the target file's, else "
        f"{DEFAULT_RELEASE.name})",
    ),
]
