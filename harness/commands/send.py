"""`kazoo-harness send`: one crafted INVITE from a chosen source address, printed as a ladder or JSON.

Exit codes: 0 the exchange ran (whatever the response), 2 bad flags (also a non-loopback address),
3 the target could not be used (nothing listens, connection or TLS handshake failed, message too large).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import secrets
import ssl
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from harness.commands.mutators import print_mutators
from harness.net.carrier import TRANSPORTS, CarrierUA
from harness.net.exchange import Address, Exchange
from harness.scenario.safety import before_send, check_destination
from harness.scenario.target import Target, TargetError
from harness.sip import builder
from harness.sip.digest import Credentials
from harness.sip.mutators import apply_mutators, parse_spec

EXIT_BAD_FLAGS = 2
EXIT_UNUSABLE_TARGET = 3
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


def fail(message: str, code: int = EXIT_BAD_FLAGS) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def loopback_ip(text: str, what: str) -> str:
    """``text`` as a loopback IPv4 address (``localhost`` allowed); exit 2 otherwise."""
    host = "127.0.0.1" if text == "localhost" else text
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        fail(f"{what} {text!r} is not an IPv4 address")
    if ip not in LOOPBACK:
        fail(f"refusing {what} {text}: without a target file only loopback addresses (127.0.0.0/8) are used")
    return host


def target_from_file(ref: str) -> Target:
    """A target file (``FILE`` or ``FILE#node``): the same files `run --target` takes."""
    from harness.kazoo.profiles import ProfileError, load_profile
    from harness.scenario.targetfile import load_target_file, split_target_ref

    path, node = split_target_ref(ref)
    try:
        loaded = load_target_file(Path(path))
        return loaded.to_target(load_profile(loaded.profile), node)
    except (TargetError, ProfileError) as exc:
        fail(str(exc))


def parse_target(text: str) -> Address:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        fail(f"--target {text!r} must be HOST:PORT, e.g. 127.0.0.1:5060")
    return loopback_ip(host, "target"), int(port)


def parse_header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip() or any(c.isspace() for c in name.strip()):
        fail(f"--header {text!r} must be 'Name: value'")
    return name.strip(), value.strip()


def tls_context(ca_file: str | None, insecure: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_file)
    if insecure:  # test stacks use self-signed certificates
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def ladder(exchange: Exchange) -> str:
    """A readable ladder: time, direction, addresses, first line; then the outcome."""
    lines = [f"{exchange.method} {exchange.call_id or '(no Call-ID)'} over {exchange.transport}"]
    for event in exchange.events:
        arrow = "-->" if event.direction == "sent" else "<--"
        near, far = (event.src, event.dst) if event.direction == "sent" else (event.dst, event.src)
        lines.append(
            f"{event.t * 1000:9.1f} ms  {near[0]}:{near[1]} {arrow} {far[0]}:{far[1]}  {event.first_line}"
        )
    summary = f"outcome: {exchange.outcome}"
    if exchange.final is not None:
        summary += f" {exchange.final.code} {exchange.final.reason}"
    if exchange.ended_early:
        summary += " (ended early)"
    if exchange.error:
        summary += f" ({exchange.error})"
    lines.append(summary)
    lines += [f"note: {n}" for n in exchange.notes]
    return "\n".join(lines)


def send(
    target: Annotated[
        str,
        typer.Option(
            envvar="KAZOO_TARGET",
            help="HOST:PORT of the SBC or FreeSWITCH (loopback only), or a target file (FILE or FILE#node: "
            "its SBC, carrier roles and safety settings).",
        ),
    ] = "",
    source_ip: Annotated[
        str,
        typer.Option(help="Carrier source address (any 127.x.y.z), or a carrier role of the target file."),
    ] = "127.0.0.10",
    source_port: Annotated[int, typer.Option(help="Source port (0 = any free port).")] = 0,
    to: Annotated[str, typer.Option(help="The dialed number (To user; R-URI user unless --ruri-user).")] = "",
    ruri_user: Annotated[str | None, typer.Option(help="Request-URI user, when not the --to number.")] = None,
    from_user: Annotated[str | None, typer.Option(help="Caller number (default: a seeded fake).")] = None,
    transport: Annotated[str, typer.Option(help="udp, tcp or tls.")] = "udp",
    mutate: Annotated[
        list[str] | None, typer.Option(help="Mutator spec NAME[=ARG], repeatable; 'list' lists them.")
    ] = None,
    header: Annotated[list[str] | None, typer.Option(help="Extra header 'Name: value', repeatable.")] = None,
    user: Annotated[str | None, typer.Option(help="Digest user to answer one 401/407.")] = None,
    password: Annotated[str | None, typer.Option(help="Digest password.")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for a final response.")] = 2.0,
    seed: Annotated[int | None, typer.Option(help="Seed for Call-ID, tags, names and mutators.")] = None,
    tls_ca: Annotated[str | None, typer.Option(help="CA file to verify the TLS peer.")] = None,
    tls_insecure: Annotated[bool, typer.Option(help="Do not verify the TLS peer's certificate.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Send one crafted INVITE as a carrier and show what came back."""
    mutations = list(mutate or [])
    if "list" in mutations:
        print_mutators()
        return
    if not target:
        fail("--target HOST:PORT is required")
    if not to:
        fail("--to NUMBER is required")
    if transport not in TRANSPORTS:
        fail(f"--transport {transport!r}: use udp, tcp or tls")
    if (user is None) != (password is None):
        fail("--user and --password go together")
    if timeout <= 0:
        fail("--timeout must be positive")
    if not 0 <= source_port < 65536:
        fail(f"--source-port {source_port} out of range")
    stack: Target | None = None
    if target.endswith(".toml") or "#" in target or Path(target).is_file():
        stack = target_from_file(target)
        remote = stack.sbc
        try:
            check_destination(stack, remote)
            role = source_ip if source_ip in stack.carriers else None
            local_ip = stack.carrier(role, None if role else source_ip)[0]
        except TargetError as exc:
            fail(str(exc))
    else:
        remote = parse_target(target)
        local_ip = loopback_ip(source_ip, "source address")
    extra = [parse_header(h) for h in header or []]
    for spec in mutations:
        try:
            parse_spec(spec)
        except ValueError as exc:
            fail(str(exc))
    run_seed = seed if seed is not None else secrets.randbits(32)
    context = tls_context(tls_ca, tls_insecure) if transport == "tls" else None
    credentials = Credentials(user, password) if user is not None and password is not None else None

    async def call() -> Exchange:
        try:
            ua = CarrierUA(local_ip, source_port, transport, tls_context=context)
        except OSError as exc:
            fail(f"cannot bind {local_ip}:{source_port}: {exc}")
        async with ua:
            fields = {"to_user": to, "ruri_user": ruri_user or to, "extra_headers": extra, "seed": run_seed}
            if from_user is not None:
                fields["from_user"] = from_user
            try:
                data = builder.build_invite(ua.spec(remote, **fields)).to_bytes()
                data = apply_mutators(data, mutations, run_seed)
            except ValueError as exc:
                fail(str(exc))
            if stack is not None:
                await before_send(stack, remote)  # the target file's rate cap
            return await ua.invite(
                data, remote, timeout=timeout, credentials=credentials, dialed=to, seed=run_seed
            )

    exchange = asyncio.run(call())
    typer.echo(json.dumps(exchange.to_json()) if as_json else ladder(exchange))
    if exchange.outcome in ("unreachable", "error"):
        raise typer.Exit(EXIT_UNUSABLE_TARGET)


def register(app: typer.Typer) -> None:
    app.command("send")(send)
