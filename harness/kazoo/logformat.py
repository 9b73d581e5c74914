"""Line formats of the logs a Kazoo stack writes: writers (for the embedded model) and one parser.

Formats (see docs/logs.md and kazoo-behaviour.md):

- FreeSWITCH (switch_log.c): ``[<uuid> ]YYYY-MM-DD HH:MM:SS.uuuuuu[ <idle>%] [LEVEL] file.c:NNN message``.
  The call UUID prefix appears on session lines; the CPU idle figure appears in fs_cli / event-socket
  bodies of FreeSWITCH 1.10.
- Kamailio, as Kazoo's configs log from the routing script: 4.3 ``<callid>|<area>|message`` (``end`` is
  the usual area) after `` 0(1234) WARNING: <script>: ``; 5.x xlog's prefix (defs.cfg
  KZ_LOG_SCRIPT_PREFIX) ``|<callid>|<file>:<line> (<route>) message`` after `` 0(1234) WARNING: `` (the
  message itself often starts ``end - ``). The stderr form is what ``-E`` writes; syslog puts
  ``Nov 26 04:00:00 host kamailio[1234]:`` in front instead. Kamailio's core and modules write
  `` 0(1234) ERROR: <core> [core/receive.c:447]: receive_msg(): message`` in both.
- Kazoo Erlang apps (lager formatter in kazoo's sys.config):
  ``YYYY-MM-DD HH:MM:SS.mmm [level] |<call-id>|module:line (<pid>) message``.

Levels are normalized to syslog names (``DEBUG INFO NOTICE WARNING ERROR CRIT ALERT EMERG``); the numeric
form (syslog = FreeSWITCH numbering, 7 = DEBUG) comes from :func:`level_number`.
"""

from __future__ import annotations

import functools
import math
import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from harness.kazoo.release import KamailioLogStyle

LineFormat = Literal["freeswitch", "kamailio", "kazoo", "raw"]
Level = str | int

# Syslog numbering; FreeSWITCH uses the same numbers (switch_log_level_t), 0 there being CONSOLE.
_LEVEL_NUMBERS: dict[str, int] = {
    "EMERG": 0,
    "ALERT": 1,
    "CRIT": 2,
    "ERROR": 3,
    "WARNING": 4,
    "NOTICE": 5,
    "INFO": 6,
    "DEBUG": 7,
}
_ALIASES: dict[str, str] = {
    "CONSOLE": "EMERG",
    "EMERGENCY": "EMERG",
    "CRITICAL": "CRIT",
    "BUG": "CRIT",
    "ERR": "ERROR",
    "WARN": "WARNING",
    "DBG": "DEBUG",
}
_FS_NAMES: dict[int, str] = {
    0: "CONSOLE",
    1: "ALERT",
    2: "CRIT",
    3: "ERR",
    4: "WARNING",
    5: "NOTICE",
    6: "INFO",
    7: "DEBUG",
}
_LAGER_NAMES: dict[str, str] = {"CRIT": "critical", "EMERG": "emergency"}
KAMAILIO_NULL = "<null>"  # what Kamailio's $ci prints for a message without a Call-ID
NO_CALL_ID = "0000000000"  # lager's placeholder when a process has no call-id in its metadata


@functools.lru_cache(maxsize=64)  # every line written asks, with a handful of distinct values
def normalize_level(level: Level) -> str:
    """A level name or number in any of the three formats → its syslog name (``ERR`` → ``ERROR``)."""
    if isinstance(level, int):
        if not 0 <= level <= 7:
            raise ValueError(f"log level {level} out of range 0..7")
        return next(name for name, number in _LEVEL_NUMBERS.items() if number == level)
    text = level.strip().upper()
    if text.isdigit():
        return normalize_level(int(text))
    text = _ALIASES.get(text, text)
    if text not in _LEVEL_NUMBERS:
        raise ValueError(f"unknown log level {level!r}")
    return text


def level_number(level: Level) -> int:
    """Syslog / FreeSWITCH number of a level (DEBUG 7 ... EMERG 0); higher is more verbose."""
    return _LEVEL_NUMBERS[normalize_level(level)]


@dataclass(frozen=True)
class ParsedLine:
    format: LineFormat
    level: str | None  # normalized name, None when the line does not say
    file: str | None  # FreeSWITCH source file, Kamailio module/script, Kazoo module
    line: int | None
    call_id: str | None
    message: str
    timestamp: float | None  # epoch seconds (local time in the line), None when absent


# ---------------------------------------------------------------- writers


@functools.lru_cache(maxsize=4)  # lines come in the same few seconds
def _second_stamp(second: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))


def _stamp(when: float | None) -> tuple[str, int]:
    """``YYYY-MM-DD HH:MM:SS`` of ``when`` (local time) and its microseconds, rounded as
    ``datetime.fromtimestamp`` rounds them; the seconds' text is formatted once per second."""
    t = time.time() if when is None else when
    second = math.floor(t)
    micro = round((t - second) * 1e6)
    if micro >= 1_000_000:
        second, micro = second + 1, micro - 1_000_000
    return _second_stamp(second), micro


def fs_line(
    level: Level,
    file: str,
    line: int,
    message: str,
    *,
    call_id: str | None = None,
    when: float | None = None,
    idle: float | None = None,
    uuid_prefix: bool = False,
) -> str:
    """A FreeSWITCH log line. ``idle`` adds the CPU idle percentage (event-socket body form);
    ``uuid_prefix`` writes ``call_id`` in front (FreeSWITCH's per-session log form)."""
    second, micro = _stamp(when)
    stamp = f"{second}.{micro:06d}"
    idle_part = f" {idle:.2f}%" if idle is not None else ""
    prefix = f"{call_id} " if uuid_prefix and call_id else ""
    name = _FS_NAMES[level_number(level)]
    return f"{prefix}{stamp}{idle_part} [{name}] {file}:{line} {message}"


def kamailio_line(
    style: KamailioLogStyle,
    level: Level,
    message: str,
    call_id: str | None = None,
    area: str = "end",
    *,
    pid: int | None = None,
    script: str = "script",
    where: tuple[str, int, str] | None = None,
) -> str:
    """The text Kazoo's Kamailio script logs. Style "pipe" (4.3, harness.kazoo.release):
    ``<callid>|<area>|msg`` (without a Call-ID no prefix, as ``second To header not null``; pass
    ``call_id=KAMAILIO_NULL`` for the ``<null>|end|...`` of a message that has none). Style "prefixed"
    (5.x): ``|<callid>|<file>:<line> (<route>) msg`` with ``where`` = (file, line, route) of the xlog
    call; ``area`` is not used (a 5.x message carries its own ``end - ``). With ``pid`` the stderr head
    `` 0(<pid>) LEVEL: `` is added (and 4.3's ``<script>: ``), what ``-E`` writes."""
    if style == "pipe":
        text = f"{call_id}|{area}|{message}" if call_id and area else message
        head = f"{normalize_level(level)}: <{script}>: "
    elif style == "prefixed":
        if where is None:
            raise ValueError("a 5.x script line needs where=(file, line, route) for its xlog prefix")
        file, line, route = where
        text = f"|{call_id or KAMAILIO_NULL}|{file}:{line} ({route}) {message}"
        head = f"{normalize_level(level)}: "
    else:
        raise ValueError(f"unknown Kamailio log style {style!r} (pipe or prefixed)")
    return text if pid is None else f" 0({pid}) {head}{text}"


def kamailio_core_line(
    level: Level, origin: str, function: str, message: str, *, module: str = "core", pid: int | None = None
) -> str:
    """A line of Kamailio's core (or of a module: ``module="sanity"``), the same in every release:
    `` 0(<pid>) ERROR: <core> [core/receive.c:447]: receive_msg(): msg`` (``origin`` = file:line)."""
    name = "<core>" if module == "core" else module
    text = f"{normalize_level(level)}: {name} [{origin}]: {function}(): {message}"
    return text if pid is None else f" 0({pid}) {text}"


def kazoo_line(
    level: Level,
    module: str,
    line: int,
    message: str,
    *,
    call_id: str | None = None,
    pid: str = "<0.1000.0>",
    when: float | None = None,
) -> str:
    """A Kazoo (lager) line: ``YYYY-MM-DD HH:MM:SS.mmm [level] |<call-id>|module:line (<pid>) msg``."""
    second, micro = _stamp(when)
    stamp = f"{second}.{micro // 1000:03d}"
    severity = _LAGER_NAMES.get(normalize_level(level), normalize_level(level).lower())
    return f"{stamp} [{severity}] |{call_id or NO_CALL_ID}|{module}:{line} ({pid}) {message}"


# ---------------------------------------------------------------- parser

_STAMP = r"(?P<stamp>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)"
_FS_RE = re.compile(
    r"^(?:(?P<uuid>\S+) )?"
    + _STAMP
    + r"(?: (?P<idle>\d+(?:\.\d+)?)%)? \[(?P<level>[A-Z]+)\] (?P<file>[^\s:]+):(?P<line>\d+) ?(?P<msg>.*)$",
    re.DOTALL,
)
_KAZOO_TAIL = r"\|(?P<cid>[^|]*)\|(?P<module>[A-Za-z0-9_]+):(?P<line>\d+) \((?P<pid>[^)]*)\) ?(?P<msg>.*)$"
_KAZOO_RE = re.compile(r"^(?:" + _STAMP + r" )?\[(?P<level>[a-z]+)\] " + _KAZOO_TAIL, re.DOTALL)
# the syslog form (`Nov 26 ... host 2600hz[123]: |cid|module:line (<pid>) msg`) carries no level
_KAZOO_SYSLOG_RE = re.compile(r"(?:^|\s)" + _KAZOO_TAIL, re.DOTALL)
# stderr ` 0(1234) WARNING: <script>: ` or syslog `... kamailio[1234]: WARNING: <script>: `
_KAM_PREFIX_RE = re.compile(
    r"^(?P<head>.*?(?:\d+\(\d+\)|\[\d+\]:))\s+(?P<level>[A-Z]+):\s+(?:<(?P<module>[^>]+)>|(?P<mod2>[\w.]+))"
    r"(?: \[[^\]]*\]:\d+| \[[^\]]*\])?(?:: | )(?P<rest>.*)$",
    re.DOTALL,
)
# areas are words, or a few words (the rate limiter's `RL-realm log`)
_KAM43_RE = re.compile(
    r"^(?P<cid>[^|\s]+)\|(?P<area>[A-Za-z0-9_-]+(?: [A-Za-z0-9_-]+)*)\|(?P<msg>.*)$", re.DOTALL
)
# 5.x: `<head> LEVEL: |<callid>|<file>:<line> (<route>) msg` (xlog's prefix, no module name)
_KAM5_RE = re.compile(
    r"^(?:(?P<head>.*?(?:\d+\(\d+\)|\[\d+\]:))\s+(?P<level>[A-Z]+):\s+)?"
    r"\|(?P<cid>[^|]*)\|(?P<file>[^\s|]+?):(?P<line>\d+) \((?P<route>[^)]*)\) (?P<msg>.*)$",
    re.DOTALL,
)
# an older 5.x form without the prefix: `end - msg`
_KAM5_BARE_RE = re.compile(r"^(?P<area>[a-z0-9_]+) - (?P<msg>.*)$", re.DOTALL)


def _epoch(stamp: str | None) -> float | None:
    if stamp is None:
        return None
    # Sliced by hand: strptime costs more than the rest of the parse. The regex fixed the layout.
    fraction = stamp[20:26].ljust(6, "0")
    try:
        return datetime(
            int(stamp[0:4]),
            int(stamp[5:7]),
            int(stamp[8:10]),
            int(stamp[11:13]),
            int(stamp[14:16]),
            int(stamp[17:19]),
            int(fraction),
        ).timestamp()
    except ValueError:  # e.g. month 13
        return None


def _level_or_none(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        return normalize_level(text)
    except ValueError:
        return None


def _parse_freeswitch(text: str) -> ParsedLine | None:
    m = _FS_RE.match(text)
    if m is None:
        return None
    return ParsedLine(
        "freeswitch",
        _level_or_none(m["level"]),
        m["file"],
        int(m["line"]),
        m["uuid"],
        m["msg"],
        _epoch(m["stamp"]),
    )


def _parse_kazoo(text: str) -> ParsedLine | None:
    if "|" not in text:
        return None
    m = _KAZOO_RE.match(text) or _KAZOO_SYSLOG_RE.search(text)
    if m is None:
        return None
    cid = m["cid"] or None
    groups = m.groupdict()
    return ParsedLine(
        "kazoo",
        _level_or_none(groups.get("level")),
        m["module"],
        int(m["line"]),
        None if cid in (None, NO_CALL_ID, "undefined") else cid,
        m["msg"],
        _epoch(groups.get("stamp")),
    )


def _parse_kamailio_text(text: str, level: str | None, module: str | None) -> ParsedLine | None:
    """The script part: ``<callid>|area|msg`` or ``area - msg``; with a known prefix any text is fine."""
    m43 = _KAM43_RE.match(text)
    if m43 is not None:
        cid = None if m43["cid"] == KAMAILIO_NULL else m43["cid"]
        return ParsedLine("kamailio", level, module, None, cid, m43["msg"], None)
    m5 = _KAM5_BARE_RE.match(text)
    if m5 is not None:
        return ParsedLine("kamailio", level, module, None, None, m5["msg"], None)
    if module is not None:  # a prefixed line from a module (core, sanity, tm, ...) without script format
        return ParsedLine("kamailio", level, module, None, None, text, None)
    return None


def _parse_kamailio(text: str) -> ParsedLine | None:
    prefixed = _KAM5_RE.match(text)
    if prefixed is not None:
        cid = prefixed["cid"]
        return ParsedLine(
            "kamailio",
            _level_or_none(prefixed["level"]),
            prefixed["file"].rsplit("/", 1)[-1],
            int(prefixed["line"]),
            None if cid in ("", KAMAILIO_NULL) else cid,
            prefixed["msg"],
            None,
        )
    m = _KAM_PREFIX_RE.match(text)
    if m is not None and _level_or_none(m["level"]) is not None:
        return _parse_kamailio_text(m["rest"], _level_or_none(m["level"]), m["module"] or m["mod2"])
    return _parse_kamailio_text(text.lstrip(), None, None)


def parse_line(text: str) -> ParsedLine:
    """Parse one log line of any known format; unknown text gives format ``raw`` with the text as message."""
    text = text.rstrip("\r\n")
    for parser in (_parse_freeswitch, _parse_kazoo, _parse_kamailio):
        parsed = parser(text)
        if parsed is not None:
            return parsed
    return ParsedLine("raw", None, None, None, None, text, None)
