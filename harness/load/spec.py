"""A load run's shape and thresholds, from a scenario's checked `load:` block and command-line overrides.

The schema (harness/scenario/schema.py, LOAD) has already checked types with file:line errors; this
module checks what depends on several fields (a ramp needs a duration, shares lie in 0..1) and names the
scenario's file, line and field in the same way.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace
from typing import Any

from harness.kazoo.profile import LogPattern
from harness.load.schedule import Schedule
from harness.scenario.case import ScenarioCase
from harness.yaml_schema import SchemaError

DEFAULT_CALLS = 100
DEFAULT_RATE = 50.0
DEFAULT_CONCURRENCY = 2048
MAX_POOL = 4096
PERCENTILE_KEYS = ("p50", "p90", "p95", "p99", "max")


@dataclass(frozen=True)
class Share:
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class Thresholds:
    """What the whole run must show. ``outcomes`` maps an outcome (a profile outcome name, `silence`,
    `no final`, or a status code such as `604`) to its share of the calls; empty means "every call gets
    the scenario's own expected outcome"."""

    outcomes: dict[str, Share] = field(default_factory=dict)
    final_ms: dict[str, float] = field(default_factory=dict)  # percentile key -> at most (ms)
    provisional_ms: dict[str, float] = field(default_factory=dict)
    retransmissions: int | None = None
    timeouts: int | None = None
    send_errors: int | None = None
    logs_present: tuple[LogPattern, ...] = ()  # count = at least (default 1)
    logs_absent: tuple[LogPattern, ...] = ()


@dataclass(frozen=True)
class LoadSpec:
    schedule: Schedule
    concurrency: int = DEFAULT_CONCURRENCY
    sources: int = 1  # consecutive addresses from the carrier role's address
    source_addresses: tuple[str, ...] = ()  # or an explicit pool
    timeout: float | None = None  # per call; None: from the expectation and the target
    workers: int = 1
    thresholds: Thresholds = Thresholds()


def _fail(case: ScenarioCase, where: str, message: str) -> SchemaError:
    return SchemaError(case.path, case.line, f"load.{where}" if where else "load", message)


def load_spec(case: ScenarioCase, overrides: dict[str, Any] | None = None) -> LoadSpec:
    """The case's `load:` block with ``overrides`` (CLI flags, same keys) on top."""
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    data = {**case.load, **given}
    if "duration" in given and "calls" not in given:
        data.pop("calls", None)  # a duration asked for on the command line bounds the run
    shape = str(data.get("shape") or ("burst" if "within_ms" in data else "constant"))
    calls = data.get("calls")
    duration = data.get("duration")
    if calls is None and duration is None:
        calls = DEFAULT_CALLS
    try:
        schedule = Schedule(
            shape=shape,
            rate=float(data.get("rate", DEFAULT_RATE)),
            start_rate=float(data.get("start_rate", 0.0)),
            duration=float(duration) if duration is not None else None,
            calls=int(calls) if calls is not None else None,
            within=float(data.get("within_ms", 0.0)) / 1000.0,
        )
    except ValueError as exc:
        raise _fail(case, "", str(exc)) from exc
    concurrency = int(data.get("concurrency", DEFAULT_CONCURRENCY))
    if concurrency < 1:
        raise _fail(case, "concurrency", "must be >= 1 call in flight")
    sources = int(data.get("sources", 1))
    if not 1 <= sources <= MAX_POOL:
        raise _fail(case, "sources", f"must be 1..{MAX_POOL} addresses")
    addresses = tuple(str(a) for a in data.get("source_addresses") or ())
    for a in addresses:
        try:
            ipaddress.IPv4Address(a)
        except ValueError as exc:
            raise _fail(case, "source_addresses", f"not an IPv4 address: {a!r}") from exc
    workers = int(data.get("workers", 1))
    if workers < 0:
        raise _fail(case, "workers", "must be >= 0 (0: one process, no ZeroMQ)")
    timeout = data.get("timeout")
    if timeout is not None and float(timeout) <= 0:
        raise _fail(case, "timeout", "must be > 0 s")
    return LoadSpec(
        schedule=schedule,
        concurrency=concurrency,
        sources=sources,
        source_addresses=addresses,
        timeout=float(timeout) if timeout is not None else None,
        workers=workers,
        thresholds=_thresholds(case, data.get("expect") or {}),
    )


def _thresholds(case: ScenarioCase, expect: dict[str, Any]) -> Thresholds:
    outcomes = {}
    for name, bounds in (expect.get("outcomes") or {}).items():
        share = Share(bounds.get("min"), bounds.get("max"))
        for key, value in (("min", share.min), ("max", share.max)):
            if value is not None and not 0 <= value <= 1:
                raise _fail(case, f"expect.outcomes.{name}.{key}", f"a share is 0..1, got {value!r}")
        if share.min is None and share.max is None:
            raise _fail(case, f"expect.outcomes.{name}", "give min and/or max (shares 0..1)")
        outcomes[str(name)] = share
    latency = expect.get("latency") or {}
    logs = expect.get("logs") or {}
    return Thresholds(
        outcomes=outcomes,
        final_ms={k: float(v) for k, v in (latency.get("final") or {}).items()},
        provisional_ms={k: float(v) for k, v in (latency.get("first_provisional") or {}).items()},
        retransmissions=(expect.get("retransmissions") or {}).get("max"),
        timeouts=(expect.get("timeouts") or {}).get("max"),
        send_errors=(expect.get("send_errors") or {}).get("max"),
        logs_present=tuple(LogPattern.from_dict(p) for p in logs.get("present") or ()),
        logs_absent=tuple(LogPattern.from_dict(p) for p in logs.get("absent") or ()),
    )


def with_workers(spec: LoadSpec, workers: int | None) -> LoadSpec:
    return spec if workers is None else replace(spec, workers=workers)
