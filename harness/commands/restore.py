"""`kazoo-harness restore`: undo the provisioning of interrupted runs from their journals.

Exit status: 0 nothing to do or everything restored, 1 a journal could not be restored (it is kept).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.kazoo.couch import CouchClient, CouchError
from harness.kazoo.esl import EslError
from harness.kazoo.journal import Journal, default_journal_dir, pending_journals
from harness.kazoo.provision import restore_journal
from harness.kazoo.release import DEFAULTS
from harness.targets.redact import redact


def _endpoints(
    journal: Journal, target: Path | None
) -> tuple[CouchClient, tuple[str, int, str] | None, tuple[str, ...]]:
    """The client and event socket a journal's changes were made through; credentials come from the
    target file (the journal holds none)."""
    header = journal.header
    target_path = target or (Path(header["target"]) if header.get("target") else None)
    if target_path is not None:
        from harness.targets.file import load_target_file

        spec = load_target_file(target_path)
        access = spec.stack_access()
        client = CouchClient(
            str(header.get("couch_url") or access.couch_url),
            access.couch_username,
            access.couch_password,
            strip_db_slashes=bool(header.get("strip_db_slashes")),
        )
        return client, access.esl, spec.secrets()
    client = CouchClient(str(header["couch_url"]), strip_db_slashes=bool(header.get("strip_db_slashes")))
    esl = header.get("esl")
    return client, (str(esl[0]), int(esl[1]), DEFAULTS.esl_password) if esl else None, ()


def restore(
    journal_dir: Annotated[
        Path | None,
        typer.Option("--journal-dir", help="where journals are (default $KAZOO_HARNESS_JOURNAL_DIR)"),
    ] = None,
    journal: Annotated[Path | None, typer.Option("--journal", help="restore only this journal file")] = None,
    target: Annotated[Path | None, typer.Option("--target", help="target file for credentials")] = None,
) -> None:
    """Undo the provisioning of interrupted runs (e.g. after kill -9): every document back as it was."""
    journals = [Journal(journal)] if journal else list(pending_journals(journal_dir or default_journal_dir()))
    if not journals:
        typer.echo("nothing to restore")
        raise typer.Exit(0)
    failed = 0
    for item in journals:
        secrets: tuple[str, ...] = ()
        try:
            client, esl, secrets = _endpoints(item, target)
            with client:
                actions = restore_journal(item, client, esl=esl)
        except (CouchError, EslError, OSError, ValueError, KeyError) as exc:
            failed += 1
            typer.echo(redact(f"{item.path}: NOT restored ({exc}); the journal is kept", secrets), err=True)
            continue
        typer.echo(f"{item.path}: restored")
        for action in actions:
            typer.echo(f"  {action}")
    raise typer.Exit(1 if failed else 0)


def register(app: typer.Typer) -> None:
    app.command("restore", help=restore.__doc__)(restore)
