"""Kazoo's ANTIFLOOD_ROLE (antiflood-role.cfg, route[ANTIFLOOD_RATE_LIMIT]) over the pike tree.

Where the route runs, and so which sources it can exempt, is release knowledge (docs/model.md has the
file:line evidence):

- Kazoo 4.3 (default.cfg ``route``): SANITY_CHECK, CHECK_RETRANS, then ANTIFLOOD_LIMIT, and only later
  CLASSIFY_SOURCE, which sets FLAG_TRUSTED_SOURCE and FLAG_INTERNALLY_SOURCED. The role's test of those
  flags reads them unset: only in-dialog requests (a To tag) are exempt; trusted carriers, media
  servers and OPTIONS are counted like anyone.
- Kazoo 5.x: CLASSIFY_SOURCE runs first, so trusted sources (the permissions address table) and
  internally sourced requests (a dispatcher media server) are exempt, and so is OPTIONS.

A retransmission of a transaction the SBC is already relaying never gets here (CHECK_RETRANS absorbs
it); a request the role drops created no transaction, so its retransmissions are counted again.
Over the limit the request is dropped without a reply (``kazoo.antiflood_rate_drop = 1``) with a WARN
line, or with ``rate_drop=False`` only logged and let through.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from harness.kazoo.release import KazooRelease
from harness.model.pike import PikeSettings, PikeTree, Verdict
from harness.model.sbc_lines import SCRIPT, Where

# a script line: level, message, call id, 4.3's area ("" = none), and 5.x's xlog file/line/route
LineSink = Callable[[str, str, str | None, str, Where | None], None]
# a module line: its key in harness.model.sbc_lines.CORE and its text (pike's own BLOCK/UNBLOCK lines)
ModuleSink = Callable[[str, str], None]


@dataclass(frozen=True)
class AntifloodSettings:
    pike: PikeSettings = field(default_factory=PikeSettings)
    rate_drop: bool = True  # kazoo.antiflood_rate_drop (ANTIFLOOD_RATE_DROP 1)


@dataclass(frozen=True)
class FloodRules:
    """What the release's request route lets the role see when it runs."""

    trusted_exempt: bool  # FLAG_TRUSTED_SOURCE / FLAG_INTERNALLY_SOURCED already set
    options_exempt: bool  # `if (is_method("OPTIONS")) return;`


def flood_rules(release: KazooRelease) -> FloodRules:
    """The release's route order (CLASSIFY_SOURCE first or not) and its role file's OPTIONS return."""
    return FloodRules(
        trusted_exempt=release.sbc_filters_exempt_trusted,
        options_exempt=release.antiflood_skips_options,
    )


@dataclass(frozen=True)
class FloodRequest:
    """What route[ANTIFLOOD_RATE_LIMIT] reads of a request."""

    method: str
    from_uri: str  # $fu
    source_ip: str  # $si
    source_port: int  # $sp
    call_id: str  # $ci
    in_dialog: bool  # has_totag()
    trusted: bool  # would be FLAG_TRUSTED_SOURCE once classified
    internal: bool  # would be FLAG_INTERNALLY_SOURCED once classified


class AntifloodRole:
    def __init__(
        self,
        release: KazooRelease,
        log: LineSink,
        module_log: ModuleSink,
        *,
        settings: AntifloodSettings | None = None,
        start: float = 0.0,
    ) -> None:
        self.release = release
        self.rules = flood_rules(release)
        self.settings = settings or AntifloodSettings()
        self._log = log
        self.pike = PikeTree(
            self.settings.pike, start=start, log=lambda event, text: module_log(f"pike_{event}", text)
        )

    def tick(self, now: float) -> None:
        """Run pike's timers up to ``now`` (so UNBLOCK lines are written while nobody sends)."""
        self.pike.advance(now)

    def drops(self, request: FloodRequest, now: float) -> bool:
        """True when the request is dropped (no reply), after writing the role's line."""
        if request.in_dialog:
            return False
        if self.rules.trusted_exempt and (request.trusted or request.internal):
            return False
        if self.rules.options_exempt and request.method == "OPTIONS":
            return False
        if not self.pike.check(request.source_ip, now).blocked:
            return False
        self._line("flood" if self.settings.rate_drop else "flood_allowed", request)
        return self.settings.rate_drop

    def _line(self, key: str, request: FloodRequest) -> None:
        """The role's xlog line as the release writes it (harness.model.sbc_lines)."""
        line = SCRIPT[key]
        text = line.text(self.release)
        if text is not None:
            values = {"from_uri": request.from_uri, "ip": request.source_ip, "port": request.source_port}
            self._log(line.level, text.format(**values), request.call_id, line.area_43, line.where_5x)


__all__ = ["AntifloodRole", "AntifloodSettings", "FloodRequest", "FloodRules", "Verdict", "flood_rules"]
