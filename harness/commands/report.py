"""`kazoo-harness report`: render the HTML report from a saved JSON records file (`run --json`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.report.html_report import RecordsError, load_records, write_html

EXIT_USAGE = 2


def report(
    records: Annotated[Path, typer.Argument(help="a JSON records file written by `run --json`")],
    output: Annotated[Path, typer.Option("-o", "--output", help="the HTML file to write")] = Path(
        "report.html"
    ),
) -> None:
    """Render the HTML report (failures first, ladders, log lines) from a run's saved JSON records."""
    try:
        loaded = load_records(records)
    except RecordsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from exc
    path = write_html(loaded, output)
    failed = sum(r["verdict"] == "failed" for r in loaded)
    typer.echo(f"{path}: {len(loaded)} records, {failed} failed")


def register(app: typer.Typer) -> None:
    app.command("report", help=report.__doc__)(report)
