"""The `kazoo-harness` command line. Each subcommand lives in harness/commands/<name>.py and exposes
``register(app)``; this module only assembles them, so a subcommand has one reason to change."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="kazoo-harness",
    help="SIP test-call harness for Kazoo (2600Hz) stacks: crafted carrier INVITEs against an embedded "
    "Kazoo model or a real stack, with assertions on response codes and on the stack's log lines.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Subcommand modules, in the order --help lists them.
COMMANDS = [
    "run",
    "report",
    "send",
    "model",
    "mutators",
    "target",
    "diagnose",
    "restore",
    "replay",
    "probe",
    "load",
]


def _load() -> None:
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"harness.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"harness.commands.{name}":
                continue  # not built yet
            raise
        module.register(app)


_load()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
