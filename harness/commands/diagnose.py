"""`kazoo-harness diagnose NUMBER --carrier-ip IP`: which of the four causes makes this carrier's calls
to this number fail? Exit status: 0 none found, 1 a cause found, 2 usage error, 3 could not check."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import time
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from harness.commands.common import EXIT_FAILED, EXIT_INFRA, EXIT_OK, EXIT_USAGE, opened
from harness.kazoo.access import couch_client, esl_api
from harness.kazoo.causes import NONE, UNKNOWN, Cause
from harness.kazoo.couch import CouchError
from harness.kazoo.diagnose import INVITE_STEP, Diagnosis, Step, diagnose
from harness.net.gate import SendRefused
from harness.replay.capture import CapturedMessage
from harness.replay.session import ReplayRefused, replay_invite
from harness.sip import builder
from harness.targets.redact import redact
from harness.targets.target import Target

STATUS_STYLE = {"ok": "green", "problem": "red", "warning": "yellow", "skipped": "dim", "error": "red"}
INVITE_TIMEOUT = 6.0


def _fail(code: int, message: str, secrets: tuple[str, ...] = ()) -> NoReturn:
    typer.echo(f"kazoo-harness diagnose: {redact(message, secrets)}", err=True)
    raise typer.Exit(code)


def _print(diagnosis: Diagnosis, console: Console) -> None:
    table = Table(title=f"diagnose {diagnosis.number} from {diagnosis.carrier_ip} ({diagnosis.target})")
    for column in ("step", "status", "finding", "evidence"):
        table.add_column(column, overflow="fold")
    for step in diagnosis.steps:
        style = STATUS_STYLE.get(step.status, "")
        table.add_row(step.name, f"[{style}]{step.status}[/]", step.summary, "\n".join(step.evidence))
    console.print(table)
    colour = {NONE: "green", UNKNOWN: "yellow"}.get(diagnosis.cause, "red")
    console.print(f"[bold {colour}]cause: {diagnosis.cause}[/] — {diagnosis.verdict}", highlight=False)
    if diagnosis.fix:
        console.print(f"fix: {diagnosis.fix}", highlight=False, markup=False)


def run_diagnose(
    target: Target,
    number: str,
    carrier_ip: str,
    *,
    carrier_port: int | None = None,
    ruri_user: str | None = None,
    invite: bool = False,
    invite_file: Path | None = None,
) -> Diagnosis:
    """The diagnosis on an open target (also the Python API); the target's secrets stay out of it."""
    try:
        ipaddress.ip_address(carrier_ip)
    except ValueError:
        _fail(EXIT_USAGE, f"--carrier-ip {carrier_ip!r} is not an IP address")
    access = target.stack
    client = couch_client(access)
    if client is None:
        _fail(
            EXIT_INFRA,
            f"target {target.name} names no CouchDB ([couch] url): the documents cannot be checked",
        )
    try:
        client.server_info()
    except CouchError as exc:
        hint = " (start one with `kazoo-harness model`)" if target.kind == "model" else ""
        _fail(EXIT_INFRA, f"no CouchDB answers for {target.name} at {access.couch_url}{hint}: {exc.reason}",
              target.secrets)  # fmt: skip
    esl = access.esl

    def live(ip: str, list_name: str) -> str:
        assert esl is not None
        return esl_api(esl, f"acl {ip} {list_name}")[0]

    extra: list[Step] = []
    if invite or invite_file is not None:
        extra.append(invite_step(target, number, carrier_ip, carrier_port, ruri_user, invite_file))
    with client:
        return diagnose(
            client,
            number=number,
            carrier_ip=carrier_ip,
            carrier_port=carrier_port,
            node=access.node,
            ruri_user=ruri_user,
            live_acl=live if esl else None,
            target=target.name,
            extra_steps=extra,
        )


def invite_step(
    target: Target,
    number: str,
    carrier_ip: str,
    carrier_port: int | None,
    ruri_user: str | None,
    invite_file: Path | None,
) -> Step:
    """A test INVITE from the carrier's address (or the bytes of a carrier's INVITE), through the target's
    gate, judged by its profile like a replay: the same matcher names the cause."""
    if invite_file is not None:
        data = invite_file.read_bytes()
    else:
        spec = builder.InviteSpec(
            target_host=target.sbc[0], target_port=target.sbc[1], local_ip=carrier_ip,
            local_port=carrier_port or 5060, ruri_user=ruri_user or number, to_user=number,
        )  # fmt: skip
        data = builder.build_invite(spec).to_bytes()
    message = CapturedMessage(time.time(), (carrier_ip, carrier_port or 0), target.sbc, "udp", data)
    try:
        result = asyncio.run(
            replay_invite(
                message, target, source_ip=carrier_ip, source_port=carrier_port,
                refresh=invite_file is None,  # a carrier's own bytes go as they are (or not at all)
                timeout=INVITE_TIMEOUT,
            )
        )  # fmt: skip
    except (SendRefused, ReplayRefused) as exc:
        return Step(INVITE_STEP, "skipped", str(exc))
    exchange = result.exchange
    got = f"{exchange.final.code} {exchange.final.reason}" if exchange.final else exchange.outcome
    # the lines tied to the call, and those that proved its outcome (a drop line may carry no Call-ID)
    lines = [str(line) for line in result.related]
    lines += [line for line in result.diagnosis.evidence if line not in lines]
    sent = f"INVITE from {exchange.local[0]}:{exchange.local[1]} to {target.sbc[0]}:{target.sbc[1]}"
    evidence = [f"{sent} -> {got}", *lines[:20]]
    data_out = {
        "call_id": exchange.call_id,
        "got": got,
        "log_lines": lines[:50],
        "outcome": result.diagnosis.outcome,
    }
    cause = result.diagnosis.cause
    if cause == Cause.MALFORMED:
        return Step(
            INVITE_STEP,
            "problem",
            f"the stack refused the INVITE itself ({got}; outcome {result.diagnosis.outcome})",
            evidence,
            data_out,
            fix="fix the carrier's INVITE (see the log line: sanity checks, Max-Forwards, headers, codecs); "
            "Kamailio's sanity checks drop it before Kazoo routes it",
            cause=Cause.MALFORMED,
        )
    if exchange.final is not None and exchange.final.code < 300:
        return Step(INVITE_STEP, "ok", f"the test call was answered ({got})", evidence, data_out)
    return Step(
        INVITE_STEP, "warning", f"the test call failed ({got}); see the steps above", evidence, data_out
    )


def diagnose_command(
    number: Annotated[str, typer.Argument(help="the dialed number as the carrier sends it")],
    carrier_ip: Annotated[str, typer.Option("--carrier-ip", help="the carrier's source address")],
    carrier_port: Annotated[int | None, typer.Option("--carrier-port", help="its source port")] = None,
    target: Annotated[
        str,
        typer.Option(
            "--target",
            envvar="KAZOO_TARGET",
            help="a target file, or a built-in target (default: `model`, a `kazoo-harness model` already "
            "running at its defaults)",
        ),
    ] = "model",
    ruri_user: Annotated[
        str | None, typer.Option("--ruri-user", help="the Request-URI user the carrier sends, if not NUMBER")
    ] = None,
    invite: Annotated[
        bool, typer.Option("--invite", help="also send a test INVITE from the carrier address")
    ] = False,
    invite_file: Annotated[
        Path | None, typer.Option("--invite-file", help="send these bytes (a carrier's INVITE) as the test")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object (docs/diagnose.md)")] = False,
) -> None:
    """Find which cause (acl, number_format, number_mapping, malformed) breaks calls from a carrier to a
    number, with the evidence of each step and the fix in Kazoo's terms.

    Exit status: 0 none found, 1 a cause found, 2 usage error, 3 could not check.
    """
    # the documents are read whether the SBC answers or not (--invite then says it does not)
    with opened(target, reach=False) as stack:
        diagnosis = run_diagnose(
            stack, number, carrier_ip, carrier_port=carrier_port, ruri_user=ruri_user, invite=invite,
            invite_file=invite_file,
        )  # fmt: skip
        secrets = stack.secrets
    if as_json:
        typer.echo(redact(json.dumps(diagnosis.to_json(), indent=2, sort_keys=True), secrets))
    else:
        console = Console(width=160)
        with console.capture() as captured:
            _print(diagnosis, console)
        typer.echo(redact(captured.get(), secrets), nl=False)
    if diagnosis.cause == NONE:
        raise typer.Exit(EXIT_OK)
    raise typer.Exit(EXIT_INFRA if diagnosis.cause == UNKNOWN else EXIT_FAILED)


def register(app: typer.Typer) -> None:
    app.command("diagnose", help=diagnose_command.__doc__)(diagnose_command)
