"""What the HTML report shows, computed from the JSON records alone (harness/scenario/records.py).

Pure functions of the records (the same list `run --json` writes), so a saved results.json renders the
same page later. The template (templates/report.html.j2) only lays these views out.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.kazoo.causes import CALL_FLOW, CATEGORIES, Cause
from harness.report.ladder import DropMarker, Ladder, LadderArrow, svg_of

Record = Mapping[str, Any]

# the guide's numbering, short enough for a table header
CAUSE_LABELS: dict[str, str] = {
    Cause.ACL: "1 · ACL",
    Cause.NUMBER_FORMAT: "2 · number format",
    Cause.NUMBER_MAPPING: "3 · number mapping",
    Cause.MALFORMED: "4 · malformed INVITE",
    CALL_FLOW: "call flow",
}
# failures first, then what did not run, then passes
VERDICT_ORDER = {"failed": 0, "error": 0, "skipped": 1, "passed": 2}


@dataclass(frozen=True)
class Segment:
    text: str
    hit: bool  # inside a span a matched pattern found


@dataclass(frozen=True)
class LogRow:
    source: str
    segments: tuple[Segment, ...]
    reason: str | None  # why the line is tied to the call (call-id, number, source address)
    matched: bool  # a pattern of the scenario matched this line


@dataclass(frozen=True)
class PatternRow:
    status: str  # "ok" | "missing" | "forbidden" | "count"
    pattern: str  # as the expectation describes itself
    detail: str = ""  # the line that matched / was forbidden, or the count seen


@dataclass(frozen=True)
class RunView:
    """One record: one scenario run, on one SBC node when the run covered several."""

    node: str | None
    verdict: str
    expected: str
    got: str
    failures: tuple[str, ...]
    ladder_svg: str | None
    arrows: int
    stack_svg: str | None  # the stack's own view: the legs its HEP capture holds
    stack_legs: int
    capture_summary: str | None  # parity: what the SBC received and relayed of the carrier's messages
    log_rows: tuple[LogRow, ...]
    patterns: tuple[PatternRow, ...]
    silent_sources: tuple[str, ...]
    reproduce: str
    pcap_href: str | None
    call_id: str | None
    number: str | None
    duration_ms: float | None
    skip_reason: str | None
    failure_text: str | None


@dataclass(frozen=True)
class ScenarioView:
    """A scenario (one id in one file) with its runs side by side, one per node."""

    key: str
    name: str
    cause: str
    location: str
    verdict: str  # the worst of its runs
    runs: tuple[RunView, ...]
    search: str  # lower-case text the search box matches: name, id, Call-IDs, numbers

    @property
    def cause_label(self) -> str:
        return CAUSE_LABELS.get(self.cause, self.cause)


@dataclass(frozen=True)
class CauseCount:
    cause: str
    label: str
    passed: int
    failed: int
    skipped: int


@dataclass(frozen=True)
class ReportView:
    targets: tuple[str, ...]
    profiles: tuple[str, ...]
    seeds: tuple[str, ...]
    started: str
    finished: str
    nodes: tuple[str, ...]
    counts: tuple[CauseCount, ...]
    node_counts: tuple[tuple[str, int, int, int], ...]  # node, passed, failed, skipped
    scenarios: tuple[ScenarioView, ...]
    totals: dict[str, int] = field(default_factory=dict)


def _distinct(values: Iterable[Any]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for v in values:
        if v not in (None, ""):
            seen.setdefault(str(v), None)
    return tuple(seen)


def _verdict(record: Record) -> str:
    return str(record.get("verdict", "error"))


def _time(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# -- the ladder of a record ----------------------------------------------------------------------


def ladder_of_record(record: Record) -> Ladder | None:
    """The record's exchange as a ladder: its messages in time order, the silent tail and the drop lines."""
    ex = record.get("exchange")
    if not ex:
        return None
    events = [*ex.get("sent", []), *ex.get("received", [])]
    # time order; on a tie what was sent comes first (a response never precedes its request)
    events.sort(key=lambda e: (e["t_ms"], e["direction"] != "sent"))
    arrows = tuple(
        LadderArrow(e["t_ms"], e["src"], e["dst"], e["first_line"], e["direction"]) for e in events
    )
    until = None
    drops: tuple[DropMarker, ...] = ()
    if ex.get("final") is None:
        until = max([float(ex.get("duration_ms") or 0.0), *(a.t_ms for a in arrows)])
        started = (record.get("timings") or {}).get("started")
        matched = (record.get("logs") or {}).get("matched") or []
        if started is not None:
            drops = tuple(
                DropMarker(round((m["received"] - started) * 1000, 1), f"[{m['source']}] {m['line']}")
                for m in matched
                if m.get("received") is not None
            )
    final = ex.get("final")
    outcome = record.get("outcome_text") or (
        f"final {final['code']} {final['reason']}" if final else str(ex.get("outcome"))
    )
    return Ladder(
        title=f"{ex.get('method', 'INVITE')} {ex.get('call_id') or '-'}: {outcome}",
        local=str(ex["local"]),
        remote=str(ex["remote"]),
        transport=str(ex.get("transport", "udp")),
        method=str(ex.get("method", "INVITE")),
        arrows=arrows,
        outcome=outcome,
        silence_until_ms=until,
        drops=drops,
    )


def stack_ladder_of_record(record: Record) -> Ladder | None:
    """The legs the stack's capture holds for the call (carrier to SBC, SBC to media and back), as a
    ladder beside the carrier's: what the SBC received, what it relayed, what came back."""
    capture = record.get("capture") or {}
    ex = record.get("exchange") or {}
    legs = [leg for leg in capture.get("legs") or [] if leg.get("src") and leg.get("dst")]
    if not legs or not ex:
        return None
    legs.sort(key=lambda leg: float(leg["t_ms"]))
    carrier = str(ex["local"])
    arrows = tuple(
        LadderArrow(
            float(leg["t_ms"]),
            str(leg["src"]),
            str(leg["dst"]),
            f"{leg['first_line']} [{leg.get('node') or leg.get('source')}]",
            "sent" if leg["src"] == carrier else "received",
        )
        for leg in legs
    )
    return Ladder(
        title=f"the stack's view of {ex.get('call_id') or '-'} ({len(arrows)} captured legs)",
        local=carrier,
        remote=str(ex["remote"]),
        transport=str(ex.get("transport", "udp")),
        method=str(ex.get("method", "INVITE")),
        arrows=arrows,
        outcome=str((capture.get("parity") or {}).get("summary") or ""),
    )


# -- log lines with the matched patterns highlighted ----------------------------------------------


def highlight(line: str, regexes: Sequence[str]) -> tuple[Segment, ...]:
    """``line`` cut into segments, the spans any of ``regexes`` match marked as hits."""
    spans: list[tuple[int, int]] = []
    for pattern in regexes:
        try:
            spans += [m.span() for m in re.finditer(pattern, line) if m.end() > m.start()]
        except re.error:
            continue
    spans.sort()
    merged: list[list[int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out: list[Segment] = []
    pos = 0
    for start, end in merged:
        if start > pos:
            out.append(Segment(line[pos:start], False))
        out.append(Segment(line[start:end], True))
        pos = end
    if pos < len(line):
        out.append(Segment(line[pos:], False))
    return tuple(out)


def log_rows(logs: Record) -> tuple[LogRow, ...]:
    """The lines tied to the call (and every matched line), each matched pattern's spans highlighted."""
    matched = logs.get("matched") or []
    rows: list[tuple[str, str, str | None]] = []
    for entry in logs.get("related") or []:
        if isinstance(entry, str):  # records written before lines carried their source
            rows.append(("", entry, None))
        else:
            rows.append((str(entry["source"]), str(entry["line"]), entry.get("reason")))
    known = {(s, line) for s, line, _ in rows}
    for m in matched:
        key = (str(m.get("source", "")), str(m["line"]))
        if key not in known:
            rows.append((key[0], key[1], "matched"))
            known.add(key)
    hit_lines = {(str(m.get("source", "")), str(m["line"])) for m in matched}
    out = []
    for source, line, reason in rows:
        regexes = [str(m["regex"]) for m in matched if m.get("regex") and m.get("source", "") == source]
        out.append(LogRow(source, highlight(line, regexes), reason, (source, line) in hit_lines))
    return tuple(out)


def pattern_rows(logs: Record) -> tuple[PatternRow, ...]:
    rows = [PatternRow("ok", str(m["pattern"]), str(m["line"])) for m in logs.get("matched") or []]
    rows += [PatternRow("missing", str(p)) for p in logs.get("missing") or []]
    rows += [PatternRow("forbidden", str(u["pattern"]), str(u["line"])) for u in logs.get("unexpected") or []]
    rows += [
        PatternRow("count", str(w["pattern"]), f"seen {w['seen']}x") for w in logs.get("wrong_count") or []
    ]
    return tuple(rows)


# -- runs and scenarios ---------------------------------------------------------------------------


def _pcap_href(record: Record, html_dir: Path | None) -> str | None:
    pcap = record.get("pcap")
    if not pcap:
        return None
    if html_dir is None:
        return Path(pcap).as_uri() if Path(pcap).is_absolute() else str(pcap)
    return Path(os.path.relpath(Path(pcap).resolve(), html_dir.resolve())).as_posix()


def run_view(record: Record, html_dir: Path | None, ident: str = "arrow") -> RunView:
    ladder = ladder_of_record(record)
    stack = stack_ladder_of_record(record)
    logs = record.get("logs") or {}
    placeholders = record.get("placeholders") or {}
    return RunView(
        node=record.get("sbc"),
        verdict=_verdict(record),
        expected=str(record.get("expected", ""))
        + (f" (outcome {record['outcome_name']})" if record.get("outcome_name") else ""),
        got=str(record.get("got", "")),
        # a failure's first line says it; the log detail below it is the log section's own
        failures=tuple(str(f).split("\n", 1)[0].rstrip(":") for f in record.get("failures") or []),
        ladder_svg=svg_of(ladder, ident=ident) if ladder is not None else None,
        arrows=len(ladder.arrows) if ladder is not None else 0,
        stack_svg=svg_of(stack, ident=f"{ident}-stack") if stack is not None else None,
        stack_legs=len(stack.arrows) if stack is not None else 0,
        capture_summary=((record.get("capture") or {}).get("parity") or {}).get("summary"),
        log_rows=log_rows(logs),
        patterns=pattern_rows(logs),
        silent_sources=tuple(logs.get("silent_sources") or []),
        reproduce=str(record.get("reproduce", "")),
        pcap_href=_pcap_href(record, html_dir),
        call_id=record.get("call_id"),
        number=placeholders.get("number") or placeholders.get("dialed"),
        duration_ms=(record.get("timings") or {}).get("duration_ms"),
        skip_reason=record.get("skip_reason"),
        failure_text=record.get("failure_text") if not record.get("failures") else None,
    )


def _shown_path(record: Record) -> str:
    """The scenario file as the reproduce command names it (relative to where the run was started),
    else the record's absolute path."""
    words = shlex.split(str(record.get("reproduce") or ""))
    if len(words) > 1 and words[0] == "pytest" and "::" in words[1]:
        return words[1].split("::", 1)[0]
    return str(record["file"])


def _scenario_key(record: Record) -> str:
    """Records of one scenario on several SBC nodes share the key (the node is not part of it)."""
    return f"{record.get('file', '')}::{record.get('id', record.get('name', ''))}"


def _search_text(records: Sequence[Record]) -> str:
    words: list[str] = []
    for r in records:
        placeholders = r.get("placeholders") or {}
        words += [str(r.get(k) or "") for k in ("name", "id", "param", "call_id", "file", "sbc")]
        words += [str(placeholders.get(k) or "") for k in ("number", "dialed", "to_user", "from_user")]
    return " ".join(w for w in words if w).lower()


def _display_name(record: Record) -> str:
    name = str(record.get("name") or record.get("id", ""))
    param = record.get("param")
    if param and record.get("sbc"):  # `run --each-sbc` appends "@node" to the param: the columns say it
        param = " ".join(p for p in str(param).split() if p != f"@{record['sbc']}")
    return f"{name} [{param}]" if param else name


def scenario_views(records: Sequence[Record], html_dir: Path | None) -> tuple[ScenarioView, ...]:
    groups: dict[str, list[Record]] = {}
    for r in records:
        groups.setdefault(_scenario_key(r), []).append(r)
    views = []
    for n, (key, group) in enumerate(groups.items()):
        first = group[0]
        verdict = min((_verdict(r) for r in group), key=lambda v: VERDICT_ORDER.get(v, 0))
        location = f"{_shown_path(first)}:{first.get('line', 1)}" if first.get("file") else ""
        views.append(
            ScenarioView(
                key=key,
                name=_display_name(first),
                cause=str(first.get("cause", "other")),
                location=location,
                verdict=verdict,
                runs=tuple(run_view(r, html_dir, f"arrow-{n}-{i}") for i, r in enumerate(group)),
                search=_search_text(group),
            )
        )
    cause_rank = {c: i for i, c in enumerate(CATEGORIES)}
    views.sort(key=lambda v: (VERDICT_ORDER.get(v.verdict, 0), cause_rank.get(v.cause, 99), v.name))
    return tuple(views)


def _counts(records: Sequence[Record]) -> tuple[int, int, int]:
    verdicts = [_verdict(r) for r in records]
    failed = sum(v in ("failed", "error") for v in verdicts)
    return verdicts.count("passed"), failed, verdicts.count("skipped")


def build_view(records: Sequence[Record], *, html_dir: Path | None = None) -> ReportView:
    """The whole report's view. ``html_dir`` is where the page will be written (pcap links are relative)."""
    causes = [*CATEGORIES, *sorted({str(r.get("cause", "other")) for r in records} - set(CATEGORIES))]
    counts = []
    for cause in causes:
        passed, failed, skipped = _counts([r for r in records if r.get("cause", "other") == cause])
        counts.append(CauseCount(cause, CAUSE_LABELS.get(cause, cause), passed, failed, skipped))
    runs = [r.get("run") or {} for r in records]
    nodes = _distinct(r.get("sbc") for r in records)
    node_counts = tuple((n, *_counts([r for r in records if r.get("sbc") == n])) for n in nodes)
    starts = [t for r in records if (t := (r.get("timings") or {}).get("started")) is not None]
    ends = [
        t + (r.get("timings") or {}).get("exchange_ms", 0.0) / 1000
        for r in records
        if (t := (r.get("timings") or {}).get("started")) is not None
    ]
    passed, failed, skipped = _counts(records)
    return ReportView(
        targets=_distinct(run.get("target") for run in runs),
        profiles=_distinct(
            f"{run['profile']} ({run['release']})"
            if run.get("release") and run.get("release") != run.get("profile")
            else run.get("profile")
            for run in runs
        ),
        seeds=_distinct(run.get("seed") for run in runs),
        started=_time(min(starts) if starts else None),
        finished=_time(max(ends) if ends else None),
        nodes=nodes,
        counts=tuple(counts),
        node_counts=node_counts,
        scenarios=scenario_views(records, html_dir),
        totals={"passed": passed, "failed": failed, "skipped": skipped, "all": len(records)},
    )


__all__ = [
    "CAUSE_LABELS",
    "CauseCount",
    "LogRow",
    "PatternRow",
    "ReportView",
    "RunView",
    "ScenarioView",
    "Segment",
    "build_view",
    "highlight",
    "ladder_of_record",
    "log_rows",
    "run_view",
]
