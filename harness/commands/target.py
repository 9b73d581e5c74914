"""`kazoo-harness target check FILE`: validate a target file and probe every endpoint it names.

Exit status: 0 all probes work, 1 a probe failed, 2 the file does not validate.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import requests
import typer
from rich.console import Console
from rich.table import Table

from harness.kazoo.couch import CouchClient, CouchError
from harness.kazoo.esl import EslClient, EslError
from harness.scenario.safety import check_destination, redact
from harness.scenario.target import Target, TargetError
from harness.scenario.targetfile import TargetFile, esl_password, load_target_file

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


async def _sbc_probe(target: Target, spec: TargetFile) -> list[Probe]:
    from harness.scenario.probe import describe_exchange, options_ping

    source = spec.carriers.get("listed") or next(iter(spec.carriers.values()), ("127.0.0.1", None))
    out = []
    for node in spec.sbc:
        start = time.monotonic()
        try:
            check_destination(target, node.address)
            exchange = await options_ping(source[0], node.address, PROBE_TIMEOUT)
        except (TargetError, OSError) as exc:
            out.append(Probe("SBC OPTIONS", f"{node.name} {node.host}:{node.port}", False, str(exc)))
            continue
        got = describe_exchange(exchange)
        ok = exchange.final is not None and exchange.final.code < 300
        out.append(
            Probe(
                "SBC OPTIONS",
                f"{node.name} {node.host}:{node.port}",
                ok,
                f"{got} from {source[0]}, {_timed(start)}",
            )
        )
    return out


async def _esl_probe(spec: TargetFile) -> list[Probe]:
    out = []
    for endpoint in spec.esl:
        start = time.monotonic()
        password = esl_password(endpoint.password_env)
        where = f"{endpoint.name} {endpoint.host}:{endpoint.port}"
        try:
            client = await EslClient.open(endpoint.host, endpoint.port, password, timeout=PROBE_TIMEOUT)
            async with client:
                status = (await client.api("status")).splitlines()
            out.append(Probe("event socket auth", where, True, f"{(status or [''])[-1]}, {_timed(start)}"))
        except EslError as exc:
            cause = exc.__cause__
            why = str(exc) if not str(exc).endswith(": ") else f"{exc}{type(cause).__name__}"
            out.append(Probe("event socket auth", where, False, why))
    return out


def _couch_probe(target: Target) -> list[Probe]:
    access = target.stack
    if access is None or not access.couch_url:
        return []
    start = time.monotonic()
    client = CouchClient(
        access.couch_url,
        access.couch_username,
        access.couch_password,
        timeout=PROBE_TIMEOUT,
        strip_db_slashes=access.strip_db_slashes,
    )
    with client:
        try:
            info = client.server_info()
            ok = client.get_doc("system_config", "ecallmgr") is not None
            detail = f"{info.get('couchdb', '?')} {info.get('version', '')}; system_config/ecallmgr " + (
                "readable" if ok else "missing"
            )
            return [Probe("CouchDB", access.couch_url, ok, f"{detail}, {_timed(start)}")]
        except CouchError as exc:
            return [Probe("CouchDB", access.couch_url, False, f"{exc.status} {exc.error}: {exc.reason}")]


def _crossbar_probe(target: Target) -> list[Probe]:
    access = target.stack
    if access is None or not access.crossbar_url:
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


def probe_target(spec: TargetFile) -> list[Probe]:
    """Every probe of a validated target file (also the Python API)."""
    from harness.kazoo.profiles import load_profile

    target = spec.to_target(load_profile(spec.profile))

    async def live() -> list[Probe]:
        return [*(await _sbc_probe(target, spec)), *(await _esl_probe(spec))]

    probes = asyncio.run(live())
    return probes + _couch_probe(target) + _crossbar_probe(target)


@app.command("check")
def check(file: Annotated[Path, typer.Argument(help="a TOML target file")]) -> None:
    """Validate FILE, then probe each endpoint: OPTIONS to every SBC node, event-socket auth, CouchDB and
    Crossbar. Exit status: 0 all work, 1 a probe failed, 2 the file does not validate."""
    try:
        spec = load_target_file(file)
    except TargetError as exc:
        typer.echo(f"kazoo-harness target check: {exc}", err=True)
        raise typer.Exit(2) from None
    secrets = spec.secrets()
    missing = sorted({name for name in spec.secret_envs() if not os.environ.get(name)})
    probes = probe_target(spec)
    console = Console(width=160)
    table = Table(title=f"target {spec.name} ({file}), profile {spec.profile}")
    for column in ("probe", "endpoint", "result", "detail"):
        table.add_column(column, overflow="fold")
    for p in probes:
        table.add_row(p.what, p.endpoint, "[green]ok[/]" if p.ok else "[red]FAIL[/]", p.detail)
    with console.capture() as captured:
        console.print(table)
        safety = spec.safety
        console.print(
            f"safety: allow_malformed={safety.allow_malformed} "
            f"allow_provisioning={safety.allow_provisioning} "
            f"rate_limit={safety.rate_limit or 'none'}/s; SBC nodes: {', '.join(n.name for n in spec.sbc)}",
            markup=False,
            highlight=False,
        )
        if missing:
            console.print(
                f"environment variables not set: {', '.join(missing)}", markup=False, highlight=False
            )
    typer.echo(redact(captured.get(), secrets), nl=False)
    raise typer.Exit(0 if all(p.ok for p in probes) else 1)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="target")
