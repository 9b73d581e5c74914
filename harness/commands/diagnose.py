"""`kazoo-harness diagnose NUMBER --carrier-ip IP`: which of the four causes makes this carrier's calls
to this number fail? Exit status: 0 none found, 1 a cause found, 2 usage error, 3 could not check."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from harness.kazoo.access import MODEL_DEFAULT_ACCESS, MODEL_DEFAULT_SBC, couch_client, esl_api
from harness.kazoo.couch import CouchError
from harness.kazoo.diagnose import Diagnosis, Step, diagnose
from harness.scenario.safety import check_destination, redact
from harness.scenario.target import StackAccess, Target, TargetError

EXIT_NONE, EXIT_FOUND, EXIT_USAGE, EXIT_UNCHECKED = 0, 1, 2, 3
STATUS_STYLE = {"ok": "green", "problem": "red", "warning": "yellow", "skipped": "dim", "error": "red"}


def _fail(code: int, message: str, secrets: tuple[str, ...] = ()) -> NoReturn:
    typer.echo(f"kazoo-harness diagnose: {redact(message, secrets)}", err=True)
    raise typer.Exit(code)


def _open(target_file: Path | None) -> tuple[StackAccess, Target | None, str]:
    if target_file is None:
        return MODEL_DEFAULT_ACCESS, None, "embedded model at its default addresses"
    from harness.kazoo.profiles import load_profile
    from harness.scenario.targetfile import load_target_file

    try:
        spec = load_target_file(target_file)
        target = spec.to_target(load_profile(spec.profile))
    except (TargetError, ValueError) as exc:
        _fail(EXIT_USAGE, str(exc))
    assert target.stack is not None
    return target.stack, target, str(target_file)


def _print(diagnosis: Diagnosis, console: Console) -> None:
    table = Table(title=f"diagnose {diagnosis.number} from {diagnosis.carrier_ip} ({diagnosis.target})")
    for column in ("step", "status", "finding", "evidence"):
        table.add_column(column, overflow="fold")
    for step in diagnosis.steps:
        style = STATUS_STYLE.get(step.status, "")
        table.add_row(step.name, f"[{style}]{step.status}[/]", step.summary, "\n".join(step.evidence))
    console.print(table)
    colour = {"none": "green", "unknown": "yellow"}.get(diagnosis.cause, "red")
    console.print(f"[bold {colour}]cause: {diagnosis.cause}[/] — {diagnosis.verdict}", highlight=False)
    if diagnosis.fix:
        console.print(f"fix: {diagnosis.fix}", highlight=False, markup=False)


def run_diagnose(
    number: str,
    carrier_ip: str,
    *,
    carrier_port: int | None = None,
    target_file: Path | None = None,
    ruri_user: str | None = None,
    invite: bool = False,
    invite_file: Path | None = None,
) -> tuple[Diagnosis, tuple[str, ...]]:
    """The diagnosis and the secrets to keep out of its output (also the Python API)."""
    access, target, label = _open(target_file)
    secrets = target.secrets if target else ()
    client = couch_client(access)
    if client is None:
        _fail(
            EXIT_UNCHECKED,
            f"{label} names no CouchDB ([couch] url): the documents cannot be checked",
            secrets,
        )
    try:
        client.server_info()
    except CouchError as exc:
        hint = " (start one with `kazoo-harness model`)" if target is None else ""
        _fail(
            EXIT_UNCHECKED,
            f"no CouchDB answers for {label} at {access.couch_url}{hint}: {exc.reason}",
            secrets,
        )
    esl = access.esl

    def live(ip: str, list_name: str) -> str:
        assert esl is not None
        return esl_api(esl, f"acl {ip} {list_name}")[0]

    extra: list[Step] = []
    if invite or invite_file is not None:
        extra.append(_invite(target, number, carrier_ip, carrier_port, ruri_user, invite_file))
    with client:
        diagnosis = diagnose(
            client,
            number=number,
            carrier_ip=carrier_ip,
            carrier_port=carrier_port,
            node=access.node,
            ruri_user=ruri_user,
            live_acl=live if esl else None,
            target=label,
            extra_steps=extra,
        )
    return diagnosis, secrets


def _invite(
    target: Target | None,
    number: str,
    carrier_ip: str,
    carrier_port: int | None,
    ruri_user: str | None,
    invite_file: Path | None,
) -> Step:
    from harness.scenario.probe import invite_step

    sbc = target.sbc if target else MODEL_DEFAULT_SBC
    if target is not None:
        try:
            check_destination(target, sbc)
        except TargetError as exc:
            return Step("invite", "skipped", str(exc))
        if invite_file is not None and not target.allow_malformed:
            return Step("invite", "skipped", f"target {target.name} does not set allow_malformed = true")
    raw = invite_file.read_bytes() if invite_file is not None else None
    logs = target.log_files if target else {}
    return asyncio.run(
        invite_step(
            sbc, (carrier_ip, carrier_port or 0), number, ruri_user=ruri_user, raw=raw, log_files=logs
        )
    )


def diagnose_command(
    number: Annotated[str, typer.Argument(help="the dialed number as the carrier sends it")],
    carrier_ip: Annotated[str, typer.Option("--carrier-ip", help="the carrier's source address")],
    carrier_port: Annotated[int | None, typer.Option("--carrier-port", help="its source port")] = None,
    target: Annotated[
        Path | None, typer.Option("--target", help="a TOML target file (default: the model)")
    ] = None,
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
    """Find which cause (acl, number_format, number_mapping, malformed_invite) breaks calls from a carrier
    to a number, with the evidence of each step and the fix in Kazoo's terms.

    Exit status: 0 none found, 1 a cause found, 2 usage error, 3 could not check.
    """
    diagnosis, secrets = run_diagnose(
        number,
        carrier_ip,
        carrier_port=carrier_port,
        target_file=target,
        ruri_user=ruri_user,
        invite=invite,
        invite_file=invite_file,
    )
    if as_json:
        typer.echo(redact(json.dumps(diagnosis.to_json(), indent=2, sort_keys=True), secrets))
    else:
        console = Console(width=160)
        with console.capture() as captured:
            _print(diagnosis, console)
        typer.echo(redact(captured.get(), secrets), nl=False)
    if diagnosis.cause == "none":
        raise typer.Exit(EXIT_NONE)
    raise typer.Exit(EXIT_UNCHECKED if diagnosis.cause == "unknown" else EXIT_FOUND)


def register(app: typer.Typer) -> None:
    app.command("diagnose", help=diagnose_command.__doc__)(diagnose_command)
