"""The harness's own HTML report: one self-contained page (inline CSS, JS and SVG; no CDN, works offline)
rendered with Jinja2 from the JSON records of a run — the same records `run --json` writes.

    write_html(records, "out/report.html")       # from a run's records
    write_html(load_records("results.json"), "r.html")

The view (what is shown, in which order) is computed in :mod:`harness.report.html_view`; the templates in
``harness/report/templates/`` only lay it out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from harness.report.html_view import build_view

TEMPLATES = "templates"


class RecordsError(ValueError):
    """A file that is not a run's JSON records."""


@cache
def _environment() -> jinja2.Environment:
    # Jinja2 (already here through pytest-html): autoescaping by default, so record text is never markup
    return jinja2.Environment(
        loader=jinja2.PackageLoader("harness.report", TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _asset(name: str) -> Markup:
    """A static file inlined into the page (trusted: it ships with the harness)."""
    return Markup((files("harness.report") / TEMPLATES / name).read_text(encoding="utf-8"))


def render_html(records: Sequence[Mapping[str, Any]], *, html_dir: Path | None = None) -> str:
    """The report page for ``records``; ``html_dir`` is where it will live (pcap links are relative to it)."""
    view = build_view(records, html_dir=html_dir)
    template = _environment().get_template("report.html.j2")
    return template.render(view=view, css=_asset("report.css"), js=_asset("report.js"))


def write_html(records: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Write the report for ``records`` to ``path`` (its folder is created); returns the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(records, html_dir=out.parent), encoding="utf-8")
    return out


def load_records(path: str | Path) -> list[dict[str, Any]]:
    """The records of a saved `run --json` / `--harness-json` file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordsError(f"{path}: cannot read JSON records: {exc}") from exc
    if not isinstance(data, list) or not all(isinstance(r, dict) and "verdict" in r for r in data):
        raise RecordsError(f"{path}: not a list of scenario records (from `kazoo-harness run --json`)")
    return data


__all__ = ["RecordsError", "load_records", "render_html", "write_html"]
