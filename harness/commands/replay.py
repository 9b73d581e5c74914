"""`kazoo-harness replay`: send a customer's captured INVITE at a stack again and name the cause.

SOURCE is a pcap/pcapng file, a FreeSWITCH sip-trace log, or a file (``-`` = stdin) holding one SIP
message. Exit codes: 0 the replay ran (whatever the response), 2 bad input or a refused INVITE
(non-loopback addresses without --refresh), 3 the target could not be used.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any

import typer

from harness.commands.send import EXIT_UNUSABLE_TARGET, fail, loopback_ip, parse_target
from harness.kazoo.profiles import DEFAULT_PROFILE, Profile, ProfileError, load_profile
from harness.model.demo import demo_roles
from harness.net.exchange import Address
from harness.replay.capture import CapturedMessage
from harness.replay.demo_limits import WHAT_TO_PASS, demo_cannot_judge
from harness.replay.rewrite import is_local, rewrite_foreign
from harness.replay.scenario_file import scenario_yaml
from harness.replay.session import ReplayRefused, ReplayResult, replay_invite
from harness.replay.source import SourceError, captured_final, load_source, pick_invite
from harness.replay.template import TemplateError
from harness.report.ladder import text_ladder
from harness.sip.errors import SipParseError
from harness.sip.message import parse_message


@dataclass
class Stack:
    """Where the replay goes: the SBC address, the carrier roles and the log files there."""

    description: str
    sbc: Address
    carriers: dict[str, tuple[str, int | None]]
    log_files: dict[str, Path] = field(default_factory=dict)
    demo: bool = False  # the embedded model with the demo data: it cannot judge a customer's data


def _demo_carriers() -> dict[str, tuple[str, int | None]]:
    return {name: (str(v["ip"]), v.get("port")) for name, v in demo_roles().get("carriers", {}).items()}


@contextmanager
def open_stack(spec: str, profile: Profile, data: Path | None = None) -> Iterator[Stack]:
    """``embedded`` (a model started for this replay, on ``data`` or the demo data), ``HOST:PORT``
    (loopback) or a target file."""
    if data is not None and spec != "embedded":
        fail("--data loads the embedded model with that data; it does not go with --target")
    if spec == "embedded":
        from harness.scenario.embedded import start_embedded

        if data is not None and not data.is_dir():
            fail(f"--data {data}: not a directory (a CouchDB dump in the folder shape `model --data` reads)")
        try:
            target = start_embedded(profile, data_dir=data)
        except OSError as exc:
            fail(f"the embedded Kazoo model failed to start: {exc}", EXIT_UNUSABLE_TARGET)
        loaded = f"the data in {data}" if data is not None else "the demo data"
        try:
            yield Stack(
                f"embedded Kazoo model ({profile.name}) with {loaded}",
                target.sbc,
                target.carriers,
                dict(target.log_files),
                demo=data is None,
            )
        finally:
            target.model.stop()
        return
    if not Path(spec.partition("#")[0]).is_file():
        host, port = parse_target(spec)
        yield Stack(f"{host}:{port}", (host, port), _demo_carriers())
        return
    from harness.scenario.target import TargetError
    from harness.scenario.targets import TargetStartError, open_target

    try:
        target = open_target(spec, profile)
    except TargetError as exc:
        fail(f"--target {spec}: {exc}")
    except TargetStartError as exc:
        fail(f"--target {spec}: {exc}", EXIT_UNUSABLE_TARGET)
    if not is_local(target.sbc[0]):
        fail(f"refusing target {target.sbc[0]}: replay only sends to loopback addresses (127.0.0.0/8)")
    try:
        yield Stack(
            f"{spec} ({target.sbc[0]}:{target.sbc[1]})", target.sbc, target.carriers, dict(target.log_files)
        )
    finally:
        if target.model is not None:
            target.model.stop()


def choose_source(
    invite: CapturedMessage, role: str | None, stack: Stack
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


def carrier_mapping(source_ip: str, port: int | None, transport: str, stack: Stack) -> dict[str, Any]:
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


def render(result: ReplayResult, source: str, kind: str, stack: Stack, unjudged: str | None = None) -> str:
    inv = result.invite
    src = f"{inv.src[0]}:{inv.src[1]}" if inv.src[0] else "unknown source"
    lines = [
        f"replay of {inv.first_line!r} from {source} ({kind}, {inv.transport}, {src}, {len(inv.data)} bytes)",
        f"target: {stack.description}",
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
    if stack.log_files:
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
        typer.Argument(help="pcap/pcapng file, FreeSWITCH sip-trace log, or one SIP message (file or -)."),
    ],
    call_id: Annotated[
        str | None, typer.Option(help="The call to replay when the source holds several.")
    ] = None,
    target: Annotated[
        str,
        typer.Option(
            help="'embedded' (a model started for the replay), HOST:PORT (loopback) or a target file."
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
        str, typer.Option(help="Expectation profile: kazoo-4.3, kazoo-5 or a file.")
    ] = DEFAULT_PROFILE,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for a final response.")] = 5.0,
    seed: Annotated[int | None, typer.Option(help="Seed for the identifiers --refresh draws.")] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            help="Load the embedded model with this CouchDB data (the customer's) instead of the demo's."
        ),
    ] = None,
) -> None:
    """Send a captured INVITE at a stack again; show the exchange, the stack's log lines and the cause."""
    if timeout <= 0:
        fail("--timeout must be positive")
    try:
        loaded = load_profile(profile)
        capture = load_source(source, sys.stdin.buffer.read() if source == "-" else None)
        invite = pick_invite(capture, call_id)
    except (SourceError, ProfileError, ValueError) as exc:
        fail(str(exc))
    with open_stack(target, loaded, data) as stack:
        source_ip, port, note = choose_source(invite, source_role, stack)
        try:
            result = asyncio.run(
                replay_invite(
                    invite,
                    target=stack.sbc,
                    source_ip=source_ip,
                    source_port=port,
                    profile=loaded,
                    refresh=refresh,
                    log_files=stack.log_files,
                    timeout=timeout,
                    seed=seed,
                    captured_final=captured_final(capture, invite),
                )
            )
        except ReplayRefused as exc:
            fail(str(exc))
        if note:
            result.notes.insert(0, note)
        unjudged = None
        if stack.demo:
            unjudged = demo_cannot_judge(result.diagnosis.cause, result.exchange.dialed, source_ip)
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
                out["cause"] = "unknown"
            typer.echo(json.dumps(out))
        else:
            typer.echo(render(result, source, capture.kind, stack, unjudged))
    if result.exchange.outcome in ("unreachable", "error"):
        raise typer.Exit(EXIT_UNUSABLE_TARGET)


def _write_scenario(
    path: Path, result: ReplayResult, source: str, stack: Stack, source_ip: str, port: int | None
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
    if "scenarios" not in path.resolve().parts:
        result.notes.append("pytest collects scenario files only under a directory named 'scenarios'")


def register(app: typer.Typer) -> None:
    app.command("replay")(replay)
