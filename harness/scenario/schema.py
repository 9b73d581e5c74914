"""The scenario file schema, checked on YAML nodes so that every error names file, line and field.

PyYAML's composer keeps the position of every node; checking the node tree (instead of the loaded
Python objects) is what lets an error say `scenarios/acl/x.yaml:12: send.mutators[1]: ...`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.logs.legs import ROLES

CAUSES = ("acl", "number_format", "number_mapping", "malformed", "call_flow")
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


class ScenarioError(ValueError):
    """A scenario file that does not follow the schema; ``str()`` is `file:line: field: message`."""

    def __init__(self, path: str | Path, line: int | None, field: str, message: str) -> None:
        self.path = str(path)
        self.line = line
        self.field = field
        self.message = message
        loc = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{loc}: {field}: {message}" if field else f"{loc}: {message}")


@dataclass(frozen=True)
class Spec:
    kind: str  # map | list | str | int | number | bool | enum | any | str_or_int | str_or_map
    fields: tuple[tuple[str, Spec, bool], ...] = ()  # map: (name, spec, required)
    items: Spec | None = None
    values: tuple[str, ...] = ()
    free_keys: Spec | None = None  # map with arbitrary keys, each value of this spec
    doc: str = ""


def m(*fields: tuple[str, Spec, bool], free: Spec | None = None) -> Spec:
    return Spec("map", fields=fields, free_keys=free)


def lst(items: Spec) -> Spec:
    return Spec("list", items=items)


def enum(*values: str) -> Spec:
    return Spec("enum", values=values)


STR = Spec("str")
INT = Spec("int")
NUM = Spec("number")
BOOL = Spec("bool")
ANY = Spec("any")
STR_OR_INT = Spec("str_or_int")

LOG_PATTERN = m(("pattern", STR, True), ("source", STR, False), ("count", INT, False))
LOGS = m(("present", lst(LOG_PATTERN), False), ("absent", lst(LOG_PATTERN), False), ("ordered", BOOL, False))
FINAL = m(("code", Spec("code_or_codes"), True), ("reason", STR, False))
# captured legs (HEP, docs/hep.md)
LEG = m(
    ("from", enum(*ROLES), False),
    ("to", enum(*ROLES), False),
    ("message", STR_OR_INT, False),
    ("headers", m(free=STR), False),
    ("count", INT, False),
    ("source", STR, False),
    ("capture_id", INT, False),
)
CAPTURE = m(("present", lst(LEG), False), ("absent", lst(LEG), False))
EXPECT = m(
    ("outcome", STR, False),
    ("final", FINAL, False),
    ("provisional", lst(INT), False),
    ("silence", BOOL, False),
    ("closed", BOOL, False),
    ("headers", m(free=STR), False),
    ("absent_headers", lst(STR), False),
    ("min_delay", NUM, False),
    ("logs", LOGS, False),
    ("capture", CAPTURE, False),
    ("never", lst(enum("voicemail", "ivr", "ringing_without_audio", "answered")), False),
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
SETUP = m(
    ("system_config", m(free=m(free=ANY)), False),
    ("media", enum("up", "down"), False),
)
PARAM = m(
    ("id", STR_OR_INT, True),
    ("carrier", CARRIER, False),
    ("send", SEND, False),
    ("expect", EXPECT, False),
    ("setup", SETUP, False),
)
SCENARIO = m(
    ("name", STR, True),
    ("cause", enum(*CAUSES), True),
    ("description", STR, True),
    ("carrier", CARRIER, False),
    ("send", SEND, True),
    ("expect", EXPECT, True),
    ("setup", SETUP, False),
    ("params", lst(PARAM), False),
    ("releases", lst(enum("kazoo-4.3", "kazoo-5")), False),
    ("targets", lst(STR), False),
    ("markers", lst(STR), False),
    ("seed", INT, False),
)
FILE = m(("scenarios", lst(SCENARIO), True))


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _scalar(node: yaml.Node) -> Any:
    """The Python value of a node, built by PyYAML's safe constructor (same types as safe_load)."""
    return yaml.constructor.SafeConstructor().construct_object(node, deep=True)


def check(node: yaml.Node, spec: Spec, path: str, field: str) -> Any:
    """Check ``node`` against ``spec`` and return its Python value."""

    def fail(msg: str, at: yaml.Node = node) -> ScenarioError:
        return ScenarioError(path, _line(at), field or "(top)", msg)

    kind = spec.kind
    if kind == "any":
        return _scalar(node)
    if kind == "map":
        if not isinstance(node, yaml.MappingNode):
            raise fail(f"expected a mapping, got {_describe(node)}")
        known = {name: (sub, req) for name, sub, req in spec.fields}
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            if not isinstance(key, str):
                raise fail(f"keys must be strings, got {key!r}", key_node)
            sub_field = f"{field}.{key}" if field else key
            if key in out:
                raise ScenarioError(path, _line(key_node), sub_field, "given twice")
            if key in known:
                out[key] = check(value_node, known[key][0], path, sub_field)
            elif spec.free_keys is not None:
                out[key] = check(value_node, spec.free_keys, path, sub_field)
            else:
                allowed = ", ".join(known) or "(none)"
                raise ScenarioError(path, _line(key_node), sub_field, f"unknown field (allowed: {allowed})")
        for name, (_, required) in known.items():
            if required and name not in out:
                raise fail(f"missing required field {name!r}")
        return out
    if kind == "list":
        if not isinstance(node, yaml.SequenceNode):
            raise fail(f"expected a list, got {_describe(node)}")
        assert spec.items is not None
        return [check(item, spec.items, path, f"{field}[{i}]") for i, item in enumerate(node.value)]
    if not isinstance(node, yaml.ScalarNode):
        raise fail(f"expected a {_kind_name(spec)}, got {_describe(node)}")
    value = _scalar(node)
    ok = {
        "str": isinstance(value, str),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
        "str_or_int": isinstance(value, str | int) and not isinstance(value, bool),
        "code_or_codes": isinstance(value, int) and not isinstance(value, bool),
        "enum": isinstance(value, str) and value in spec.values,
    }.get(kind, False)
    if kind == "code_or_codes" and not ok:
        raise fail(f"expected a SIP status code (100-699), got {value!r}")
    if kind == "code_or_codes" and not 100 <= value <= 699:
        raise fail(f"expected a SIP status code (100-699), got {value!r}")
    if not ok:
        if kind == "enum":
            raise fail(f"{value!r} is not one of: {', '.join(spec.values)}")
        raise fail(f"expected a {_kind_name(spec)}, got {value!r}")
    return str(value) if kind == "str_or_int" else value


def _kind_name(spec: Spec) -> str:
    return {"str_or_int": "string or number", "number": "number", "int": "whole number"}.get(
        spec.kind, spec.kind
    )


def _describe(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return repr(_scalar(node))


def load_file(path: Path) -> list[tuple[dict[str, Any], int]]:
    """Read and check a scenario file: a single scenario, or `scenarios:` with a list of them.

    Returns each scenario's data with the line it starts on.
    """
    text = path.read_text(encoding="utf-8")
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise ScenarioError(path, line, "", f"not valid YAML: {exc.problem}") from exc
    if root is None:
        raise ScenarioError(path, 1, "", "empty file")
    if isinstance(root, yaml.MappingNode) and any(_scalar(k) == "scenarios" for k, _ in root.value):
        for key_node, value_node in root.value:
            if _scalar(key_node) == "scenarios":
                if not isinstance(value_node, yaml.SequenceNode):
                    raise ScenarioError(path, _line(value_node), "scenarios", "expected a list of scenarios")
                return [
                    (check(item, SCENARIO, str(path), f"scenarios[{i}]"), _line(item))
                    for i, item in enumerate(value_node.value)
                ]
    return [(check(root, SCENARIO, str(path), ""), _line(root))]
