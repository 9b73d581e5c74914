"""`kazoo-harness run`: the scenario catalog through pytest and the plugin, with a progress bar, a summary
table grouped by seed cause, reports, and exit codes that tell failures from infrastructure trouble."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import pytest
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from harness.commands.common import EXIT_FAILED, EXIT_INFRA, EXIT_OK, EXIT_USAGE, ProfileOption, TargetOption
from harness.kazoo.causes import CATEGORIES
from harness.progress import listening
from harness.report.html_report import write_html
from harness.targets.file import sbc_refs

LABEL_WIDTH = 60  # the progress bar's label: what runs now


class _Progress:
    """A pytest plugin object feeding a rich progress bar: one tick per scenario, and what runs now (the
    target starting, each of its long steps, the scenario under way) as the bar's label."""

    def __init__(self, progress: Progress, console: Console) -> None:
        self.progress = progress
        self.console = console
        self.task = progress.add_task("running scenarios", total=None)
        self.total = 0
        self.records: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.started = time.monotonic()

    def doing(self, what: str) -> None:
        label = what if len(what) <= LABEL_WIDTH else what[: LABEL_WIDTH - 3] + "..."
        self.progress.update(self.task, description=escape(label))

    def step(self, message: str) -> None:
        """A step of long work (harness.progress): on the bar, and as a line where no bar is drawn."""
        self.doing(message)
        if not self.console.is_terminal:  # a CI log: rich draws no live bar there
            elapsed = time.monotonic() - self.started
            self.console.print(f"[{elapsed:6.1f} s] {message}", markup=False, highlight=False, soft_wrap=True)

    def pytest_runtest_logstart(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        self.doing(f"running {nodeid.rpartition('::')[2]}")

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.total += len(session.items)  # --each-sbc: one pytest run per node, one bar for them all
        self.progress.update(self.task, total=self.total)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.errors.append(str(report.longrepr))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or (report.when == "setup" and not report.passed):
            self.progress.advance(self.task)
            record = next(
                (json.loads(str(v)) for k, v in report.user_properties if k == "harness_record"), None
            )
            if record is None:
                record = {
                    "id": report.nodeid,
                    "name": report.nodeid,
                    "cause": "other",
                    "verdict": report.outcome,
                }
                if report.failed:
                    record["failures"] = [str(report.longrepr)]
            if report.skipped and isinstance(report.longrepr, tuple):
                record["skip_reason"] = str(report.longrepr[2])
            record["verdict"] = report.outcome
            record["failure_text"] = str(report.longrepr) if report.failed else None
            self.records.append(record)


NARROW = 110  # below this many columns the table becomes a list: two lines per scenario, words whole
VERDICT_TEXT = {"passed": "[green]pass[/]", "failed": "[red]FAIL[/]", "skipped": "[yellow]skip[/]"}


def _by_cause(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(records, key=lambda r: CATEGORIES.index(r["cause"]) if r["cause"] in CATEGORIES else 99)


def _name(r: dict[str, Any]) -> str:
    return str(r.get("name", r["id"])) + (f" [{r['param']}]" if r.get("param") else "")


def _ms(r: dict[str, Any]) -> str:
    ms = r.get("timings", {}).get("duration_ms")
    return f"{ms:.0f} ms" if ms else ""


def _summary(console: Console, records: list[dict[str, Any]]) -> None:
    if console.width < NARROW:
        _narrow_summary(console, records)
        return
    table = Table(title="Scenario results by seed cause", show_lines=False)
    for col in ("cause", "scenario", "expected", "got", "time", "verdict"):
        table.add_column(col, overflow="fold")
    last = None
    for r in _by_cause(records):
        cause = r["cause"] if r["cause"] != last else ""
        last = r["cause"]
        verdict = VERDICT_TEXT.get(r["verdict"], r["verdict"])
        # scenario text is data, not rich markup: "[timer]" must show, not vanish as a style tag
        cells = [escape(str(c)) for c in (cause, _name(r), r.get("expected", ""), r.get("got", ""))]
        table.add_row(*cells, _ms(r), verdict)
    console.print(table)


def _narrow_summary(console: Console, records: list[dict[str, Any]]) -> None:
    """The same results for a narrow terminal: per cause, each scenario's verdict, name and time on one
    line and `expected ... got ...` under it; the middle column takes all the room and wraps at words."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column(ratio=1, overflow="fold")
    grid.add_column(no_wrap=True, justify="right")
    last = None
    for r in _by_cause(records):
        if r["cause"] != last:
            grid.add_row("", Text(str(r["cause"]), style="bold underline"), "")
            last = r["cause"]
        detail = Text(f"expected {r.get('expected', '') or '-'} · got {r.get('got', '') or '-'}", style="dim")
        cell = Text(_name(r), style="bold")  # Text, not markup: scenario text is data
        cell.append("\n").append_text(detail)
        grid.add_row(VERDICT_TEXT.get(r["verdict"], r["verdict"]), cell, _ms(r))
    console.print(Text("Scenario results by seed cause", style="italic"))
    console.print(grid)


def terminal_width() -> int | None:
    """The width to lay the table out for: the terminal's (rich finds it, COLUMNS first), else COLUMNS,
    else 160 columns for a log file."""
    if os.isatty(1):
        return None
    return shutil.get_terminal_size((160, 24)).columns


def run(
    paths: Annotated[
        list[str] | None, typer.Argument(help="scenario files or folders (default: scenarios/)")
    ] = None,
    target: TargetOption = "embedded",
    profile: ProfileOption = None,
    keyword: Annotated[
        str | None, typer.Option("-k", help="only scenarios matching this pytest -k expression")
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", envvar="HARNESS_SEED", help="seed for generated data")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="write one JSON record per scenario here")
    ] = None,
    junit: Annotated[Path | None, typer.Option("--junit", help="write JUnit XML here")] = None,
    pcap: Annotated[
        Path | None, typer.Option("--pcap", help="write one pcap per scenario into this directory")
    ] = None,
    html: Annotated[
        Path | None,
        typer.Option("--html", help="write the HTML report (failures first, ladders, log lines) here"),
    ] = None,
    workers: Annotated[
        int, typer.Option("-n", "--workers", help="parallel workers (pytest-xdist); 0 = none")
    ] = 0,
    each_sbc: Annotated[
        bool, typer.Option("--each-sbc", help="run every scenario against each SBC node of the target file")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="only the table, no failure details")] = False,
) -> None:
    """Run scenarios against a target and print a summary table grouped by seed cause.

    Exit status: 0 all passed, 1 scenario failures, 2 usage error, 3 infrastructure error (target
    unreachable, model failed to start).
    """
    # our own handle on the terminal: pytest's file descriptors are redirected while it runs
    console = Console(file=os.fdopen(os.dup(1), "w", buffering=1), width=terminal_width())
    selected = paths or ["scenarios"]
    missing = [p for p in selected if not Path(p.split("::")[0]).exists()]
    if missing:
        console.print(f"[red]error:[/] no such scenario path: {escape(', '.join(missing))}", soft_wrap=True)
        raise typer.Exit(EXIT_USAGE)
    for report in (json_out, junit, html):
        if report is not None:
            report.parent.mkdir(parents=True, exist_ok=True)
    args = [*selected, "-p", "no:cacheprovider", "-q", "--no-header", "--tb=short", "-rN"]
    if profile:
        args += ["--kazoo-profile", profile]  # --kazoo-target per run below (--each-sbc: one run per node)
    if seed is not None:
        args += ["--harness-seed", str(seed)]
    if keyword:
        args += ["-k", keyword]
    # plugins the scenarios do not use cost start-up time (about a second together)
    args += ["-p", "no:hypothesispytest", "-p", "no:benchmark"]
    args += ["-p", "no:html", "-p", "no:metadata"]  # --html is the harness's own report, from the records
    args += ["-n", str(workers)] if workers else ["-p", "no:xdist"]
    refs = sbc_refs(target) if each_sbc else [target]
    # pytest's own terminal output goes to a file: the table below is the readable result
    log = Path(tempfile.mkstemp(prefix="kazoo-harness-run-", suffix=".log")[1])
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        plugin = _Progress(progress, console)
        code = int(pytest.ExitCode.OK)
        for ref in refs:
            first = len(plugin.records)
            node = ref.rpartition("#")[2] if len(refs) > 1 else None
            reports = _report_args(junit, pcap, node)
            with listening(plugin.step):
                node_code = _pytest_quietly([*args, *reports, "--kazoo-target", ref], plugin, log)
            if ref != target:  # a cluster is healthy only when every node is: label records by node
                for record in plugin.records[first:]:
                    record["sbc"] = ref.rpartition("#")[2]
                    record["param"] = " ".join(filter(None, [record.get("param"), f"@{record['sbc']}"]))
            if code in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
                code = node_code
        plugin.doing(f"ran {len(plugin.records)} scenarios")
    records = plugin.records
    if json_out:
        json_out.write_text(json.dumps(records, indent=2) + "\n", encoding="utf-8")
    if html:  # every node's records in one page, side by side
        write_html(records, html)
    if code == pytest.ExitCode.USAGE_ERROR or code == EXIT_INFRA:
        text = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        reason = next(
            (line for line in reversed(text) if "kazoo-harness" in line or "error" in line.lower()), ""
        )
        why = escape(reason or "pytest refused the arguments")
        console.print(f"[red]error:[/] {why} (output: {log})", soft_wrap=True)  # error text stays whole
        raise typer.Exit(EXIT_INFRA if code == EXIT_INFRA else EXIT_USAGE)
    if plugin.errors:
        for err in plugin.errors:
            console.print(f"[red]collection error:[/] {escape(err)}", soft_wrap=True)  # paths stay whole
        raise typer.Exit(EXIT_USAGE)
    _summary(console, records)
    failed = [r for r in records if r["verdict"] == "failed"]
    if not quiet:
        for r in failed:
            console.rule(f"[red]FAILED {r['id']}")
            console.print(
                r.get("failure_text") or "\n".join(r.get("failures", [])), markup=False, highlight=False
            )
    passed = sum(r["verdict"] == "passed" for r in records)
    skipped = sum(r["verdict"] == "skipped" for r in records)
    line = f"{passed} passed, {len(failed)} failed" + (f", {skipped} skipped" if skipped else "")
    console.print(line, markup=False, highlight=False)
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED, pytest.ExitCode.NO_TESTS_COLLECTED):
        status = int(code)
        console.print(f"[red]error:[/] pytest ended with status {status} (output: {log})", soft_wrap=True)
        raise typer.Exit(EXIT_INFRA)
    raise typer.Exit(EXIT_FAILED if failed else EXIT_OK)


def _report_args(junit: Path | None, pcap: Path | None, node: str | None) -> list[str]:
    """pytest's report options; with several SBC nodes each node gets its own files (`junit-node1.xml`,
    `pcaps/node1/`) so no node's report overwrites another's."""

    def per_node(path: Path) -> Path:
        return path.with_name(f"{path.stem}-{node}{path.suffix}") if node else path

    args = []
    if junit:
        args += ["--junitxml", str(per_node(junit))]
    if pcap:
        args += ["--harness-pcap", str(pcap / node if node else pcap)]
    return args


def _pytest_quietly(args: list[str], plugin: _Progress, log: Path) -> int:
    """Run pytest in this process with its terminal output redirected to ``log``."""
    with log.open("w", encoding="utf-8") as sink:
        saved_out, saved_err = os.dup(1), os.dup(2)
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            return int(pytest.main(args, plugins=[plugin]))
        finally:
            os.dup2(saved_out, 1)
            os.dup2(saved_err, 2)
            os.close(saved_out)
            os.close(saved_err)


def register(app: typer.Typer) -> None:
    app.command("run", help=run.__doc__)(run)
