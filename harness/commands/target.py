"""`kazoo-harness target check REF`: validate a target file (or start a built-in target) and probe every
endpoint it names.

Exit status: 0 all probes work, 1 a probe failed, 2 the file does not validate, 3 a built-in target
could not be started.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from typing import Annotated, NoReturn

import requests
import typer
from rich.console import Console
from rich.table import Table

from harness.commands.common import EXIT_USAGE, opened
from harness.kazoo.access import couch_client
from harness.kazoo.couch import CouchError
from harness.kazoo.esl import EslClient, EslError
from harness.net.gate import SendRefused
from harness.targets.file import TargetFile, esl_password, load_target_file
from harness.targets.kinds import choose_profile, resolve
from harness.targets.reach import describe_exchange, options_ping
from harness.targets.redact import redact
from harness.targets.target import Target, TargetError

PROBE_TIMEOUT = 3.0
app = typer.Typer(help="Target files: validate and probe.", no_args_is_help=True)


@dataclass
class Probe:
    what: str
    endpoint: str
    ok: bool
    detail: str


def _timed(start: float) -> str:
    return f"{(time.monotonic() - start) * 1000:.0f} ms"


async def _sbc_probe(target: Target) -> list[Probe]:
    source = target.carriers.get("listed") or next(iter(target.carriers.values()), ("127.0.0.1", None))
    out = []
    for name, address in (target.sbc_nodes or {"sbc": target.sbc}).items():
        start = time.monotonic()
        where = f"{name} {address[0]}:{address[1]}"
        try:
            exchange = await options_ping(source[0], address, target.gate, PROBE_TIMEOUT)
        except (SendRefused, OSError) as exc:
            out.append(Probe("SBC OPTIONS", where, False, str(exc)))
            continue
        ok = exchange.final is not None and exchange.final.code < 300
        out.append(
            Probe(
                "SBC OPTIONS", where, ok, f"{describe_exchange(exchange)} from {source[0]}, {_timed(start)}"
            )
        )
    return out


async def _esl_probe(endpoints: list[tuple[str, str, int, str]]) -> list[Probe]:
    out = []
    for name, host, port, password in endpoints:
        start = time.monotonic()
        where = f"{name} {host}:{port}"
        try:
            client = await EslClient.open(host, port, password, timeout=PROBE_TIMEOUT)
            async with client:
                status = (await client.api("status")).splitlines()
            out.append(Probe("event socket auth", where, True, f"{(status or [''])[-1]}, {_timed(start)}"))
        except EslError as exc:
            cause = exc.__cause__
            why = str(exc) if not str(exc).endswith(": ") else f"{exc}{type(cause).__name__}"
            out.append(Probe("event socket auth", where, False, why))
    return out


def _esl_endpoints(target: Target, spec: TargetFile | None) -> list[tuple[str, str, int, str]]:
    """Every event socket: a file's [[esl]] endpoints, else the target's own."""
    if spec is not None:
        return [(e.name, e.host, e.port, esl_password(e.password_env)) for e in spec.esl]
    esl = target.stack.esl
    return [("freeswitch", esl[0], esl[1], esl[2])] if esl else []


def _couch_probe(target: Target) -> list[Probe]:
    access = target.stack
    client = couch_client(access, timeout=PROBE_TIMEOUT)
    if client is None:
        return []
    start = time.monotonic()
    with client:
        try:
            info = client.server_info()
            ok = client.get_doc("system_config", "ecallmgr") is not None
            detail = f"{info.get('couchdb', '?')} {info.get('version', '')}; system_config/ecallmgr " + (
                "readable" if ok else "missing"
            )
            return [Probe("CouchDB", client.url, ok, f"{detail}, {_timed(start)}")]
        except CouchError as exc:
            return [Probe("CouchDB", client.url, False, f"{exc.status} {exc.error}: {exc.reason}")]


def _crossbar_probe(target: Target) -> list[Probe]:
    access = target.stack
    if not access.crossbar_url:
        return []
    url = access.crossbar_url.rstrip("/")
    start = time.monotonic()
    try:
        if access.crossbar_api_key:
            response = requests.put(
                f"{url}/v2/api_auth",
                json={"data": {"api_key": str(access.crossbar_api_key)}},
                timeout=PROBE_TIMEOUT,
            )
            ok = response.status_code == 201 or response.status_code == 200
            detail = f"api_auth -> {response.status_code}"
        else:
            response = requests.get(f"{url}/v2/about", timeout=PROBE_TIMEOUT)
            ok = response.status_code in (200, 401)
            detail = f"GET /v2/about -> {response.status_code} (no api_key_env: reachability only)"
    except requests.RequestException as exc:
        return [Probe("Crossbar", url, False, f"unreachable: {type(exc).__name__}")]
    return [Probe("Crossbar", url, ok, f"{detail}, {_timed(start)}")]


def probe_target(target: Target, spec: TargetFile | None = None) -> list[Probe]:
    """Every probe of a target (also the Python API); ``spec``: the file it was read from, if any."""

    async def live() -> list[Probe]:
        return [*(await _sbc_probe(target)), *(await _esl_probe(_esl_endpoints(target, spec)))]

    probes = asyncio.run(live())
    return probes + _couch_probe(target) + _crossbar_probe(target)


@app.command("check")
def check(ref: Annotated[str, typer.Argument(help="a TOML target file, or a built-in target name")]) -> None:
    """Validate REF, then probe each endpoint: OPTIONS to every SBC node, event-socket auth, CouchDB and
    Crossbar. A built-in target (`builtin = "lab"`, `docker`, ...) is started for the check and stopped.
    Exit status: 0 all work, 1 a probe failed, 2 the file does not validate, 3 it could not be started."""
    try:
        resolved = resolve(ref)
        spec = load_target_file(resolved.path) if resolved.kind.name == "file" and resolved.path else None
    except TargetError as exc:
        typer.echo(f"kazoo-harness target check: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    if spec is not None:  # a real stack: probe what it names, reachable or not (the table says which)
        target = spec.to_target(choose_profile(resolved, None))
        _report(ref, target, spec, probe_target(target, spec))
    with opened(ref) as started:
        _report(ref, started, None, probe_target(started))


def _report(ref: str, target: Target, spec: TargetFile | None, probes: list[Probe]) -> NoReturn:
    missing = sorted({name for name in spec.secret_envs() if not os.environ.get(name)}) if spec else []
    console = Console(width=160)
    table = Table(title=f"target {spec.name if spec else target.name} ({ref}), profile {target.profile.name}")
    for column in ("probe", "endpoint", "result", "detail"):
        table.add_column(column, overflow="fold")
    for p in probes:
        table.add_row(p.what, p.endpoint, "[green]ok[/]" if p.ok else "[red]FAIL[/]", p.detail)
    with console.capture() as captured:
        console.print(table)
        policy = target.policy
        console.print(
            f"safety: allow_malformed={policy.allow_malformed} "
            f"allow_provisioning={policy.allow_provisioning} rate_limit={policy.rate_limit or 'none'}/s; "
            "SBC nodes: "
            f"{', '.join(target.sbc_nodes) or target.name}",
            markup=False,
            highlight=False,
        )
        if missing:
            console.print(
                f"environment variables not set: {', '.join(missing)}", markup=False, highlight=False
            )
    typer.echo(redact(captured.get(), target.secrets), nl=False)
    raise typer.Exit(0 if all(p.ok for p in probes) else 1)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="target")
