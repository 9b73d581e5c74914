"""The kinds of target, and the one way to open one: ``with open_target(ref) as target: ...``.

A reference is the name of a kind the harness starts itself (`embedded`, `lab`, `docker`), `model` (a
`kazoo-harness model` already running at its defaults), `HOST:PORT` (a loopback SBC), or a target file
(`FILE` or `FILE#node`; a file may also say `builtin = "lab"`). :func:`resolve` reads a reference without
starting anything — what the scenario schema needs to know (the log sources) comes from there — and
:func:`open_target` starts what it must and stops it when the block ends, also on failure and Ctrl-C.
A new kind registers itself with :func:`register`.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness.kazoo.profile import Profile, ProfileError, load_profile
from harness.targets.capture import SBC_CAPTURE
from harness.targets.target import Address, Target, TargetError, TargetStartError

Opener = Callable[["TargetRef", Profile], AbstractContextManager[Target]]


@dataclass(frozen=True)
class Kind:
    name: str
    help: str
    log_names: tuple[str, ...]  # the log sources its targets have (a file's are read from the file)
    open: Opener
    builtin: bool = True  # named directly (--kazoo-target NAME, `builtin = "NAME"` in a file)
    takes_data: bool = False  # starts the model on a data directory given with the reference


@dataclass(frozen=True)
class TargetRef:
    """A resolved reference: which kind opens it and what is known before it is opened."""

    text: str
    kind: Kind
    profile: str | None = None  # the profile a target file names
    path: Path | None = None  # the target file
    node: str | None = None  # FILE#node
    address: Address | None = None  # HOST:PORT
    reach: bool = True  # a described stack must answer OPTIONS before it is used
    data_dir: Path | None = None  # the CouchDB data (folder shape) the model is started on, for kinds that
    # take data; None: the demo data

    @property
    def log_names(self) -> tuple[str, ...]:
        if self.path is not None and self.kind.name == "file":
            from harness.targets.file import load_target_file

            return load_target_file(self.path).log_names()
        return self.kind.log_names


KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    KINDS[kind.name] = kind
    return kind


def builtin_names() -> list[str]:
    return [k.name for k in KINDS.values() if k.builtin]


def resolve(text: str) -> TargetRef:
    """The kind and static facts of a target reference; TargetError when it names nothing."""
    text = text or "embedded"
    if text in KINDS and KINDS[text].builtin:
        return TargetRef(text, KINDS[text])
    from harness.targets.address import parse_address
    from harness.targets.file import split_target_ref

    address = parse_address(text)
    if address is not None:
        return TargetRef(text, KINDS["address"], address=address)
    file, node = split_target_ref(text)
    path = Path(file)
    if not path.is_file():
        raise TargetError(
            f"no such target {text!r}: use {', '.join(builtin_names())}, HOST:PORT or a TOML target file"
        )
    builtin = _builtin_of(path)
    if builtin is not None:
        name, profile = builtin
        return TargetRef(text, KINDS[name], profile=profile, path=path)
    from harness.targets.file import load_target_file

    return TargetRef(text, KINDS["file"], profile=load_target_file(path).profile, path=path, node=node)


def _builtin_of(path: Path) -> tuple[str, str | None] | None:
    """(kind, profile) of a file that only names a target the harness starts: `builtin = "docker"`."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return None  # the full loader reports it, naming the file and the problem
    value = data.get("builtin")
    if value is None:
        return None
    extra = sorted(set(data) - {"builtin", "name", "profile"})
    if value not in builtin_names() or extra:
        raise TargetError(
            f"{path}: builtin must be one of {', '.join(builtin_names())} and stand with only name/profile"
            + (f" (unexpected: {', '.join(extra)})" if extra else "")
        )
    profile = data.get("profile")
    return str(value), str(profile) if profile is not None else None


def choose_profile(ref: TargetRef, profile: str | Profile | None) -> Profile:
    """The profile asked for, else the one the target file names, else the default release's."""
    if isinstance(profile, Profile):
        return profile
    try:
        return load_profile(profile or ref.profile)
    except ProfileError as exc:
        raise TargetError(str(exc)) from exc


def with_data(ref: TargetRef, data_dir: Path | None) -> TargetRef:
    """``ref`` started on ``data_dir`` (a CouchDB dump in the folder shape `kazoo-harness model --data`
    reads) instead of the demo data; TargetError when its kind starts no model on given data."""
    if data_dir is None:
        return ref
    takers = [k.name for k in KINDS.values() if k.takes_data]
    if not ref.kind.takes_data:
        raise TargetError(
            f"data {data_dir} loads the model a target starts ({', '.join(takers)}); "
            f"{ref.text} ({ref.kind.name}) starts none"
        )
    if not data_dir.is_dir():
        raise TargetError(
            f"data {data_dir}: not a directory (a CouchDB dump in the folder shape `model --data` reads)"
        )
    return dataclasses.replace(ref, data_dir=data_dir)


@contextmanager
def open_target(
    text: str, profile: str | Profile | None = None, *, reach: bool = True, data_dir: Path | None = None
) -> Iterator[Target]:
    """Open the target ``text`` names for the block (TargetError: a bad reference; TargetStartError: it
    could not be started or reached). ``reach=False``: a stack described by a file is not pinged first
    (diagnose reads its documents whether its SBC answers or not). ``data_dir``: see :func:`with_data`."""
    ref = with_data(dataclasses.replace(resolve(text), reach=reach), data_dir)
    chosen = choose_profile(ref, profile)
    with ref.kind.open(ref, chosen) as target:
        yield target


# -- the kinds --------------------------------------------------------------------------------------

MODEL_LOGS = ("freeswitch", "kamailio", "kazoo")
CAPTURED_LOGS = (*MODEL_LOGS, SBC_CAPTURE)  # a kind whose SBC sends HEP to the harness


def _open_embedded(ref: TargetRef, profile: Profile) -> AbstractContextManager[Target]:
    from harness.targets.embedded import open_embedded

    return open_embedded(profile, data_dir=ref.data_dir)


def _open_lab(ref: TargetRef, profile: Profile) -> AbstractContextManager[Target]:
    from harness.targets.lab import open_lab

    return open_lab(profile)


def _open_docker(ref: TargetRef, profile: Profile) -> AbstractContextManager[Target]:
    from harness.targets.docker_stack import open_docker

    return open_docker(profile)


def _open_kazoo_sbc(ref: TargetRef, profile: Profile) -> AbstractContextManager[Target]:
    from harness.targets.kazoo_sbc import open_kazoo_sbc

    return open_kazoo_sbc(profile)


def _open_model(ref: TargetRef, profile: Profile) -> AbstractContextManager[Target]:
    from harness.targets.address import open_running_model

    return open_running_model(profile)


def _open_address(ref: TargetRef, profile: Profile) -> AbstractContextManager[Target]:
    from harness.targets.address import open_address

    assert ref.address is not None
    return open_address(ref.address, profile, ref.text)


@contextmanager
def _open_file(ref: TargetRef, profile: Profile) -> Iterator[Target]:
    from harness.net.gate import SendRefused
    from harness.targets.capture import closing_captures
    from harness.targets.file import load_target_file
    from harness.targets.reach import sbc_unreachable

    assert ref.path is not None
    target = load_target_file(ref.path).to_target(profile, ref.node)
    try:
        target.gate.check_destination(target.sbc)
    except SendRefused as exc:
        raise TargetError(str(exc)) from exc
    source = target.carriers.get("listed") or next(iter(target.carriers.values()), ("127.0.0.1", None))
    problem = sbc_unreachable(target.sbc, source[0], target.gate) if ref.reach else None
    if problem:  # an infrastructure error
        raise TargetStartError(f"SBC unreachable, {problem}; target {target.name}")
    with closing_captures(target):  # its HEP receivers (kind = "hep") live as long as the target
        yield target


register(
    Kind("embedded", "the Kazoo model, started in-process on free loopback ports", MODEL_LOGS, _open_embedded,
         takes_data=True)
)  # fmt: skip
register(Kind("lab", "a real Kamailio with our Kazoo-like configuration in front of the model", CAPTURED_LOGS,
              _open_lab))  # fmt: skip
register(Kind("docker", "the lab stack in containers on a Docker engine", MODEL_LOGS, _open_docker))
register(Kind("kazoo-sbc", "Kazoo's own Kamailio configuration in front of the model", CAPTURED_LOGS,
              _open_kazoo_sbc))  # fmt: skip
register(Kind("model", "`kazoo-harness model` already running at its default addresses", ("freeswitch",),
              _open_model))  # fmt: skip
register(Kind("address", "an SBC at a loopback HOST:PORT", (), _open_address, builtin=False))
register(Kind("file", "a stack described by a TOML target file", (), _open_file, builtin=False))
