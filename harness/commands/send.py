"""`kazoo-harness send`: one crafted INVITE from a chosen source address, printed as a ladder or JSON.

Exit codes: 0 the exchange ran (whatever the response), 2 bad flags or a send the target's rules refuse
(also a non-loopback address without a target file), 3 the target could not be used (nothing listens,
connection or TLS handshake failed, message too large).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import ssl
from typing import Annotated

import typer

from harness.commands.common import EXIT_INFRA, fail, opened
from harness.commands.mutators import print_mutators
from harness.net.carrier import TRANSPORTS, CarrierUA
from harness.net.exchange import Exchange
from harness.net.gate import SendRefused
from harness.sip import builder
from harness.sip.digest import Credentials
from harness.sip.mutators import apply_mutators, parse_spec
from harness.targets.target import Target, TargetError


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
            help="HOST:PORT of the SBC or FreeSWITCH (loopback only), a built-in target (embedded, lab, "
            "docker, model), or a target file (FILE or FILE#node: its SBC, carrier roles and safety rules).",
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
    extra = [parse_header(h) for h in header or []]
    for spec in mutations:
        try:
            parse_spec(spec)
        except ValueError as exc:
            fail(str(exc))
    run_seed = seed if seed is not None else secrets.randbits(32)
    context = tls_context(tls_ca, tls_insecure) if transport == "tls" else None
    credentials = Credentials(user, password) if user is not None and password is not None else None
    with opened(target) as stack:
        local_ip = _source(stack, source_ip)

        async def call() -> Exchange:
            try:
                ua = CarrierUA(local_ip, source_port, transport, gate=stack.gate, tls_context=context)
            except OSError as exc:
                fail(f"cannot bind {local_ip}:{source_port}: {exc}")
            async with ua:
                fields = {
                    "to_user": to,
                    "ruri_user": ruri_user or to,
                    "extra_headers": extra,
                    "seed": run_seed,
                }
                if from_user is not None:
                    fields["from_user"] = from_user
                try:
                    data = builder.build_invite(ua.spec(stack.sbc, **fields)).to_bytes()
                    data = apply_mutators(data, mutations, run_seed)
                except ValueError as exc:
                    fail(str(exc))
                return await ua.invite(
                    data, stack.sbc, timeout=timeout, credentials=credentials, dialed=to, seed=run_seed,
                    mutated=bool(mutations),
                )  # fmt: skip

        try:
            exchange = asyncio.run(call())
        except SendRefused as exc:
            fail(str(exc))
    typer.echo(json.dumps(exchange.to_json()) if as_json else ladder(exchange))
    if exchange.outcome in ("unreachable", "error"):
        raise typer.Exit(EXIT_INFRA)


def _source(target: Target, source_ip: str) -> str:
    """``--source-ip``: a carrier role of the target, or a local address."""
    role = source_ip if source_ip in target.carriers else None
    try:
        return target.carrier(
            role, None if role else ("127.0.0.1" if source_ip == "localhost" else source_ip)
        )[0]
    except TargetError as exc:
        fail(str(exc))


def register(app: typer.Typer) -> None:
    app.command("send")(send)
