"""`kazoo-harness mutators`: every mutator with one line of help (also `send --mutate list`)."""

from __future__ import annotations

import typer

from harness.sip.mutators import describe


def print_mutators() -> None:
    rows = describe()
    width = min(max((len(name) for name, _ in rows), default=0), 28)  # a long one just overflows
    for name, text in rows:
        typer.echo(f"{name.ljust(width)}  {text}")


def mutators() -> None:
    """List the mutators usable with `send --mutate NAME[=ARG]` and in scenario files."""
    print_mutators()


def register(app: typer.Typer) -> None:
    app.command("mutators")(mutators)
