"""`kazoo-harness model`: run the embedded Kazoo stack in the foreground until Ctrl-C / SIGTERM.

Exit codes: 0 clean shutdown, 2 bad flags (also a non-loopback address), 3 a listener could not bind.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import signal
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from harness.kazoo.profiles import ProfileError, load_profile
from harness.model.sbc import ROLE_SWITCHES
from harness.model.stack import PROFILES, ModelConfig, ModelStack

EXIT_BAD_FLAGS = 2
EXIT_CANNOT_BIND = 3
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


def _fail(code: int, message: str) -> NoReturn:
    typer.echo(f"kazoo-harness model: {message}", err=True)
    raise typer.Exit(code)


def parse_hostport(flag: str, text: str) -> tuple[str, int]:
    """``HOST:PORT`` with a loopback IPv4 host (port 0 = a free port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        _fail(EXIT_BAD_FLAGS, f"{flag} wants HOST:PORT, not {text!r}")
    try:
        if ipaddress.ip_address(host) not in LOOPBACK:
            raise ValueError
    except ValueError:
        _fail(
            EXIT_BAD_FLAGS,
            f"{flag}: {host!r} is not a loopback address (127.0.0.0/8); the model never leaves lo",
        )
    return host, int(port)


def parse_switches(items: list[str]) -> dict[str, bool]:
    out: dict[str, bool] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip().lower().replace("-", "_")
        if not sep or value.lower() not in ("on", "off") or name not in ROLE_SWITCHES:
            _fail(
                EXIT_BAD_FLAGS,
                f"--role-switch wants NAME=on|off with NAME in {', '.join(ROLE_SWITCHES)}, not {item!r}",
            )
        out[name] = value.lower() == "on"
    return out


def build_config(
    profile: str,
    data: Path | None,
    log_dir: Path | None,
    sbc: str,
    media: str,
    esl: str,
    couch: str,
    role_switch: list[str],
    route_timeout: float,
) -> ModelConfig:
    roles: dict[str, bool] = {}
    if profile not in PROFILES:  # a profile file: the model behaves as the release (and roles) it describes
        try:
            loaded = load_profile(profile)
        except ProfileError as exc:
            _fail(EXIT_BAD_FLAGS, f"--profile: {exc}")
        profile, roles = loaded.release, dict(loaded.roles)
    if data is not None and not data.is_dir():
        _fail(EXIT_BAD_FLAGS, f"--data {data}: not a directory")
    if route_timeout < 0:
        _fail(EXIT_BAD_FLAGS, "--route-timeout must not be negative")
    sbc_host, sbc_port = parse_hostport("--sbc", sbc)
    media_host, media_port = parse_hostport("--media", media)
    esl_host, esl_port = parse_hostport("--esl", esl)
    couch_host, couch_port = parse_hostport("--couch", couch)
    return ModelConfig(
        profile=profile,
        data_dir=data,
        log_dir=log_dir,
        host=sbc_host,
        sbc_host=sbc_host,
        sbc_port=sbc_port,
        media_host=media_host,
        media_port=media_port,
        esl_host=esl_host,
        esl_port=esl_port,
        couch_host=couch_host,
        couch_port=couch_port,
        role_switches={**roles, **parse_switches(role_switch)},
        route_timeout=route_timeout,
    )


def describe_listeners(stack: ModelStack) -> dict[str, object]:
    sbc_host, sbc_port = stack.sbc_address
    media_host, media_port = stack.media_address
    esl_host, esl_port = stack.esl_address
    return {
        "profile": stack.config.profile,
        "sbc": {"udp": f"{sbc_host}:{sbc_port}", "tcp": f"{sbc_host}:{sbc_port}"},
        "media": {"udp": f"{media_host}:{media_port}", "tcp": f"{media_host}:{media_port}"},
        "esl": f"{esl_host}:{esl_port}",
        "couch_url": stack.couch_url,
        "log_dir": str(stack.log_dir),
        "node": stack.config.node,
    }


async def serve(config: ModelConfig, ready_file: Path | None) -> None:
    stack = ModelStack(config)
    try:
        await stack.start()
    except OSError as exc:
        await stack.stop()  # release the listeners that did bind
        _fail(EXIT_CANNOT_BIND, f"cannot bind a listener: {exc}")
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    info = describe_listeners(stack)
    sbc = info["sbc"]
    media = info["media"]
    assert isinstance(sbc, dict) and isinstance(media, dict)
    roles_on = [name for name, on in config.role_switches.items() if on]
    with_roles = f", Kamailio roles {', '.join(roles_on)}" if roles_on else ""
    typer.echo(f"Kazoo model ({config.profile}{with_roles}) listening:")
    typer.echo(f"  SBC (Kamailio)        udp {sbc['udp']}  tcp {sbc['tcp']}")
    typer.echo(f"  media (FreeSWITCH)    udp {media['udp']}  tcp {media['tcp']}")
    typer.echo(f"  event socket          {info['esl']}  (password {config.esl_password})")
    typer.echo(f"  CouchDB API           {info['couch_url']}")
    typer.echo(f"  logs                  {info['log_dir']}")
    if ready_file is not None:
        tmp = ready_file.with_name(ready_file.name + ".tmp")
        tmp.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        tmp.replace(ready_file)  # atomic: a watcher never reads half a file
    typer.echo("Ctrl-C to stop.")
    try:
        await stopping.wait()
    finally:
        await stack.stop()
        typer.echo("Kazoo model stopped.")


def model(
    profile: Annotated[
        str,
        typer.Option(
            envvar="KAZOO_PROFILE",
            help="Kazoo release the model behaves as: kazoo-4.3, kazoo-5, or a profile file (its release).",
        ),
    ] = "kazoo-4.3",
    data: Annotated[
        Path | None, typer.Option(help="Data directory in CouchDB's folder shape (default: the demo data).")
    ] = None,
    log_dir: Annotated[
        Path | None,
        typer.Option(help="Where kamailio.log, freeswitch.log, kazoo.log go (default: a new temp dir)."),
    ] = None,
    sbc: Annotated[str, typer.Option(help="SBC (Kamailio) UDP+TCP address.")] = "127.0.0.1:5060",
    media: Annotated[
        str, typer.Option(help="Media (FreeSWITCH sipinterface_1) UDP+TCP address.")
    ] = "127.0.0.1:11000",
    esl: Annotated[str, typer.Option(help="FreeSWITCH event socket address.")] = "127.0.0.1:8021",
    couch: Annotated[str, typer.Option(help="CouchDB API address.")] = "127.0.0.1:5984",
    role_switch: Annotated[
        list[str] | None,
        typer.Option(help=f"Optional Kamailio role NAME=on|off ({', '.join(ROLE_SWITCHES)}); repeatable."),
    ] = None,
    route_timeout: Annotated[float, typer.Option(help="Route fetch timeout in seconds (Kazoo: ~2.6).")] = 2.6,
    ready_file: Annotated[
        Path | None, typer.Option(help="Write the listener addresses as JSON here once listening.")
    ] = None,
) -> None:
    """Run the embedded Kazoo stack (Kamailio, FreeSWITCH, Kazoo apps, CouchDB API) on loopback."""
    config = build_config(profile, data, log_dir, sbc, media, esl, couch, role_switch or [], route_timeout)
    asyncio.run(serve(config, ready_file))


def register(app: typer.Typer) -> None:
    app.command("model")(model)
