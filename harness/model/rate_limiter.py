"""Kazoo's RATE_LIMITER_ROLE (rate-limiter-role.cfg, route[DOS_PREVENTION] and DO_DOS_PREVENTION).

Per request, for the realm (the From domain; the To domain when the From host is an IP address) and
then for the device (``$fU@realm``): the limits are read from the ``rate_limits`` htable, fetched from
frontier (:mod:`harness.kazoo.frontier`) when one is missing (-1), with ``100 Attempting K query``
sent first; then per-second and per-minute counters keyed by the wall-clock second and minute
(``$timef``) go up, INVITE/REGISTER on their own counters and every request on ``TOTAL``, and the
first counter over its limit answers ``603 Over rate Limit`` (stateless, so a retransmission is
counted again). A realm frontier does not know is throttled with -1 limits: every request it counts
is rejected. The lines are the role's, per release (4.3 ``<callid>|RL-realm log| ...``, 5.x bare).

Which sources are exempt is the release's (the same ordering as the antiflood role: 4.3 runs
DOS_PREVENTION before CLASSIFY_SOURCE, so its trusted/internal test reads unset flags; 5.x classifies
first). Not modelled: the counting of replies in onreply_route (TOTAL counters also go up for the
replies to untrusted requests), a frontier that does not answer (``DB unreachable``, no limit) is
modelled only through ``frontier`` returning None.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.kazoo.release import KazooRelease
from harness.model.antiflood import LineSink

IP_REGEX = re.compile(r"[0-9]{1,3}\.[0-9]{1,3}.[0-9]{1,3}\.[0-9]{1,3}")  # as written, unanchored
RATE_LIMIT_CODE = 603
RATE_LIMIT_MESSAGE = "Over rate Limit"
QUERY_PROVISIONAL = (100, "Attempting K query")
LIMITS_EXPIRE = 60  # rate_limits=>autoexpire=60
HTABLE_TIMER = 10  # modparam("htable", "timer_interval", 10): expired items go at the next run
MISSING = -1  # rate_limits=>initval=-1: "expired, we need an update from DB"
PERSONAL_METHODS = ("INVITE", "REGISTER")

Frontier = Callable[[dict[str, Any]], dict[str, Any] | None]


@dataclass(frozen=True)
class LimitedRequest:
    """What route[DOS_PREVENTION] reads of a request."""

    method: str  # $rm
    from_user: str  # $fU ("" when none)
    from_domain: str  # $fd
    to_domain: str  # $td
    source_ip: str  # $si
    call_id: str  # $ci
    trusted: bool  # would be FLAG_TRUSTED_SOURCE once classified
    internal: bool  # would be FLAG_INTERNALLY_SOURCED once classified


@dataclass(frozen=True)
class Decision:
    replies: tuple[tuple[int, str], ...] = ()  # sent in order (a 100 before the query, the 603)
    rejected: bool = False  # the route ended with the 603


class _Limits:
    """The ``rate_limits`` htable: values set from frontier, gone at the first timer run after expiry."""

    def __init__(self, start: float) -> None:
        self._start = start
        self._items: dict[str, tuple[int, float]] = {}

    def get(self, key: str, now: float) -> int:
        item = self._items.get(key)
        if item is None:
            return MISSING
        value, expires = item
        runs = int((expires - self._start) // HTABLE_TIMER) + 1  # the first timer run after `expires`
        if now >= self._start + runs * HTABLE_TIMER:
            del self._items[key]
            return MISSING
        return value

    def set(self, key: str, value: int, now: float) -> None:
        self._items[key] = (value, now + LIMITS_EXPIRE)


class _Counters:
    """The rps/rpm/tps/tpm htables (initval 0): keys carry the second or minute, so they start over."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._stamp = ""

    def get(self, key: str) -> int:
        return self._counts.get(key, 0)

    def increment(self, key: str) -> None:
        self._counts[key] = self._counts.get(key, 0) + 1

    def new_second(self, stamp: str) -> None:
        """Forget the keys of seconds and minutes gone by (nothing reads them again)."""
        if stamp != self._stamp:
            minute = stamp[:-3]
            self._counts = {k: v for k, v in self._counts.items() if k.endswith(stamp) or minute in k}
            self._stamp = stamp


DO_DOS_PREVENTION_5X = 194  # where route[DO_DOS_PREVENTION] begins in 5.x's rate-limiter-role.cfg
# 5.x's rate-limiter-role.cfg: the line of each `DB=>HASH` xlog, by the hash key it logs
HASH_LINES_5X = {
    "lrpm_realm": 123, "lrps_realm": 127, "ltpm_realm": 131, "ltps_realm": 135,
    "lrpm_device": 139, "lrps_device": 143, "ltpm_device": 147, "ltps_device": 151,
}  # fmt: skip


class RateLimiterRole:
    def __init__(
        self, release: KazooRelease, log: LineSink, frontier: Frontier, *, start: float = 0.0
    ) -> None:
        self.release = release
        self.trusted_exempt = release.sbc_filters_exempt_trusted  # the same place in the route
        self._log = log
        self._frontier = frontier
        self._limits = _Limits(start)
        self._counters = _Counters()

    def _line(self, level: str, area: str, text_43: str, text_5: str, call_id: str, at: int) -> None:
        """The role's xlog line in the release's script-line style: 4.3 writes `$ci|<area>| <text>`;
        5.x rewrote each line with its own wording, behind xlog's prefix naming ``at``, the line of
        its xlog in 5.x's rate-limiter-role.cfg (route DO_DOS_PREVENTION from line 194 on)."""
        if self.release.kamailio_log_style == "pipe":
            self._log(level, text_43, call_id, area, None)
        else:
            route = "do_dos_prevention" if at >= DO_DOS_PREVENTION_5X else "dos_prevention"
            self._log(level, text_5, call_id, "", ("rate-limiter-role.cfg", at, route))

    def check(self, r: LimitedRequest, now: float) -> Decision:
        """route[DOS_PREVENTION] for a request at wall time ``now``."""
        if self.trusted_exempt and (r.internal or r.trusted):
            self._line("debug", "", "", f"trusted source IP({r.source_ip}) ignoring", r.call_id, 18)
            return Decision()
        m, fu, fd, td, cid = r.method, r.from_user, r.from_domain, r.to_domain, r.call_id
        personal = m in PERSONAL_METHODS
        limits = self._limits
        keys: dict[str, str] = {}
        if personal:
            keys |= {"lrpm_realm": f"{fd}/{m}/min", "lrps_realm": f"{fd}/{m}/sec",
                     "lrpm_device": f"{fu}@{fd}/{m}/min", "lrps_device": f"{fu}@{fd}/{m}/sec"}  # fmt: skip
        method_key, method_value = "Method", f'"{m}"' if personal else '"TOTAL"'
        ip_from = IP_REGEX.search(fd) is not None
        realm = td if ip_from else fd
        fixup = f" Fixup for {m} method with IP in from URI: use to-domain"
        if ip_from:
            self._line("warning", "RL-realm log", fixup, fixup, cid, 42)
        device = f"{fu}@{realm}"
        keys |= {"ltpm_realm": f"{realm}/TOTAL/min", "ltps_realm": f"{realm}/TOTAL/sec",
                 "ltpm_device": f"{device}/TOTAL/min", "ltps_device": f"{device}/TOTAL/sec"}  # fmt: skip
        entity = realm

        def missing(*names: str) -> bool:
            return any(limits.get(keys[name], now) == MISSING for name in names)

        def cant_find(area: str, text_5: str, at: int) -> None:
            self._line("info", area, f" Can't find HASHed rate for {entity} with {m} method", text_5, cid, at)

        realm_request = personal and missing("lrpm_realm", "lrps_realm")
        if realm_request:
            cant_find("RL-realm log", f"can't find HASHed rate for {entity} with {m} method", 60)
        realm_total = missing("ltpm_realm", "ltps_realm")
        if realm_total:
            cant_find("RL-realm log", f"can't find HASHed rate for {entity} with {m} method", 67)
        device_request = device_total = False
        if fu:
            if ip_from:
                lower = f"fixup for {m} method with IP in from URI: use to-domain"
                self._line("warning", "RL-realm log", fixup, lower, cid, 73)
            entity = f"{fu}@{realm}"
            device_request = personal and missing("lrpm_device", "lrps_device")
            if device_request:
                cant_find("RL-device log", f"can't find HASHed rate for {entity} with {m} method", 83)
            device_total = missing("ltpm_device", "ltps_device")
            if device_total:
                cant_find("RL-device log", f" can't find HASHed rate for {entity} with {m} method", 89)
        if personal and ((device_request and device_total) or (realm_request and realm_total)):
            method_key, method_value = "Method-List", f'["{m}", "TOTAL"]'
        replies: list[tuple[int, str]] = []
        if realm_request or realm_total or device_request or device_total:
            with_realm = "true" if realm_request else "false"
            query = (
                f'{{"Entity" : "{entity}", "{method_key}" : {method_value}, "Event-Category" : '
                f'"rate_limit", "Event-Name" : "query", "With-Realm" : {with_realm}}}'
            )
            self._line("info", "RL log", f" Query: {query}", f"query: {query}", cid, 107)
            replies.append(QUERY_PROVISIONAL)
            answer = self._frontier(json.loads(query))
            if answer is None:
                text = f" {m} DB unreachable for entity: {entity}"
                self._line("error", "RL log", text, text, cid, 154)
                return Decision(tuple(replies))
            text = json.dumps(answer, separators=(",", ":"))
            self._line("info", "RL log", f" Response: {text}", f"response: {text}", cid, 110)
            self._store(answer, keys, m, cid, now)
        # the realm, then the device
        entity, entity_type = realm, "realm"
        if ip_from:
            self._line("warning", "RL-device log", fixup, fixup, cid, 160)
        decision = self._count(r, entity, entity_type, keys, "realm", now, replies)
        if decision.rejected or not fu:
            return decision
        entity, entity_type = f"{fu}@{realm}", "device"
        if ip_from:
            self._line("warning", "RL-device log", fixup, fixup, cid, 178)
        return self._count(r, entity, entity_type, keys, "device", now, replies)

    def _store(self, answer: dict[str, Any], keys: dict[str, str], m: str, cid: str, now: float) -> None:
        """kazoo_json(...) then `$sht(rate_limits=>key) = value` for each value the answer has."""
        for kind, area in (("Realm", "RL-realm log"), ("Device", "RL-device log")):
            section = answer.get(kind) or {}
            suffix = kind.lower()
            for method, prefix in ((m, "lr"), ("TOTAL", "lt")):  # the config's order of kazoo_json
                for span, slot in (("Minute", "m"), ("Second", "s")):
                    value = (section.get(span) or {}).get(method)
                    name = f"{prefix}p{slot}_{suffix}"
                    if value is None or value == "" or name not in keys:
                        continue
                    limit = int(value)
                    self._limits.set(keys[name], limit, now)
                    text = f" {m} DB=>HASH for {keys[name]}={limit}"
                    self._line("info", area, text, text, cid, HASH_LINES_5X[name])

    def _count(
        self,
        r: LimitedRequest,
        entity: str,
        entity_type: str,
        keys: dict[str, str],
        suffix: str,
        now: float,
        replies: list[tuple[int, str]],
    ) -> Decision:
        """route[DO_DOS_PREVENTION]: log the limits and counts, count, reject the first one over."""
        m, cid, counters = r.method, r.call_id, self._counters
        personal = m in PERSONAL_METHODS
        local = time.localtime(now)
        second, minute = time.strftime("%Y/%m/%d_%H_%M_%S", local), time.strftime("%Y/%m/%d_%H_%M_00", local)
        counters.new_second(second)
        area = f"RL-{entity_type} log"
        lt = {span: self._limits.get(keys[f"ltp{span}_{suffix}"], now) for span in ("m", "s")}
        rpm, rps = f"{entity}:{m}:min:{minute}", f"{entity}:{m}:sec:{second}"
        tpm, tps = f"{entity}:TOTAL:min:{minute}", f"{entity}:TOTAL:sec:{second}"
        checks: list[tuple[str, int, str, int]] = []  # key, limit, what, 5.x's line
        if personal:
            lr = {span: self._limits.get(keys[f"lrp{span}_{suffix}"], now) for span in ("m", "s")}
            for key, limit, at in ((rpm, lr["m"], 206), (rps, lr["s"], 207)):
                text = f" L/C for {key} = {limit}/{counters.get(key)}"
                self._line("info", area, text, text, cid, at)
            checks += [(rps, lr["s"], m, 226), (rpm, lr["m"], m, 231)]
        for key, limit, at in ((tpm, lt["m"], 210), (tps, lt["s"], 211)):
            text = f" L/C for {key} = {limit}/{counters.get(key)}"
            self._line("info", area, text, text, cid, at)
        checks += [(tps, lt["s"], f"TOTAL({m})", 241), (tpm, lt["m"], f"TOTAL({m})", 250)]
        for key in (rpm, rps, tpm, tps) if personal else (tpm, tps):
            counters.increment(key)
        for key, limit, what, at in checks:
            if counters.get(key) > limit:
                replies.append((RATE_LIMIT_CODE, RATE_LIMIT_MESSAGE))
                text = f" Out of {what} {key} rate limits: {counters.get(key)} > {limit})"
                self._line("info", area, text, text, cid, at)
                return Decision(tuple(replies), rejected=True)
        return Decision(tuple(replies))
