"""A schema for YAML files, checked on YAML nodes so that every error names file, line and field.

PyYAML's composer keeps the position of every node; checking the node tree (instead of the loaded
Python objects) is what lets an error say `scenarios/acl/x.yaml:12: send.mutators[1]: ...`. Scenario
files (harness.scenario.schema) and expectation profiles (harness.kazoo.profile) are both checked here.

A value check that depends on where the file is used (the log sources of the target under test, say)
reads it from the ``context`` mapping handed to :func:`check`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# (value, context) -> an error message, or None when the value is fine
Validator = Callable[[Any, Mapping[str, Any]], str | None]
NO_CONTEXT: Mapping[str, Any] = {}


class SchemaError(ValueError):
    """A file that does not follow its schema; ``str()`` is `file:line: field: message`."""

    def __init__(self, path: str | Path, line: int | None, field: str, message: str) -> None:
        self.path = str(path)
        self.line = line
        self.field = field
        self.message = message
        loc = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{loc}: {field}: {message}" if field else f"{loc}: {message}")


@dataclass(frozen=True)
class Spec:
    kind: str  # map | list | str | int | number | bool | enum | any | str_or_int | code
    fields: tuple[tuple[str, Spec, bool], ...] = ()  # map: (name, spec, required)
    items: Spec | None = None
    values: tuple[str, ...] = ()
    free_keys: Spec | None = None  # map with arbitrary keys, each value of this spec
    validate: Validator | None = None  # a further check of the value, with the context


def m(*fields: tuple[str, Spec, bool], free: Spec | None = None) -> Spec:
    return Spec("map", fields=fields, free_keys=free)


def lst(items: Spec) -> Spec:
    return Spec("list", items=items)


def enum(*values: str) -> Spec:
    return Spec("enum", values=values)


def checked(spec: Spec, validate: Validator) -> Spec:
    """``spec`` with a further check of its value."""
    return Spec(spec.kind, spec.fields, spec.items, spec.values, spec.free_keys, validate)


STR = Spec("str")
INT = Spec("int")
NUM = Spec("number")
BOOL = Spec("bool")
ANY = Spec("any")
STR_OR_INT = Spec("str_or_int")
CODE = Spec("code")  # a SIP status code 100-699


def line_of(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _scalar(node: yaml.Node) -> Any:
    """The Python value of a node, built by PyYAML's safe constructor (same types as safe_load)."""
    return yaml.constructor.SafeConstructor().construct_object(node, deep=True)


def check(node: yaml.Node, spec: Spec, path: str, field: str, context: Mapping[str, Any] = NO_CONTEXT) -> Any:
    """Check ``node`` against ``spec`` and return its Python value."""
    value = _check(node, spec, path, field, context)
    if spec.validate is not None:
        problem = spec.validate(value, context)
        if problem:
            raise SchemaError(path, line_of(node), field or "(top)", problem)
    return value


def _check(node: yaml.Node, spec: Spec, path: str, field: str, context: Mapping[str, Any]) -> Any:
    def fail(msg: str, at: yaml.Node = node) -> SchemaError:
        return SchemaError(path, line_of(at), field or "(top)", msg)

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
                raise SchemaError(path, line_of(key_node), sub_field, "given twice")
            if key in known:
                out[key] = check(value_node, known[key][0], path, sub_field, context)
            elif spec.free_keys is not None:
                out[key] = check(value_node, spec.free_keys, path, sub_field, context)
            else:
                allowed = ", ".join(known) or "(none)"
                raise SchemaError(path, line_of(key_node), sub_field, f"unknown field (allowed: {allowed})")
        for name, (_, required) in known.items():
            if required and name not in out:
                raise fail(f"missing required field {name!r}")
        return out
    if kind == "list":
        if not isinstance(node, yaml.SequenceNode):
            raise fail(f"expected a list, got {_describe(node)}")
        assert spec.items is not None
        return [check(item, spec.items, path, f"{field}[{i}]", context) for i, item in enumerate(node.value)]
    if not isinstance(node, yaml.ScalarNode):
        raise fail(f"expected a {_kind_name(spec)}, got {_describe(node)}")
    value = _scalar(node)
    is_int = isinstance(value, int) and not isinstance(value, bool)
    ok = {
        "str": isinstance(value, str),
        "int": is_int,
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
        "str_or_int": isinstance(value, str | int) and not isinstance(value, bool),
        "code": is_int and 100 <= value <= 699,
        "enum": isinstance(value, str) and value in spec.values,
    }.get(kind, False)
    if not ok:
        if kind == "enum":
            raise fail(f"{value!r} is not one of: {', '.join(spec.values)}")
        raise fail(f"expected a {_kind_name(spec)}, got {value!r}")
    return str(value) if kind == "str_or_int" else value


def _kind_name(spec: Spec) -> str:
    return {
        "str_or_int": "string or number",
        "number": "number",
        "int": "whole number",
        "code": "SIP status code (100-699)",
    }.get(spec.kind, spec.kind)


def _describe(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return repr(_scalar(node))


def compose(path: Path, text: str | None = None) -> yaml.Node:
    """The node tree of a YAML file; errors as SchemaError with the line."""
    text = path.read_text(encoding="utf-8") if text is None else text
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise SchemaError(path, line, "", f"not valid YAML: {exc.problem}") from exc
    if root is None:
        raise SchemaError(path, 1, "", "empty file")
    return root


def mapping_item(root: yaml.Node, key: str) -> yaml.Node | None:
    """The value node of ``key`` in a mapping node, or None."""
    if isinstance(root, yaml.MappingNode):
        for key_node, value_node in root.value:
            if _scalar(key_node) == key:
                return value_node
    return None
