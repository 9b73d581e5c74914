"""`kazoo-harness replay`: send a customer's captured INVITE at a stack again and name the cause.

SOURCE is a pcap/pcapng file (HEP packets in it too), a FreeSWITCH sip-trace log, a file (``-`` =
stdin) holding one SIP message, or ``homer+https://HOST`` with ``--call-id`` (harness.replay.homer).
Exit codes: 0 the replay ran (whatever the response), 2 bad input (a Homer that cannot be read
included) or a refused INVITE (non-loopback addresses without --refresh), 3 the target could not be
used.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from harness.commands.common import EXIT_INFRA, fail, opened
from harness.kazoo.causes import UNKNOWN
from harness.net.gate import SendRefused
from harness.replay.capture import CapturedMessage
from harness.replay.demo_limits import WHAT_TO_PASS, demo_cannot_judge
from harness.replay.homer import homer_capture, is_homer
from harness.replay.rewrite import is_local, rewrite_foreign
from harness.replay.scenario_file import scenario_yaml
from harness.replay.session import ReplayRefused, ReplayResult, replay_invite
from harness.replay.source import SourceError, captured_final, load_source, pick_invite
from harness.report.ladder import text_ladder
from harness.sip.errors import SipParseError
from harness.sip.message import parse_message
from harness.sip.template import TemplateError
from harness.targets.target import Target


def describe(target: Target, data: Path | None = None) -> str:
    """The target, and the data it runs on when the harness started it on data (the demo's, or --data)."""
    text = f"{target.name} ({target.kind}, {target.sbc[0]}:{target.sbc[1]}, profile {target.profile.name})"
    if data is not None:
        return f"{text} with the data in {data}"
    return f"{text} with the demo data" if target.demo_data else text


def loopback_ip(text: str, what: str) -> str:
    """``text`` as a loopback IPv4 address (``localhost`` allowed); exit 2 otherwise."""
    host = "127.0.0.1" if text == "localhost" else text
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        fail(f"{what} {text!r} is not an IPv4 address")
    if not ip.is_loopback:
        fail(f"refusing {what} {text}: only loopback addresses (127.0.0.0/8) are used")
    return host


def choose_source(
    invite: CapturedMessage, role: str | None, stack: Target
) -> tuple[str, int | None, str | None]:
    """The source address (ip, fixed port or None) and a note when the capture's own cannot be used."""
    if role is None:
        ip = invite.src[0] or _via_host(invite.data)
        if ip and is_local(ip) and ":" not in ip and ip != "0.0.0.0":
            return ip, None, None
        role = "listed"
        why = "not a loopback IPv4 address" if ip else "no source address"
        note = f"captured from {ip or '?'} ({why}): sent as the listed carrier; --source-role chooses another"
    else:
        note = None
    if role in stack.carriers:
        ip, port = stack.carriers[role]
        return ip, port, note
    if role[:1].isdigit() or role == "localhost":
        return loopback_ip(role, "--source-role address"), None, note
    fail(f"--source-role {role!r}: not a carrier role ({', '.join(sorted(stack.carriers))}) nor an address")


def _via_host(data: bytes) -> str:
    """Where a pasted message (no capture addresses) says it came from: its top Via's host."""
    try:
        return parse_message(data).top_via.host
    except SipParseError:
        return ""


def carrier_mapping(source_ip: str, port: int | None, transport: str, stack: Target) -> dict[str, Any]:
    """The scenario's `carrier`: the role whose address it is (portable across targets), else the address."""
    mapping: dict[str, Any] = {}
    for name, (ip, role_port) in stack.carriers.items():
        if ip == source_ip and role_port == port and name != "sbc_self":
            mapping["role"] = name
            break
    else:
        mapping["address"] = source_ip if port is None else f"{source_ip}:{port}"
    if transport != "udp":
        mapping["transport"] = transport
    return mapping


def render(
    result: ReplayResult,
    source: str,
    kind: str,
    stack: Target,
    data: Path | None = None,
    unjudged: str | None = None,
) -> str:
    inv = result.invite
    src = f"{inv.src[0]}:{inv.src[1]}" if inv.src[0] else "unknown source"
    lines = [
        f"replay of {inv.first_line!r} from {source} ({kind}, {inv.transport}, {src}, {len(inv.data)} bytes)",
        f"target: {describe(stack, data)}",
        "sent: the captured bytes, unchanged"
        if result.as_captured
        else "sent: refreshed (new Call-ID, branch, From tag; Request-URI and top Via for the target and us)",
    ]
    if result.rewritten:
        local = result.exchange.local[0]
        lines.append(
            f"rewritten to the local carrier address {local}: " + ", ".join(map(str, result.rewritten))
        )
    lines += ["", text_ladder(result.exchange), ""]
    if result.captured_final is not None:
        same = "same as" if result.matches_capture else "DIFFERENT from"
        cap = result.captured_final
        lines.append(f"captured response: {cap.code} {cap.reason} ({same} the replay)")
    elif kind != "raw":
        lines.append("captured response: none in the capture")
    if stack.logs:
        lines.append(f"log lines tied to the call ({len(result.related)}):")
        lines += [f"  {line}" for line in result.related] or ["  (none)"]
    d = result.diagnosis
    if unjudged is not None:
        lines.append(f"cause: not judged: {unjudged}")
        lines.append(f"  (on the demo data it looks like {d.cause}, profile outcome {d.outcome})")
        lines.append(f"  to judge it: {WHAT_TO_PASS}")
    else:
        lines.append(f"cause: {d.cause}" + (f" (profile outcome {d.outcome})" if d.outcome else ""))
    lines += [f"note: {n}" for n in result.notes]
    return "\n".join(lines)


def replay(
    source: Annotated[
        str,
        typer.Argument(
            help="pcap/pcapng file (also of HEP), FreeSWITCH sip-trace log, one SIP message (file or -), "
            "or homer+https://HOST (credentials: HOMER_TOKEN, or HOMER_USER and HOMER_PASSWORD)."
        ),
    ],
    call_id: Annotated[
        str | None, typer.Option(help="The call to replay when the source holds several.")
    ] = None,
    target: Annotated[
        str,
        typer.Option(
            envvar="KAZOO_TARGET",
            help="'embedded' (a model started for the replay), another built-in target, HOST:PORT "
            "(loopback) or a target file.",
        ),
    ] = "embedded",
    source_role: Annotated[
        str | None, typer.Option(help="Send as carrier role (listed, unlisted, ...) or from a 127.x address.")
    ] = None,
    refresh: Annotated[
        bool,
        typer.Option(help="New Call-ID/branch/tag, R-URI and Via for the target, foreign addresses local."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    to_scenario: Annotated[
        Path | None, typer.Option(help="Write a scenario file reproducing the capture.")
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(
            envvar="KAZOO_PROFILE", help="Expectation profile (default: the target's, else the default)."
        ),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for a final response.")] = 5.0,
    seed: Annotated[int | None, typer.Option(help="Seed for the identifiers --refresh draws.")] = None,
    since: Annotated[
        str | None,
        typer.Option("--from", help="Homer: search from (epoch or ISO 8601; default --to - 24 h)."),
    ] = None,
    until: Annotated[str | None, typer.Option("--to", help="Homer: search until (default: now).")] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            help="Start the embedded model on this CouchDB data (the customer's, in the folder shape "
            "`model --data` reads) instead of the demo's."
        ),
    ] = None,
) -> None:
    """Send a captured INVITE at a stack again; show the exchange, the stack's log lines and the cause."""
    if timeout <= 0:
        fail("--timeout must be positive")
    try:
        source_notes: list[str] = []
        if is_homer(source):
            capture, source_notes = homer_capture(source, call_id, since, until)
        else:
            capture = load_source(source, sys.stdin.buffer.read() if source == "-" else None)
        invite = pick_invite(capture, call_id)
    except (SourceError, ValueError) as exc:
        fail(str(exc))
    with opened(target, profile, data_dir=data) as stack:
        if not is_local(stack.sbc[0]):
            fail(f"refusing target {stack.sbc[0]}: replay only sends to loopback addresses (127.0.0.0/8)")
        source_ip, port, note = choose_source(invite, source_role, stack)
        try:
            result = asyncio.run(
                replay_invite(
                    invite,
                    stack,
                    source_ip=source_ip,
                    source_port=port,
                    refresh=refresh,
                    timeout=timeout,
                    seed=seed,
                    captured_final=captured_final(capture, invite),
                )
            )
        except (ReplayRefused, SendRefused) as exc:
            fail(str(exc))
        result.notes[:0] = [*source_notes, *([note] if note else [])]
        unjudged = demo_cannot_judge(result.diagnosis.cause, result.exchange.dialed, source_ip, stack)
        if to_scenario is not None:
            _write_scenario(to_scenario, result, source, stack, source_ip, port)
        if as_json:
            out = result.to_json()
            if unjudged is not None:  # the cause named on the demo data says nothing about this capture
                out["demo_cannot_judge"] = {
                    "looks_like": out["cause"],
                    "why": unjudged,
                    "instead": WHAT_TO_PASS,
                }
                out["cause"] = UNKNOWN
            typer.echo(json.dumps(out))
        else:
            typer.echo(render(result, source, capture.kind, stack, data, unjudged))
    if result.exchange.outcome in ("unreachable", "error"):
        raise typer.Exit(EXIT_INFRA)


def _write_scenario(
    path: Path, result: ReplayResult, source: str, stack: Target, source_ip: str, port: int | None
) -> None:
    carrier = carrier_mapping(source_ip, port, result.exchange.transport, stack)
    # the scenario may run against real elements: it keeps the captured bytes but never foreign addresses
    invite = replace(result.invite, data=rewrite_foreign(result.invite.data, source_ip)[0])
    try:
        text = scenario_yaml(invite, result.exchange, result.diagnosis, carrier=carrier, source_name=source)
    except TemplateError as exc:
        fail(f"--to-scenario: {exc}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    result.notes.append(f"scenario written to {path}")


def register(app: typer.Typer) -> None:
    app.command("replay")(replay)
