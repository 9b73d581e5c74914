"""Log assertions for one exchange: which lines must appear (how often, in which order) and which must not.

Semantics (docs/logs.md):
- A pattern is a regex searched in the whole raw line; a profile's ``{placeholders}`` are filled before
  (harness.kazoo.profile.fill: the one filler), so the patterns here are plain regexes.
- ``present=True, count=None``: at least once. ``count=N``: exactly N times in the window. ``present=False``:
  never.
- Only lines received at or after ``since`` count (no stale matches from an earlier scenario).
- The verdict comes as soon as the evidence allows: a forbidden line fails at once; when every expectation
  is "at least once" the check passes the moment the last one is seen. Forbidden lines and exact counts can
  only be proven at the end of the window (``deadline``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from harness.logs.correlate import Correlation, correlate
from harness.logs.hub import LogHub
from harness.logs.line import LogLine
from harness.net.exchange import Exchange


@dataclass(frozen=True)
class LogExpectation:
    pattern: str  # a regex (placeholders already filled)
    source: str | None = None  # a source name, None = any source
    count: int | None = None  # None = at least once; N = exactly N times
    present: bool = True

    def describe(self) -> str:
        where = f" in {self.source}" if self.source else ""
        if not self.present:
            return f"never{where}: /{self.pattern}/"
        times = "at least once" if self.count is None else f"exactly {self.count}x"
        return f"{times}{where}: /{self.pattern}/"


@dataclass
class _Compiled:
    expectation: LogExpectation
    regex: re.Pattern[str]
    hits: list[LogLine] = field(default_factory=list)

    def matches(self, line: LogLine) -> bool:
        source = self.expectation.source
        return (source is None or line.source == source) and self.regex.search(line.raw) is not None

    @property
    def satisfied_early(self) -> bool:
        """Proven without waiting for the window to end."""
        e = self.expectation
        return e.present and e.count is None and bool(self.hits)

    @property
    def needs_window_end(self) -> bool:
        e = self.expectation
        return not e.present or e.count is not None

    @property
    def violated(self) -> bool:
        """Proven wrong already (a forbidden line, or more hits than an exact count allows)."""
        e = self.expectation
        if not e.present:
            return bool(self.hits)
        return e.count is not None and len(self.hits) > e.count

    @property
    def ok_at_end(self) -> bool:
        e = self.expectation
        if not e.present:
            return not self.hits
        return len(self.hits) >= 1 if e.count is None else len(self.hits) == e.count


@dataclass
class LogVerdict:
    ok: bool
    matched: list[tuple[LogExpectation, list[LogLine]]]
    missing: list[LogExpectation]
    unexpected: list[tuple[LogExpectation, LogLine]]
    silent_sources: list[str]
    lines: list[LogLine]
    correlation: Correlation
    wrong_count: list[tuple[LogExpectation, int]] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    ordered: bool = False
    decided_early: bool = False

    def explain(self, max_lines: int = 40) -> str:
        out = [
            "log expectations: " + ("met" if self.ok else "NOT met") + (" (in order)" if self.ordered else "")
        ]
        for expectation, hits in self.matched:
            out.append(f"  ok       {expectation.describe()}  <- {hits[0]}")
        for expectation in self.missing:
            out.append(f"  MISSING  {expectation.describe()}")
        for expectation, count in self.wrong_count:
            out.append(f"  COUNT    {expectation.describe()}: seen {count}x")
        for expectation, line in self.unexpected:
            out.append(f"  FORBIDDEN {expectation.describe()}  <- {line}")
        if self.silent_sources:
            out.append(f"  silent sources (no line at all in the window): {', '.join(self.silent_sources)}")
        for name, error in self.errors.items():
            out.append(f"  source {name} failed: {error}")
        related, context = self.correlation.related, self.correlation.context
        out.append(f"  lines tied to this call ({len(related)}):")
        out += [f"    {line}  ({self.correlation.reason(line)})" for line in related[:max_lines]]
        if context:
            out.append(f"  other lines in the window ({len(context)}):")
            out += [f"    {line}" for line in context[:max_lines]]
        return "\n".join(out)


def _compile(expectations: Iterable[LogExpectation]) -> list[_Compiled]:
    compiled = []
    for expectation in expectations:
        try:
            regex = re.compile(expectation.pattern)
        except re.error as exc:
            raise ValueError(f"bad log pattern {expectation.pattern!r}: {exc}") from exc
        compiled.append(_Compiled(expectation, regex))
    return compiled


def _record(compiled: list[_Compiled], line: LogLine, ordered: bool) -> None:
    """Count ``line`` against the expectations; in ordered mode a "must appear" expectation only counts
    once every earlier one has been seen."""
    for index, item in enumerate(compiled):
        if not item.matches(line):
            continue
        if ordered and item.expectation.present:
            earlier = [c for c in compiled[:index] if c.expectation.present]
            if any(not c.hits for c in earlier):
                continue
        item.hits.append(line)


async def check(
    hub: LogHub,
    exchange: Exchange,
    expectations: Sequence[LogExpectation],
    *,
    since: float,
    deadline: float,
    ordered: bool = False,
) -> LogVerdict:
    """Follow the hub from ``since`` until the expectations are decided or ``deadline`` (epoch) passes."""
    compiled = _compile(expectations)
    cursor = hub.cursor(since)
    waits_for_end = any(item.needs_window_end for item in compiled)
    decided_early = False
    while True:
        if any(item.violated for item in compiled):
            decided_early = True
            break
        if not waits_for_end and all(item.satisfied_early for item in compiled):
            decided_early = True
            break
        line = await cursor.next(deadline)
        if line is None or line.received > deadline:  # a busy log must not stretch the window
            break
        _record(compiled, line, ordered)
    return _verdict(hub, exchange, compiled, since, ordered, decided_early)


def _verdict(
    hub: LogHub, exchange: Exchange, compiled: list[_Compiled], since: float, ordered: bool, early: bool
) -> LogVerdict:
    matched, missing, unexpected, wrong_count = [], [], [], []
    for item in compiled:
        e = item.expectation
        if not e.present:
            unexpected += [(e, line) for line in item.hits]
        elif item.ok_at_end:
            matched.append((e, item.hits))
        elif not item.hits:
            missing.append(e)
        else:
            wrong_count.append((e, len(item.hits)))
    lines = hub.lines(since)
    return LogVerdict(
        ok=not missing and not unexpected and not wrong_count,
        matched=matched,
        missing=missing,
        unexpected=unexpected,
        silent_sources=hub.silent_sources(since),
        lines=lines,
        correlation=correlate(lines, exchange),
        wrong_count=wrong_count,
        errors={name: repr(error) for name, error in hub.errors.items()},
        ordered=ordered,
        decided_early=early,
    )
