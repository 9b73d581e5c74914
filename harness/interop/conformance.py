"""RFC 4475 / RFC 5118 conformance: every corpus message sent to the embedded model's SBC role and to
the lab Kamailio (in front of the same model's media role), over UDP and TCP, from a loopback carrier.

For each message and element: the final answer (or silence, or a closed connection), the log line
that explains it, and whether the element still answers an OPTIONS afterwards. A silence ends as soon
as a log line proves the drop, otherwise at a short deadline. The model must answer as Kamailio does.

    python -m harness.interop.conformance --write docs/conformance.md
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.interop.corpus import CorpusMessage, leaves_loopback, load_corpus, via_port
from harness.kazoo.logformat import parse_line
from harness.kazoo.profile import load_profile
from harness.kazoo.release import DEFAULT_RELEASE, RELEASE_NAMES
from harness.lab.kamailio import kamailio_available
from harness.logs.file_source import FileSource
from harness.logs.hub import LogHub
from harness.logs.line import LogLine
from harness.logs.watch import send_watching
from harness.net.carrier import CarrierUA
from harness.net.exchange import Address, Exchange
from harness.net.gate import Gate
from harness.targets.embedded import start_model_for
from harness.targets.gate import own_stack_gate
from harness.targets.lab import lab_kamailio
from harness.targets.target import LOG_POLL

COMMAND = "python -m harness.interop.conformance --write docs/conformance.md"
TRANSPORTS = ("udp", "tcp")
ELEMENTS = ("model", "kamailio")
SILENCE_WINDOW = 1.5  # seconds of silence that count as "no answer" when no log line proves a drop
OPTIONS_TIMEOUT = 2.0
SERVING_PROBE_IP = "127.44.9.1"  # source of the OPTIONS that checks an element still serves
# Lines that prove a message was dropped without an answer (Kazoo's script lines and Kamailio's core
# refusing to parse); a line that precedes an answer (e.g. "too much hops") must not be here.
DROP_LINE = re.compile(
    r"dropping insane message|insane message from|core parsing of SIP message failed|no via found"
    r"|second To header not null|dropping message with user-agent|required headers not found"
    r"|bad request, state=|buffer overrun|content length not present"
)
# Outcomes that race inside Kamailio itself, with why; any of them counts as agreement.
RACES: dict[tuple[str, str], tuple[frozenset[str], str]] = {
    ("dblreq", "tcp"): (
        frozenset({"closed", "405"}),
        "two framed requests, then bytes with no Content-Length: the reader closes the connection "
        "while the media role's 405 to the REGISTER may or may not have been relayed first",
    ),
}
WARNING_LEVELS = {"warning", "warn", "error", "err", "crit", "critical", "alert"}


@dataclass(frozen=True)
class Answer:
    """What one element did with one message over one transport."""

    outcome: str  # "response" | "silence" | "closed" | "error" | "not sent"
    code: int | None = None
    reason: str = ""
    evidence: str = ""  # the log line that proves or explains the outcome
    serving: bool = True  # answered an OPTIONS afterwards
    ended_early: bool = False  # the silence was ended by a log line
    note: str = ""

    @property
    def summary(self) -> str:
        """The part compared between elements: the code, or the kind of non-answer."""
        return str(self.code) if self.outcome == "response" and self.code is not None else self.outcome

    def cell(self) -> str:
        text = f"{self.code} {self.reason}".strip() if self.summary.isdigit() else self.outcome
        if self.outcome == "silence" and self.ended_early:
            text += " (log)"
        if not self.serving:
            text += " **stopped serving**"
        return text


@dataclass
class Row:
    message: CorpusMessage
    answers: dict[tuple[str, str], Answer] = field(default_factory=dict)  # (element, transport)

    def agree(self, transport: str) -> bool | None:
        """True/False when both elements were tried over ``transport``, None when one was not."""
        model = self.answers.get(("model", transport))
        kamailio = self.answers.get(("kamailio", transport))
        if model is None or kamailio is None or "not sent" in (model.outcome, kamailio.outcome):
            return None
        race = RACES.get((self.message.name, transport))
        if race is not None:
            return {model.summary, kamailio.summary} <= race[0]
        return model.summary == kamailio.summary


# --------------------------------------------------------------------------- elements
# The elements are our own model and lab on loopback: their gate lets malformed bytes through.
GATE = own_stack_gate("the conformance run")


@dataclass(frozen=True)
class Element:
    """An SBC under test and the file of its log (Kamailio's format either way)."""

    name: str
    address: Address
    log_path: Path
    gate: Gate = GATE

    def log_mark(self) -> int:
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_lines(self, since: int) -> list[str]:
        try:
            with self.log_path.open("rb") as log:
                log.seek(since)
                data = log.read()
        except FileNotFoundError:
            return []
        return [line.decode("utf-8", "replace").rstrip("\r") for line in data.splitlines()]


# --------------------------------------------------------------------------- probing
def carrier_ip(index: int, element: str, transport: str) -> str:
    """A source address of its own per message, element and transport: a late retransmission or a
    TCP TIME_WAIT of one probe never meets the next."""
    lane = ELEMENTS.index(element) * len(TRANSPORTS) + TRANSPORTS.index(transport)
    return f"127.44.{lane}.{index % 250 + 1}"


def log_message(line: str) -> str:
    """A log line without its prefix (time, pid, level, Call-ID), for the table."""
    message = parse_line(line).message
    if message == line and "]: " in line:  # Kamailio's core: " 0(12) ERROR: <core> [file:line]: fn(): text"
        message = line.rsplit("]: ", 1)[1]
    return message.strip()


def pick_evidence(lines: Sequence[str]) -> str:
    """The line that proves a drop, else the first warning or error, else the first line."""
    for line in lines:
        if DROP_LINE.search(line):
            return log_message(line)
    for line in lines:
        parsed = parse_line(line)
        if (parsed.level or "").lower() in WARNING_LEVELS or re.search(r"\b(ERROR|WARNING)\b", line):
            return log_message(line)
    return log_message(lines[0]) if lines else ""


async def still_serving(address: Address, transport: str, gate: Gate) -> bool:
    async with CarrierUA(SERVING_PROBE_IP, 0, transport, gate=gate) as ua:
        exchange = await ua.options(address, timeout=OPTIONS_TIMEOUT)
    return exchange.final is not None and exchange.final.code == 200


def answer_of(exchange: Exchange) -> tuple[str, int | None, str]:
    if exchange.final is not None:
        return "response", exchange.final.code, exchange.final.reason
    if exchange.outcome in ("closed", "error", "unreachable"):
        return ("closed" if exchange.outcome == "closed" else "error"), None, exchange.error or ""
    return "silence", None, ""


async def probe(
    element: Element, message: CorpusMessage, index: int, transport: str, window: float = SILENCE_WINDOW
) -> Answer:
    """Send ``message`` once to ``element`` and record what came back."""
    since = element.log_mark()
    source = (carrier_ip(index, element.name, transport), via_port(message.data))
    async with CarrierUA(*source, transport, gate=element.gate) as carrier:
        exchange = await _send_probe(carrier, element, message, transport, window)
    outcome, code, reason = answer_of(exchange)
    serving = await still_serving(element.address, transport, element.gate)
    evidence = pick_evidence(element.log_lines(since))
    return Answer(
        outcome,
        code,
        reason,
        evidence=evidence,
        serving=serving,
        ended_early=exchange.ended_early,
        note=reason if outcome == "error" else "",
    )


async def _send_probe(
    carrier: CarrierUA, element: Element, message: CorpusMessage, transport: str, window: float
) -> Exchange:
    async def send(early_end: asyncio.Event | None) -> Exchange:
        return await carrier.send_raw(message.data, element.address, timeout=window, early_end=early_end)

    # over a stream a drop line may precede the close of the connection (Kamailio's reader fails on the
    # bytes after a dropped message): there the close or the deadline ends the wait
    proves_drop = _drop_line if transport == "udp" else None
    async with LogHub([FileSource(element.log_path, element.name, poll_interval=LOG_POLL)]) as hub:
        since = time.time()
        return await send_watching(send, hub, proves_drop, since=since, deadline=since + window)


def _drop_line(line: LogLine) -> bool:
    return DROP_LINE.search(line.raw) is not None


@contextlib.contextmanager
def conformance_elements(
    release: str = DEFAULT_RELEASE.name, *, with_kamailio: bool = True
) -> Iterator[list[Element]]:
    """The model (its SBC role) and, when asked, a lab Kamailio in front of the same model's media role."""
    profile = load_profile(release)
    model = start_model_for(profile)
    try:
        elements = [Element("model", model.sbc, model.log_dir / "kamailio.log")]
        with contextlib.ExitStack() as stack:
            if with_kamailio:
                lab = stack.enter_context(lab_kamailio(profile, model.media))
                elements.append(Element("kamailio", lab.address, lab.log_path))
            yield elements
    finally:
        model.stop()


async def check_message(
    message: CorpusMessage,
    index: int,
    transport: str,
    *,
    profile: str = DEFAULT_RELEASE.name,
    with_kamailio: bool = True,
    window: float = SILENCE_WINDOW,
) -> dict[str, Answer]:
    """``message`` over ``transport`` to a fresh model and (unless unsafe) a fresh lab Kamailio.

    Fresh for every message: the corpus reuses Call-IDs, tags and Via branches across files (all of
    RFC 5118 shares one branch), so a long-lived element would take a later file for a retransmission
    of an earlier one; so would Kamailio for the TCP copy of a file already sent over UDP.
    """
    unsafe = leaves_loopback(message) if with_kamailio else None
    with conformance_elements(profile, with_kamailio=with_kamailio and unsafe is None) as elements:
        results = await asyncio.gather(*(probe(e, message, index, transport, window) for e in elements))
    answers = {element.name: answer for element, answer in zip(elements, results, strict=True)}
    if unsafe is not None:
        answers["kamailio"] = Answer("not sent", note=f"not sent: would leave loopback: {unsafe}")
    return answers


async def run_corpus(
    messages: Sequence[CorpusMessage],
    transports: Sequence[str] = TRANSPORTS,
    *,
    profile: str = DEFAULT_RELEASE.name,
    with_kamailio: bool = True,
    window: float = SILENCE_WINDOW,
) -> list[Row]:
    """Every message over every transport, one after the other (the two elements in parallel)."""
    rows: list[Row] = []
    for index, message in enumerate(messages):
        row = Row(message)
        for transport in transports:
            answers = await check_message(
                message, index, transport, profile=profile, with_kamailio=with_kamailio, window=window
            )
            for element, answer in answers.items():
                row.answers[(element, transport)] = answer
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- the table
def _escape(text: str, limit: int = 90) -> str:
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _agree_cell(row: Row, transports: Sequence[str]) -> str:
    marks = []
    for transport in transports:
        verdict = row.agree(transport)
        text = "—" if verdict is None else "yes" if verdict else "**no**"
        if verdict and (row.message.name, transport) in RACES:
            text += " (race, below)"
        marks.append(f"{transport}: {text}")
    return ", ".join(marks)


def render_table(rows: Sequence[Row], profile: str, transports: Sequence[str] = TRANSPORTS) -> str:
    header = ["file", "RFC verdict (corpus README)"]
    for transport in transports:
        header += [f"model {transport.upper()}", f"Kamailio {transport.upper()}"]
    header += ["agree?", "log evidence (model / Kamailio, UDP)"]
    lines = [
        "# RFC 4475 / RFC 5118 conformance: embedded model vs lab Kamailio",
        "",
        f"Generated by `{COMMAND}` (profile {profile}). Do not edit by hand.",
        "",
        "Each corpus file (../shared/corpus, bytes exact) is sent once from its own loopback carrier",
        "address, bound to the port of the message's first Via (Kamailio answers there when `rport` is",
        "absent), to the embedded model's SBC role and to the lab Kamailio in front of the model's media",
        'role. "silence (log)": no answer, ended by the log line that proves the drop; "silence": no answer',
        f'within {SILENCE_WINDOW} s. "closed": the element closed the TCP connection. Every element answered',
        "an OPTIONS after every message unless a cell says **stopped serving**. Compared: the final code",
        "or the kind of non-answer. Over TCP the window is always waited out, since a drop line may",
        "precede the close of the connection. Each message meets a fresh model and a fresh Kamailio",
        "(the corpus reuses Call-IDs and branches across files, which a long-lived element takes for",
        "retransmissions).",
        "",
        "No traffic leaves loopback: the lab Kamailio runs with `dns=no`, answers the source address and",
        "relays initial requests only to the dispatcher's loopback media role. Two paths follow a",
        "message's own addresses — an in-dialog request with a Route set (`loose_route()`), and a",
        "response matching no transaction (forwarded to its second Via) — so such files are not sent to",
        "Kamailio (`harness/interop/corpus.py: leaves_loopback`). A packet capture on every interface",
        "during a full run showed no SIP packet and no DNS query off loopback.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for row in rows:
        cells = [f"`{row.message.label}`", _escape(row.message.verdict, 70)]
        for transport in transports:
            for element in ELEMENTS:
                answer = row.answers.get((element, transport))
                cells.append(_escape(answer.cell() if answer else "—", 40))
        cells.append(_agree_cell(row, transports))
        model = row.answers.get(("model", transports[0]))
        kamailio = row.answers.get(("kamailio", transports[0]))
        evidence = (
            f"{model.evidence if model else ''} / {(kamailio.note or kamailio.evidence) if kamailio else ''}"
        )
        cells.append(_escape(evidence, 160))
        lines.append("| " + " | ".join(cells) + " |")
    disagreements = [r.message.label for r in rows if any(r.agree(t) is False for t in transports)]
    stopped = [r.message.label for r in rows if any(not a.serving for a in r.answers.values())]
    notes = [
        f"- `{r.message.label}`: {r.answers[('kamailio', transports[0])].note}"
        for r in rows
        if ("kamailio", transports[0]) in r.answers and r.answers[("kamailio", transports[0])].note
    ]
    for row in rows:
        for transport in transports:
            race = RACES.get((row.message.name, transport))
            if race is not None:
                outcomes = " or ".join(sorted(race[0]))
                notes.append(f"- `{row.message.label}` over {transport.upper()}: {outcomes} — {race[1]}")
    if notes:
        lines += ["", "Notes:", "", *notes]
    lines += [
        "",
        f"{len(rows)} messages; disagreements: {', '.join(disagreements) or 'none'}; "
        f"stopped serving: {', '.join(stopped) or 'none'}.",
        "",
    ]
    return "\n".join(lines)


_CELL_CODE = re.compile(r"^([0-9]{3})\b")


def cell_summary(cell: str) -> str:
    """A table cell back to :attr:`Answer.summary`: "405 Method Not Allowed" -> "405",
    "silence (log)" -> "silence"."""
    cell = cell.replace("**stopped serving**", "").strip()
    code = _CELL_CODE.match(cell)
    if code:
        return code.group(1)
    return next((kind for kind in ("not sent", "silence", "closed", "error") if cell.startswith(kind)), cell)


def recorded_answers(table: str, element: str = "kamailio") -> dict[tuple[str, str], str]:
    """From a table this module wrote: (file name, transport) -> the summary of ``element``'s answer.

    Lets the model be held to Kamailio's recorded answers on a machine without Kamailio."""
    header: list[str] | None = None
    answers: dict[tuple[str, str], str] = {}
    for line in table.splitlines():
        if not line.startswith("| "):
            continue
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if header is None:
            header = cells
            continue
        if not cells[0].startswith("`"):
            continue
        name = cells[0].strip("`").rsplit("/", 1)[-1]
        for transport in TRANSPORTS:
            title = f"{'Kamailio' if element == 'kamailio' else 'model'} {transport.upper()}"
            if title in header:
                answers[(name, transport)] = cell_summary(cells[header.index(title)])
    return answers


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.interop.conformance", description=__doc__)
    parser.add_argument("--write", type=Path, help="write the Markdown table to this file")
    parser.add_argument("--profile", default=DEFAULT_RELEASE.name, choices=RELEASE_NAMES)
    parser.add_argument("--only", nargs="*", default=None, help="corpus file names (without .dat)")
    parser.add_argument("--transport", choices=TRANSPORTS, action="append", help="default: both")
    parser.add_argument("--window", type=float, default=SILENCE_WINDOW, help="silence deadline, seconds")
    args = parser.parse_args(argv)

    messages = load_corpus()
    if args.only:
        messages = [m for m in messages if m.name in set(args.only)]
    reason = kamailio_available()
    if reason is not None:
        print(
            f"Kamailio is not available ({reason}): the table would have no Kamailio column", file=sys.stderr
        )
        return 2
    transports = tuple(args.transport or TRANSPORTS)
    rows = asyncio.run(run_corpus(messages, transports, profile=args.profile, window=args.window))
    table = render_table(rows, args.profile, transports)
    if args.write:
        args.write.write_text(table, encoding="utf-8")
        print(f"wrote {args.write}")
    else:
        print(table)
    failures = [r for r in rows if any(r.agree(t) is False for t in transports)]
    stopped = [r for r in rows if any(not a.serving for a in r.answers.values())]
    return 1 if failures or stopped else 0


if __name__ == "__main__":
    raise SystemExit(main())
