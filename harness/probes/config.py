"""The probes file (`--config probes.yaml`): named probes of catalog scenarios with their own params and
timeout, and the exporter's settings. Checked on YAML nodes like scenario files: every error names the
file, the line and the field.

    catalog: ../scenarios        # relative to this file; --catalog overrides
    timeout: 10                  # seconds, default for every probe
    concurrency: 1               # probes at once against one SBC node
    probes:
      carrier_x_routes:
        scenario: a_routed_call_rings_answers_and_hangs_up[udp]   # a catalog test id or name
        params: {carrier: {address: "127.0.0.77"}}                  # merged as a `params:` entry
        timeout: 5
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.scenario.case import PARAM_FIELDS
from harness.scenario.schema import CARRIER, EXPECT, SEND, SETUP
from harness.yaml_schema import INT, NUM, STR, check, checked, compose, line_of, m, mapping_item

DEFAULT_TIMEOUT = 10.0  # seconds: blackbox_exporter's default too; a scrape's own timeout caps it
DEFAULT_CONCURRENCY = 1  # probes at once per SBC node


def _positive(value: Any, _ctx: Mapping[str, Any]) -> str | None:
    return None if value > 0 else f"must be greater than 0, got {value!r}"


PARAMS = m(
    *((name, spec, False) for name, spec in zip(PARAM_FIELDS, (CARRIER, SEND, EXPECT, SETUP), strict=True))
)
PROBE = m(("scenario", STR, True), ("params", PARAMS, False), ("timeout", checked(NUM, _positive), False))
CONFIG = m(
    ("catalog", STR, False),
    ("timeout", checked(NUM, _positive), False),
    ("concurrency", checked(INT, _positive), False),
    ("probes", m(free=PROBE), False),
)


@dataclass(frozen=True)
class ProbeSpec:
    """A named probe of the config: a catalog scenario, params merged over it, its own timeout."""

    name: str
    scenario: str  # a catalog test id or scenario name
    params: Mapping[str, Any] = field(default_factory=dict)
    timeout: float | None = None
    where: str = ""  # file:line, for errors about it


@dataclass(frozen=True)
class ProbeConfig:
    catalog: Path | None = None
    timeout: float = DEFAULT_TIMEOUT
    concurrency: int = DEFAULT_CONCURRENCY
    probes: Mapping[str, ProbeSpec] = field(default_factory=dict)
    path: Path | None = None


def load_config(path: Path, ctx: Mapping[str, Any] | None = None) -> ProbeConfig:
    """Read and check a probes file (SchemaError naming file:line:field); ``ctx``: what is known of the
    target (harness.scenario.schema.context), so that a log source it lacks is an error at its line."""
    root = compose(path)
    data = check(root, CONFIG, str(path), "", ctx or {})
    probes_node = mapping_item(root, "probes")
    lines: dict[str, int] = {}
    if probes_node is not None:
        for key_node, _ in probes_node.value:
            lines[str(key_node.value)] = line_of(key_node)
    probes = {
        name: ProbeSpec(
            name=name,
            scenario=spec["scenario"],
            params=spec.get("params") or {},
            timeout=float(spec["timeout"]) if "timeout" in spec else None,
            where=f"{path}:{lines.get(name, 1)}",
        )
        for name, spec in (data.get("probes") or {}).items()
    }
    catalog = data.get("catalog")
    return ProbeConfig(
        catalog=(path.parent / catalog) if catalog is not None else None,
        timeout=float(data.get("timeout", DEFAULT_TIMEOUT)),
        concurrency=int(data.get("concurrency", DEFAULT_CONCURRENCY)),
        probes=probes,
        path=path,
    )
