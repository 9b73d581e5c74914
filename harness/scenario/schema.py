"""The scenario file schema (harness.yaml_schema checks it on YAML nodes: every error names file, line and
field).

Where the target is known (a pytest run, `kazoo-harness run`), the check also knows its log sources and
the profile's `never` words, through the context: a pattern watched in a source the target does not have
is an error at its line, not a check that silently passes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from harness.kazoo.causes import CATEGORIES
from harness.kazoo.profile import capture_spec, leg_spec
from harness.kazoo.release import RELEASE_NAMES
from harness.kazoo.roles import OPTIONAL_ROLES
from harness.yaml_schema import (
    ANY,
    BOOL,
    CODE,
    INT,
    NUM,
    STR,
    STR_OR_INT,
    SchemaError,
    check,
    checked,
    compose,
    enum,
    line_of,
    lst,
    m,
    mapping_item,
)

TRANSPORTS = ("udp", "tcp", "tls")
NUMBER_FORMATS = (
    "e164",
    "nanp11",
    "nanp10",
    "intl011",
    "intl00",
    "dashed",
    "dotted",
    "spaced",
    "parens",
    "digits",
)
WIRE_NEVER = ("ringing_without_audio", "answered")  # judged on the wire; the profile names the others
LOG_SOURCES = "log_sources"  # context key: the target's log source names
NEVER_WORDS = "never_words"  # context key: the profile's `never` words


def context(
    log_sources: Sequence[str] | None = None, never_words: Sequence[str] | None = None
) -> dict[str, Any]:
    """What the check knows of where the scenarios run (None: not known, anything goes)."""
    out: dict[str, Any] = {}
    if log_sources is not None:
        out[LOG_SOURCES] = tuple(log_sources)
    if never_words is not None:
        out[NEVER_WORDS] = tuple(never_words)
    return out


def _source_ok(value: Any, ctx: Mapping[str, Any]) -> str | None:
    known = ctx.get(LOG_SOURCES)
    if known is None or value in known:
        return None
    return f"{value!r} is not a log source of the target (its sources: {', '.join(known) or 'none'})"


def _never_ok(value: Any, ctx: Mapping[str, Any]) -> str | None:
    words = (*WIRE_NEVER, *ctx.get(NEVER_WORDS, ()))
    if NEVER_WORDS not in ctx or value in words:
        return None
    return f"{value!r} is not one of: {', '.join(words)}"


LOG_PATTERN = m(("pattern", STR, True), ("source", checked(STR, _source_ok), False), ("count", INT, False))
LOGS = m(("present", lst(LOG_PATTERN), False), ("absent", lst(LOG_PATTERN), False), ("ordered", BOOL, False))
CAPTURE = capture_spec(leg_spec(STR, checked(STR, _source_ok)))  # captured legs (HEP, docs/hep.md)


def _codes(value: Any, _ctx: Mapping[str, Any]) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 699:
        return None
    return f"expected a SIP status code (100-699), got {value!r}"


FINAL = m(("code", checked(ANY, _codes), True), ("reason", STR, False))
EXPECT = m(
    ("outcome", STR, False),
    ("final", FINAL, False),
    ("provisional", lst(CODE), False),
    ("silence", BOOL, False),
    ("closed", BOOL, False),
    ("headers", m(free=STR), False),
    ("absent_headers", lst(STR), False),
    ("min_delay", NUM, False),
    ("logs", LOGS, False),
    ("capture", CAPTURE, False),
    ("never", lst(checked(STR, _never_ok)), False),
    ("timeout", NUM, False),
)
CARRIER = m(
    ("role", STR, False),
    ("address", STR, False),
    ("port", INT, False),
    ("transport", enum(*TRANSPORTS), False),
)
SEND = m(
    ("to", enum("sbc", "media"), False),
    ("method", enum("INVITE", "OPTIONS"), False),
    ("number", STR_OR_INT, False),
    ("format", enum(*NUMBER_FORMATS), False),
    ("ruri_user", STR_OR_INT, False),
    ("to_user", STR_OR_INT, False),
    ("ruri_host", STR, False),
    ("to_host", STR, False),
    ("from_user", STR_OR_INT, False),
    ("from_display", STR, False),
    ("headers", m(free=STR_OR_INT), False),
    ("remove_headers", lst(STR), False),
    ("mutators", lst(STR_OR_INT), False),
    ("sdp", BOOL, False),
    ("codecs", lst(STR), False),
    ("credentials", m(("username", STR, True), ("password", STR, True)), False),
    ("cancel_after_provisional", BOOL, False),
    ("raw", STR, False),
)
# load: the scenario at rate (harness/load, docs/load.md)
SHARE = m(("min", NUM, False), ("max", NUM, False))
PERCENTILES = m(("p50", NUM, False), ("p90", NUM, False), ("p95", NUM, False), ("p99", NUM, False),
                ("max", NUM, False))  # fmt: skip
AT_MOST = m(("max", INT, False))
LOAD_EXPECT = m(
    ("outcomes", m(free=SHARE), False),
    ("latency", m(("final", PERCENTILES, False), ("first_provisional", PERCENTILES, False)), False),
    ("retransmissions", AT_MOST, False),
    ("timeouts", AT_MOST, False),
    ("send_errors", AT_MOST, False),
    ("logs", LOGS, False),
)
LOAD = m(
    ("shape", enum("constant", "ramp", "burst"), False),
    ("rate", NUM, False),
    ("start_rate", NUM, False),
    ("duration", NUM, False),
    ("calls", INT, False),
    ("within_ms", NUM, False),
    ("concurrency", INT, False),
    ("sources", INT, False),
    ("source_addresses", lst(STR), False),
    ("timeout", NUM, False),
    ("workers", INT, False),
    ("expect", LOAD_EXPECT, False),
)
SETUP = m(
    ("system_config", m(free=m(free=ANY)), False),
    ("media", enum("up", "down"), False),
    # e.g. {antiflood: on}: optional roles of harness/kazoo/roles.py, on or off (harness/scenario/setup.py)
    ("kamailio_roles", m(*((name, BOOL, False) for name in OPTIONAL_ROLES)), False),
)
PARAM = m(
    ("id", STR_OR_INT, True),
    ("carrier", CARRIER, False),
    ("send", SEND, False),
    ("expect", EXPECT, False),
    ("setup", SETUP, False),
    ("load", LOAD, False),
)
SCENARIO = m(
    ("name", STR, True),
    ("cause", enum(*CATEGORIES), True),
    ("description", STR, True),
    ("carrier", CARRIER, False),
    ("send", SEND, True),
    ("expect", EXPECT, True),
    ("setup", SETUP, False),
    ("params", lst(PARAM), False),
    ("load", LOAD, False),
    ("releases", lst(enum(*RELEASE_NAMES)), False),
    ("targets", lst(STR), False),
    ("markers", lst(STR), False),
    ("seed", INT, False),
)


# Top-level keys only a scenario file has (profiles have outcomes/release, compose files services, ...):
# one of them is enough, so that a misspelt field is reported, not the whole file skipped.
SCENARIO_KEYS = ("scenarios", "send", "expect", "carrier", "cause")


def is_scenario_file(path: Path) -> bool | None:
    """Does this YAML file hold scenarios (a mapping with one of SCENARIO_KEYS at the top)? None when it
    does not parse: the caller decides whether it was meant as one (the loader then reports the error)."""
    if path.suffix not in (".yaml", ".yml"):
        return False
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    if not isinstance(root, yaml.MappingNode):
        return False
    return any(mapping_item(root, key) is not None for key in SCENARIO_KEYS)


def load_file(path: Path, ctx: Mapping[str, Any] | None = None) -> list[tuple[dict[str, Any], int]]:
    """Read and check a scenario file: a single scenario, or `scenarios:` with a list of them.

    Returns each scenario's data with the line it starts on.
    """
    root = compose(path)
    ctx = ctx or {}
    listed = mapping_item(root, "scenarios")
    if listed is not None:
        if not isinstance(listed, yaml.SequenceNode):
            raise SchemaError(path, line_of(listed), "scenarios", "expected a list of scenarios")
        return [
            (check(item, SCENARIO, str(path), f"scenarios[{i}]", ctx), line_of(item))
            for i, item in enumerate(listed.value)
        ]
    return [(check(root, SCENARIO, str(path), "", ctx), line_of(root))]


def check_scenario(data: Mapping[str, Any], ctx: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A scenario given as Python data (the run_scenario fixture) checked like a file."""
    node = yaml.compose(yaml.safe_dump(dict(data)))
    assert node is not None
    checked_data: dict[str, Any] = check(node, SCENARIO, "<python>", "", ctx or {})
    return checked_data
