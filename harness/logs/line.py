"""One log line as the harness received it."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from harness.kazoo.logformat import ParsedLine, parse_line


@dataclass(frozen=True)
class LogLine:
    source: str  # the source's name: "freeswitch", "kamailio", "kazoo", a container, ...
    received: float  # epoch seconds when the harness read it (comparable with Exchange wall times)
    raw: str  # the line without its line break
    parsed: ParsedLine

    @classmethod
    def make(
        cls, source: str, raw: str, *, received: float | None = None, call_id: str | None = None
    ) -> LogLine:
        """Parse ``raw``; ``call_id`` fills in a Call-ID known to the transport (ESL User-Data)."""
        text = raw.rstrip("\r\n")
        parsed = parse_line(text)
        if call_id and parsed.call_id is None:
            parsed = replace(parsed, call_id=call_id)
        return cls(source, time.time() if received is None else received, text, parsed)

    @property
    def level(self) -> str | None:
        return self.parsed.level

    @property
    def call_id(self) -> str | None:
        return self.parsed.call_id

    @property
    def message(self) -> str:
        return self.parsed.message

    def __str__(self) -> str:
        return f"[{self.source}] {self.raw}"
