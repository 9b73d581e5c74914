"""RFC 4475 / RFC 5118 conformance: every corpus message sent to the embedded model's SBC role, to the lab
Kamailio and to Kazoo's own Kamailio configuration (both in front of the same model's media role), over
UDP and TCP, from a loopback carrier, for each Kazoo release.

For each message and element: the final answer (or silence, or a closed connection), the log line
that explains it, and whether the element still answers an OPTIONS afterwards. A silence ends as soon
as a log line proves the drop, otherwise at a short deadline. The model must answer as the lab Kamailio
does (the lab parity, checked in CI from the recorded table); the kazoo-sbc column is Kazoo's own
configuration, and the table lists where the model and it differ.

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

from harness.interop.corpus import (
    CorpusMessage,
    leaves_loopback,
    leaves_loopback_through_kazoo,
    load_corpus,
    via_port,
)
from harness.kazoo.logformat import parse_line
from harness.kazoo.profile import load_profile
from harness.kazoo.release import DEFAULT_RELEASE, KAZOO_4_3, KAZOO_5, RELEASE_NAMES, release
from harness.kazoo_sbc.launcher import KazooSbc, kazoo_sbc_available
from harness.kazoo_sbc.rabbit import RabbitBroker
from harness.kazoo_sbc.stackdata import dispatcher_rows, trusted_rows
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
from harness.targets.lab import lab_kamailio, lab_trusted
from harness.targets.target import LOG_POLL

COMMAND = "python -m harness.interop.conformance --write docs/conformance.md"
TRANSPORTS = ("udp", "tcp")
ELEMENTS = ("model", "kamailio", "kazoo-sbc")
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

    def agree(self, transport: str, other: str = "kamailio") -> bool | None:
        """True/False when the model and ``other`` were both tried over ``transport``, None when one was
        not (or ``other`` did not run)."""
        model = self.answers.get(("model", transport))
        theirs = self.answers.get((other, transport))
        if model is None or theirs is None or "not sent" in (model.outcome, theirs.outcome):
            return None
        if model.summary == theirs.summary:
            return True
        race = RACES.get((self.message.name, transport))
        return race is not None and {model.summary, theirs.summary} <= race[0]


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
    release: str = DEFAULT_RELEASE.name, *, with_kamailio: bool = True, kazoo_sbc_broker: str | None = None
) -> Iterator[list[Element]]:
    """The model (its SBC role) and, when asked, a lab Kamailio in front of the same model's media role and
    Kazoo's own configuration (with the broker at ``kazoo_sbc_broker``) in front of a second model's, each
    with its model's trusted sources."""
    profile = load_profile(release)
    model = start_model_for(profile)
    try:
        elements = [Element("model", model.sbc, model.log_dir / "kamailio.log")]
        with contextlib.ExitStack() as stack:
            if with_kamailio:
                lab = stack.enter_context(lab_kamailio(profile, model.media, trusted=lab_trusted(model)))
                elements.append(Element("kamailio", lab.address, lab.log_path))
            if kazoo_sbc_broker is not None:
                # a model of its own: two Kamailios relaying the same corpus message give it the same Via
                # branch (the transaction's hash), and one media role would take the second for a
                # retransmission of the first
                own = start_model_for(profile)
                stack.callback(own.stop)
                sbc = KazooSbc(
                    profile.release.name,
                    media=dispatcher_rows([own.media], node=own.config.node),
                    trusted=trusted_rows(own.store, own.config.node),
                    broker_url=kazoo_sbc_broker,
                )
                stack.enter_context(sbc)
                elements.append(Element("kazoo-sbc", sbc.address, sbc.log_path))
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
    kazoo_sbc_broker: str | None = None,
    window: float = SILENCE_WINDOW,
) -> dict[str, Answer]:
    """``message`` over ``transport`` to a fresh model and (unless unsafe) a fresh lab Kamailio and, with a
    broker, a fresh Kazoo configuration.

    Fresh for every message: the corpus reuses Call-IDs, tags and Via branches across files (all of
    RFC 5118 shares one branch), so a long-lived element would take a later file for a retransmission
    of an earlier one; so would Kamailio for the TCP copy of a file already sent over UDP.
    """
    # what would follow the message's own addresses is sent to no real Kamailio (ours or Kazoo's)
    unsafe = {
        "kamailio": leaves_loopback(message) if with_kamailio else None,
        "kazoo-sbc": leaves_loopback_through_kazoo(message) if kazoo_sbc_broker else None,
    }
    with conformance_elements(
        profile,
        with_kamailio=with_kamailio and unsafe["kamailio"] is None,
        kazoo_sbc_broker=kazoo_sbc_broker if unsafe["kazoo-sbc"] is None else None,
    ) as elements:
        results = await asyncio.gather(*(probe(e, message, index, transport, window) for e in elements))
    answers = {element.name: answer for element, answer in zip(elements, results, strict=True)}
    for name, reason in unsafe.items():
        if reason is not None:
            answers[name] = Answer("not sent", note=f"not sent: would leave loopback: {reason}")
    return answers


async def run_corpus(
    messages: Sequence[CorpusMessage],
    transports: Sequence[str] = TRANSPORTS,
    *,
    profile: str = DEFAULT_RELEASE.name,
    with_kamailio: bool = True,
    kazoo_sbc_broker: str | None = None,
    window: float = SILENCE_WINDOW,
) -> list[Row]:
    """Every message over every transport, one after the other (the elements in parallel)."""
    rows: list[Row] = []
    for index, message in enumerate(messages):
        row = Row(message)
        for transport in transports:
            answers = await check_message(
                message, index, transport, profile=profile, with_kamailio=with_kamailio,
                kazoo_sbc_broker=kazoo_sbc_broker, window=window,
            )  # fmt: skip
            for element, answer in answers.items():
                row.answers[(element, transport)] = answer
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- the table
def _escape(text: str, limit: int = 90) -> str:
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _agree_cell(row: Row, transports: Sequence[str], other: str = "kamailio") -> str:
    marks = []
    for transport in transports:
        verdict = row.agree(transport, other)
        text = "—" if verdict is None else "yes" if verdict else "**no**"
        if verdict and (row.message.name, transport) in RACES:
            text += " (race, below)"
        marks.append(f"{transport}: {text}")
    return ", ".join(marks)


TITLES = {"model": "model", "kamailio": "Kamailio", "kazoo-sbc": "Kazoo cfg"}


def intro() -> list[str]:
    return [
        "# RFC 4475 / RFC 5118 conformance: embedded model vs lab Kamailio vs Kazoo's own configuration",
        "",
        f"Generated by `{COMMAND}`. Do not edit by hand.",
        "",
        "Each corpus file (../shared/corpus, bytes exact) is sent once from its own loopback carrier",
        "address, bound to the port of the message's first Via (Kamailio answers there when `rport` is",
        "absent), to the embedded model's SBC role, to the lab Kamailio (our configuration, docs/lab.md)",
        "and to Kazoo's own Kamailio configuration of the release (the kazoo-sbc target, docs/kazoo-sbc.md),",
        "each Kamailio in front of a model's media role (Kazoo's in front of a model of its own: two",
        "Kamailios relay a message with the same branch), with the model's trusted sources. One table per",
        "release.",
        '"silence (log)": no answer, ended by the log line that proves the drop; "silence": no answer',
        f'within {SILENCE_WINDOW} s. "closed": the element closed the TCP connection. Every element answered',
        "an OPTIONS after every message unless a cell says **stopped serving**. Compared: the final code",
        "or the kind of non-answer. Over TCP the window is always waited out, since a drop line may",
        "precede the close of the connection. Each message meets a fresh model, a fresh lab Kamailio and",
        "a fresh Kazoo Kamailio (the corpus reuses Call-IDs and branches across files, which a long-lived",
        "element takes for retransmissions). The carriers are in no ACL: untrusted sources.",
        "",
        "No traffic leaves loopback: both Kamailios relay initial requests only to the dispatcher's loopback",
        "media role. Two paths follow a message's own addresses — an in-dialog request with a Route set",
        "(`loose_route()`), and a response matching no transaction (forwarded to its second Via) — so such",
        "files are sent to neither Kamailio (`harness/interop/corpus.py: leaves_loopback`). Kazoo 5.x also",
        "relays an in-dialog request it cannot loose-route to its Request-URI: a capture on every interface",
        "but loopback during a full run caught it looking up `host.example.net` in DNS (rfc5118/mult-ip-in-",
        "header: 478 Unresolvable destination), so in-dialog requests to a Request-URI off loopback are not",
        "sent to Kazoo's configuration either (`leaves_loopback_through_kazoo`); the capture of the next",
        "full run showed no SIP packet and no DNS query off loopback.",
        "",
        '"agree (lab)?" is the model against the lab Kamailio, which CI holds the model to. "as',
        "Kazoo's configuration?\" is the model against the running configuration; where they differ,",
        "the note under the table says why (most are Kazoo roles the model has no counterpart of).",
        "",
    ]


def render_table(
    rows: Sequence[Row],
    profile: str,
    transports: Sequence[str] = TRANSPORTS,
    notes_on_config: Sequence[str] = (),
) -> str:
    """One release's section: a row per corpus file."""
    elements = [e for e in ELEMENTS if any((e, t) in r.answers for r in rows for t in transports)]
    header = ["file", "RFC verdict (corpus README)"]
    for transport in transports:
        header += [f"{TITLES[e]} {transport.upper()}" for e in elements]
    header += ["agree (lab)?"]
    if "kazoo-sbc" in elements:
        header += ["as Kazoo's configuration?"]
    header += ["log evidence (" + " / ".join(TITLES[e] for e in elements) + ", UDP)"]
    lines = [
        f"## {release(profile).title} (profile `{profile}`)",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for row in rows:
        cells = [f"`{row.message.label}`", _escape(row.message.verdict, 70)]
        for transport in transports:
            for element in elements:
                answer = row.answers.get((element, transport))
                cells.append(_escape(answer.cell() if answer else "—", 40))
        cells.append(_agree_cell(row, transports))
        if "kazoo-sbc" in elements:
            cells.append(_agree_cell(row, transports, "kazoo-sbc"))
        evidence = []
        for element in elements:
            answer = row.answers.get((element, transports[0]))
            evidence.append((answer.note or answer.evidence) if answer else "")
        cells.append(_escape(" / ".join(evidence), 200))
        lines.append("| " + " | ".join(cells) + " |")
    disagreements = [r.message.label for r in rows if any(r.agree(t) is False for t in transports)]
    config = [r.message.label for r in rows if any(r.agree(t, "kazoo-sbc") is False for t in transports)]
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
    if notes_on_config:
        lines += ["", "Where the model and Kazoo's configuration differ:", "", *notes_on_config]
    lines += [
        "",
        f"{len(rows)} messages; disagreements with the lab: {', '.join(disagreements) or 'none'}; "
        + (f"with Kazoo's configuration: {', '.join(config) or 'none'}; " if "kazoo-sbc" in elements else "")
        + f"stopped serving: {', '.join(stopped) or 'none'}.",
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


def recorded_answers(
    table: str, element: str = "kamailio", profile: str = DEFAULT_RELEASE.name
) -> dict[tuple[str, str], str]:
    """From a document this module wrote: (file name, transport) -> the summary of ``element``'s answer in
    ``profile``'s section (a lone table without sections is read whole).

    Lets the model be held to Kamailio's recorded answers on a machine without Kamailio."""
    header: list[str] | None = None
    answers: dict[tuple[str, str], str] = {}
    sections = "\n## " in f"\n{table}"
    inside = not sections
    for line in table.splitlines():
        if line.startswith("## "):
            inside, header = f"(profile `{profile}`)" in line, None
            continue
        if not inside or not line.startswith("| "):
            continue
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if header is None:
            header = cells
            continue
        if not cells[0].startswith("`"):
            continue
        name = cells[0].strip("`").rsplit("/", 1)[-1]
        for transport in TRANSPORTS:
            title = f"{TITLES[element]} {transport.upper()}"
            if title in header:
                answers[(name, transport)] = cell_summary(cells[header.index(title)])
    return answers


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.interop.conformance", description=__doc__)
    parser.add_argument("--write", type=Path, help="write the Markdown document to this file")
    parser.add_argument("--profile", choices=RELEASE_NAMES, action="append", help="default: every release")
    parser.add_argument("--only", nargs="*", default=None, help="corpus file names (without .dat)")
    parser.add_argument("--transport", choices=TRANSPORTS, action="append", help="default: both")
    parser.add_argument("--window", type=float, default=SILENCE_WINDOW, help="silence deadline, seconds")
    parser.add_argument("--no-kazoo-sbc", action="store_true", help="leave out Kazoo's own configuration")
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
    kazoo_missing = None if args.no_kazoo_sbc else kazoo_sbc_available()
    if kazoo_missing is not None:
        print(f"Kazoo's configuration cannot run here ({kazoo_missing}): use --no-kazoo-sbc", file=sys.stderr)
        return 2
    transports = tuple(args.transport or TRANSPORTS)
    profiles = args.profile or list(RELEASE_NAMES)
    sections: list[str] = []
    failures = stopped = 0
    with contextlib.ExitStack() as stack:
        broker = None if args.no_kazoo_sbc else stack.enter_context(RabbitBroker()).url
        for profile in profiles:
            rows = asyncio.run(
                run_corpus(messages, transports, profile=profile, kazoo_sbc_broker=broker, window=args.window)
            )
            sections.append(render_table(rows, profile, transports, CONFIG_NOTES.get(profile, ())))
            failures += sum(1 for r in rows if any(r.agree(t) is False for t in transports))
            stopped += sum(1 for r in rows if any(not a.serving for a in r.answers.values()))
    document = "\n".join([*intro(), *sections])
    if args.write:
        args.write.write_text(document, encoding="utf-8")
        print(f"wrote {args.write}")
    else:
        print(document)
    return 1 if failures or stopped else 0


REGISTER_NOTE = (
    "- REGISTER (cparam01, cparam02, escnull, regaut01, regbadct, regescrt, ipv6-good, port-ambiguous, "
    "port-unambiguous, and dblreq's first request over TCP): Kazoo's REGISTRAR role, on by default, takes "
    "it; the model and the lab have no registrar (the media role answers 405). Not modelled: no scenario "
    "registers a device."
)
# Why the model and Kazoo's configuration differ on a corpus file, by release (filled from a run: the
# table marks each such file **no** in "as Kazoo's configuration?").
CONFIG_NOTES: dict[str, tuple[str, ...]] = {
    KAZOO_4_3.name: (
        REGISTER_NOTE + " On 4.3 it is never answered: `register|no amqp connection available for "
        "default worker in zone local` (the registrar's query to Kazoo finds no AMQP worker for its zone).",
    ),
    KAZOO_5.name: (
        REGISTER_NOTE + " On 5.x these REGISTERs without Expires get `400 Missing Expires` "
        "(registrar-role.cfg: `end - missing expires registering <aor> from IP <ip>:<port>`).",
    ),
}


if __name__ == "__main__":
    raise SystemExit(main())
