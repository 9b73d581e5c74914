"""A static reading of a Kamailio configuration tree: the files it includes, in order, and the route
blocks they define. Pre-processor conditions (``#!ifdef``) are not evaluated, so every role's file is
seen whether or not local.cfg switches the role on: what a port has to cover, not what one run loads."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path

# include_file / import_file, with or without the pre-processor form (#!include_file); a quoted name
_INCLUDE = re.compile(r'^[ \t]*(?:#!)?(?:include_file|import_file)[ \t]+"([^"]+)"', re.MULTILINE)
_ROUTE = re.compile(r"^[ \t]*route\[([A-Za-z0-9_]+)\]", re.MULTILINE)
_TOKEN = re.compile(f"{_INCLUDE.pattern}|{_ROUTE.pattern}", re.MULTILINE)
# the statement `routes(PREFIX);` (optionally quoted) of 2600Hz's Kamailio fork, alone on its line
ROUTES_CALL = re.compile(r'^[ \t]*routes\("?([^")]+?)"?\);[ \t]*$', re.MULTILINE)


def walk(
    config_dir: Path, entry: str = "kamailio.cfg", names: Mapping[str, str] | None = None
) -> Iterator[tuple[str, str]]:
    """Yield ``("include", file)`` and ``("route", name)`` in the order Kamailio reads them.

    ``names`` replaces pre-processor names inside include file names (``dispatcher-role-MAJOR.cfg``);
    a file that does not exist is skipped, as ``import_file`` does (and ``include_file`` would fail)."""
    seen: set[Path] = set()

    def visit(name: str) -> Iterator[tuple[str, str]]:
        for key, value in (names or {}).items():
            name = name.replace(key, value)
        path = Path(name) if Path(name).is_absolute() else config_dir / name
        if path in seen or not path.is_file():
            return
        seen.add(path)
        yield "include", name
        for match in _TOKEN.finditer(path.read_text(encoding="utf-8")):
            if match.group(1) is not None:
                yield from visit(match.group(1))
            else:
                yield "route", match.group(2)

    yield from visit(entry)


def route_blocks(
    config_dir: Path, entry: str = "kamailio.cfg", names: Mapping[str, str] | None = None
) -> list[str]:
    """The names of the ``route[...]`` blocks of the tree, in definition order (first definition wins)."""
    out: list[str] = []
    for kind, value in walk(config_dir, entry, names):
        if kind == "route" and value not in out:
            out.append(value)
    return out


def routes_calls(config_dir: Path, file: str) -> list[str]:
    """The prefixes of the ``routes(PREFIX);`` statements of one file, in order (with repeats)."""
    return ROUTES_CALL.findall((config_dir / file).read_text(encoding="utf-8"))
