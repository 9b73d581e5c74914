"""`kazoo-harness probe`: inbound-call probes against a target — `serve`, a Prometheus exporter in the
multi-target (blackbox) style, and `once`, one probe for cron and CI (docs/probes.md).

Exit status of `once`: 0 the scenario passed, 1 it failed (the stack answered, not as expected), 2 usage
(bad flags, unknown scenario, a scenario the target does not allow), 3 could not probe (the target
could not be opened or reached, the probe's timeout passed). `serve` runs until SIGINT or SIGTERM.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from prometheus_client import disable_created_metrics

from harness.commands.common import EXIT_FAILED, EXIT_INFRA, EXIT_OK, ProfileOption, fail, opened
from harness.probes.probe import ProbeRefused, Status
from harness.probes.server import ProbeExporter
from harness.probes.service import DEFAULT_CATALOG, ProbeService
from harness.probes.text import explain
from harness.targets.redact import install_log_redaction, redact
from harness.targets.target import Target
from harness.yaml_schema import SchemaError

DEFAULT_LISTEN = "127.0.0.1:9588"
EXIT_FOR = {Status.SUCCESS: EXIT_OK, Status.FAILED: EXIT_FAILED, Status.ERROR: EXIT_INFRA}

app = typer.Typer(
    name="probe",
    help="Inbound-call probes: a Prometheus exporter (serve) and a single probe for cron and CI (once).",
    no_args_is_help=True,
)

TargetOpt = Annotated[
    str,
    typer.Option(
        "--target",
        envvar="KAZOO_TARGET",
        help="a target file (FILE, FILE#node), embedded, lab, model or HOST:PORT",
    ),
]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="a probes file: named probes with params and timeouts")
]
CatalogOpt = Annotated[
    Path | None,
    typer.Option(
        "--catalog", help=f"the scenario folder (default: the config's catalog, else {DEFAULT_CATALOG}/)"
    ),
]
TimeoutOpt = Annotated[
    float | None, typer.Option("--timeout", help="seconds per probe unless the config says (default 10)")
]


def _service(
    target: Target,
    config: Path | None,
    catalog: Path | None,
    *,
    concurrency: int | None = None,
    timeout: float | None = None,
) -> ProbeService:
    if timeout is not None and timeout <= 0:
        fail("--timeout must be positive")
    if concurrency is not None and concurrency < 1:
        fail("--concurrency must be at least 1")
    try:
        return ProbeService.load(
            target, config=config, catalog=catalog, concurrency=concurrency, timeout=timeout
        )
    except (SchemaError, ProbeRefused, OSError) as exc:
        fail(redact(str(exc), target.secrets))


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        fail(f"--listen {text!r}: expected HOST:PORT")
    return host or "127.0.0.1", int(port)


class _Stop(Exception):
    """SIGTERM: leave serve_forever like Ctrl-C does, through the open blocks' cleanup."""


def _stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


@app.command("serve")
def serve(
    target: TargetOpt = "embedded",
    listen: Annotated[str, typer.Option("--listen", help="HOST:PORT to serve on")] = DEFAULT_LISTEN,
    config: ConfigOpt = None,
    catalog: CatalogOpt = None,
    profile: ProfileOption = None,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", help="probes at once per SBC node (default 1)")
    ] = None,
    timeout: TimeoutOpt = None,
) -> None:
    """Serve probes over HTTP for Prometheus: GET /probe?scenario=NAME[&sbc=NODE], GET /metrics."""
    host, port = _listen(listen)
    disable_created_metrics()  # this process is the exporter: no *_created series beside the counters
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    with opened(target, profile, reach=False) as stack:  # a stack that is down is probed as down
        install_log_redaction(stack.secrets)
        service = _service(stack, config, catalog, concurrency=concurrency, timeout=timeout)
        try:
            exporter = ProbeExporter(service, host, port)
        except OSError as exc:
            fail(f"--listen {listen}: {exc}", EXIT_INFRA)
        typer.echo(
            redact(
                f"kazoo-harness probe: listening on {exporter.url} (target {stack.name}, "
                f"{len(service.probes)} probes of the config, {len(service.catalog.cases)} "
                "catalog scenarios)",
                stack.secrets,
            )
        )
        sys.stdout.flush()
        previous = signal.signal(signal.SIGTERM, _stop)
        try:
            exporter.serve_forever()
        except (KeyboardInterrupt, _Stop):
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
            exporter.httpd.server_close()
    typer.echo("kazoo-harness probe: stopped")


@app.command("once")
def once(
    scenario: Annotated[
        str, typer.Option("--scenario", help="a probe of the config, a catalog test id or scenario name")
    ],
    target: TargetOpt = "embedded",
    sbc: Annotated[str | None, typer.Option("--sbc", help="an SBC node of the target file")] = None,
    config: ConfigOpt = None,
    catalog: CatalogOpt = None,
    profile: ProfileOption = None,
    timeout: TimeoutOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Run one probe and exit 0 (passed), 1 (failed), 3 (could not probe); 2 for usage errors."""
    with opened(target, profile, reach=False) as stack:
        service = _service(stack, config, catalog, timeout=timeout)
        try:
            result = service.probe(scenario, sbc)
        except ProbeRefused as exc:
            fail(redact(str(exc), stack.secrets))
        text = json.dumps(result.to_json(), indent=2) if as_json else explain(result)
        typer.echo(redact(text, stack.secrets))
    raise typer.Exit(EXIT_FOR[result.status])


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="probe")
