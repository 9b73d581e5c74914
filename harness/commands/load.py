"""`kazoo-harness load`: a catalog scenario at rate, on Locust (docs/load.md).

Exit status: 0 every threshold held, 1 a threshold failed (each one named), 2 usage error (bad flags,
scenario schema error, a load the target refuses, a case that does not run there), 3 infrastructure error
(target or Locust failed).
"""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer

from harness.commands.common import (
    EXIT_FAILED,
    EXIT_INFRA,
    EXIT_OK,
    EXIT_USAGE,
    ProfileOption,
    TargetOption,
    opened,
)


def _fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def pick_case(ref: str, param: str | None, release: str) -> Any:
    """``FILE`` or ``FILE::test_id``: the one case to load (a file with several asks which; cases for
    another release than the profile's do not count)."""
    from harness.scenario.case import load_cases

    file, _, wanted = ref.partition("::")
    path = Path(file)
    if not path.is_file():
        raise _fail(f"no such scenario file: {file}")
    cases = load_cases(path)
    if param is not None:
        cases = [c for c in cases if c.param_id == param]
    if wanted:
        cases = [c for c in cases if c.test_id == wanted]
    elif len(cases) > 1:
        cases = [c for c in cases if not c.releases or release in c.releases]
    if len(cases) != 1:
        names = ", ".join(f"{path}::{c.test_id}" for c in load_cases(path))
        what = "no case matches" if not cases else f"{len(cases)} cases match"
        raise _fail(f"{what}; name one: {names}")
    return cases[0]


def load(
    scenario: Annotated[
        str | None, typer.Argument(help="a scenario file, or FILE::case (not with --worker)")
    ] = None,
    target: TargetOption = "embedded",
    profile: ProfileOption = None,
    param: Annotated[str | None, typer.Option("--param", help="the params id of the case to load")] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            "-w",
            help="Locust worker processes (0: one process, no ZeroMQ); "
            "with --master, the remote workers to wait for",
        ),
    ] = None,
    master: Annotated[
        bool,
        typer.Option(
            "--master", help="run Locust's master only; workers connect with `load --worker --master-host H`"
        ),
    ] = False,
    worker: Annotated[
        bool, typer.Option("--worker", help="run a Locust worker for a master elsewhere")
    ] = False,
    master_host: Annotated[str, typer.Option("--master-host", help="the master a --worker connects to")] = (
        "127.0.0.1"
    ),
    master_bind_host: Annotated[
        str,
        typer.Option(
            "--master-bind-host",
            help="the address --master listens on for workers (default loopback; another host's workers "
            "need an interface they can reach)",
        ),
    ] = "127.0.0.1",
    master_port: Annotated[
        int | None,
        typer.Option(
            "--master-port", help="Locust's master port (default: a free one; 5557 for --master/--worker)"
        ),
    ] = None,
    web: Annotated[bool, typer.Option("--web", help="Locust's web UI with its charts (127.0.0.1)")] = False,
    web_port: Annotated[int, typer.Option("--web-port", help="the web UI's port")] = 8089,
    shape: Annotated[str | None, typer.Option("--shape", help="constant | ramp | burst")] = None,
    rate: Annotated[float | None, typer.Option("--rate", help="calls/s (a ramp's end rate)")] = None,
    start_rate: Annotated[float | None, typer.Option("--start-rate", help="a ramp's first rate")] = None,
    calls: Annotated[int | None, typer.Option("--calls", help="how many calls (or give --duration)")] = None,
    duration: Annotated[float | None, typer.Option("--duration", help="seconds of load")] = None,
    within_ms: Annotated[
        float | None, typer.Option("--within-ms", help="a burst: all calls within T ms")
    ] = None,
    concurrency: Annotated[int | None, typer.Option("--concurrency", help="calls in flight at most")] = None,
    sources: Annotated[
        int | None, typer.Option("--sources", help="source addresses playing the carrier")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="seconds a call waits for its final")
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", envvar="HARNESS_SEED", help="seed for generated data")
    ] = (None),
    csv: Annotated[Path | None, typer.Option("--csv", help="Locust's CSV files, this prefix")] = None,
    html: Annotated[Path | None, typer.Option("--html", help="Locust's HTML report (charts) here")] = None,
    locust_json: Annotated[
        Path | None, typer.Option("--locust-json", help="Locust's own statistics as JSON, here")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="the run's record (verdict, figures) here")
    ] = (None),
) -> None:
    """Run a catalog scenario at rate on Locust and judge the whole run against its `load:` thresholds.

    Exit status: 0 every threshold held, 1 a threshold failed, 2 usage error or a load the target
    refuses, 3 infrastructure error.
    """
    from harness.load.launch import LocustOptions, LocustProcess, free_tcp_port, locust_command

    signal.signal(signal.SIGTERM, _terminate)  # a SIGTERM stops Locust and its workers as Ctrl-C does
    if worker:
        options = LocustOptions(mode="worker", master_host=master_host, master_port=master_port or 5557)
        process = LocustProcess(locust_command(options, None, None, 0)).start()
        try:
            code = process.wait(float("inf"))  # a worker lives as long as its master keeps it
        except KeyboardInterrupt:
            process.stop()
            raise typer.Exit(130) from None
        raise typer.Exit(code)
    if scenario is None:
        raise _fail("name a scenario file (or use --worker)")
    if master and web:
        raise _fail("--web runs its own master: leave out --master")
    overrides = {
        "shape": shape,
        "rate": rate,
        "start_rate": start_rate,
        "calls": calls,
        "duration": duration,
        "within_ms": within_ms,
        "concurrency": concurrency,
        "sources": sources,
        "timeout": timeout,
    }
    from harness.load.plan import PlanError
    from harness.load.report import describe
    from harness.load.run import LoadRunError, dumps, run_load
    from harness.load.spec import load_spec
    from harness.net.gate import SendRefused
    from harness.scenario.plan import skip_reason
    from harness.scenario.setup import applied
    from harness.targets.kinds import choose_profile, resolve
    from harness.targets.target import SetupUnsupported, TargetError
    from harness.yaml_schema import SchemaError

    try:
        prof = choose_profile(resolve(target), profile)
        case = pick_case(scenario, param, prof.release.name)
        spec = load_spec(case, overrides)
    except (SchemaError, TargetError) as exc:
        raise _fail(str(exc)) from exc
    count = spec.workers if workers is None else workers
    mode = "master" if master else ("processes" if count > 0 else "local")
    port = master_port or (5557 if master else free_tcp_port())
    options = LocustOptions(
        mode=mode,
        workers=count,
        master_port=port,
        master_bind_host=master_bind_host,
        web=web,
        web_port=web_port,
        csv=csv,
        html=html,
        json_file=locust_json,
    )
    for path in (csv, html, json_out, locust_json):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
    with opened(target, profile) as stack:
        skip = skip_reason(case, stack)
        if skip is not None:
            raise _fail(f"{case.path}:{case.line}: {skip}")
        try:
            with applied(stack, case.setup) as effective:
                result = run_load(case, effective, spec, options, session_seed=seed or 0)
        except (PlanError, TargetError, SetupUnsupported, SendRefused) as exc:
            raise _fail(str(exc)) from exc
        except (LoadRunError, TimeoutError, OSError) as exc:
            raise _fail(f"infrastructure error: {exc}", EXIT_INFRA) from exc
        except KeyboardInterrupt:
            typer.echo("interrupted: Locust and its workers were stopped", err=True)
            raise typer.Exit(130) from None
        name = stack.name
    typer.echo(describe(result, case, name))
    if json_out is not None:
        json_out.write_text(dumps(result) + "\n", encoding="utf-8")
    raise typer.Exit(EXIT_OK if result.ok else EXIT_FAILED)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def register(app: typer.Typer) -> None:
    app.command("load", help=load.__doc__)(load)
