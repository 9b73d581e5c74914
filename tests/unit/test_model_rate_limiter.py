"""RATE_LIMITER_ROLE (harness/model/rate_limiter.py) and frontier's answers (harness/kazoo/frontier.py),
with the demo data's account realm and wall time the test sets."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from harness.kazoo.frontier import DEFAULT_RATES, rate_limits_answer
from harness.kazoo.release import release
from harness.kazoo_sbc.edits_5x import port_5x
from harness.kazoo_sbc.launcher import copy_config
from harness.kazoo_sbc.releases import sbc_release
from harness.model.demo import load_demo
from harness.model.rate_limiter import Decision, LimitedRequest, RateLimiterRole
from harness.model.sbc_lines import Where
from harness.model.store import DocumentStore

REALM = "demo-account.kazoo-model.local"
T0 = time.mktime((2026, 11, 26, 4, 0, 10, 0, 0, -1))  # local 04:00:10: second and minute keys known
Line = tuple[str, str, str | None, str]


@pytest.fixture(scope="module")
def store() -> DocumentStore:
    return load_demo()


class Recorder:
    def __init__(self, store: DocumentStore) -> None:
        self.lines: list[Line] = []
        self.wheres: list[Where | None] = []
        self.queries: list[dict[str, Any]] = []
        self.store = store

    def log(self, level: str, message: str, call_id: str | None, area: str, where: Where | None) -> None:
        self.lines.append((level, message, call_id, area))
        self.wheres.append(where)

    def frontier(self, query: dict[str, Any]) -> dict[str, Any]:
        self.queries.append(query)
        return rate_limits_answer(self.store, query)

    def texts(self, area: str | None = None) -> list[str]:
        return [m for _, m, _, a in self.lines if area is None or a == area]


def role(store: DocumentStore, profile: str = "kazoo-4.3") -> tuple[RateLimiterRole, Recorder]:
    rec = Recorder(store)
    return RateLimiterRole(release(profile), rec.log, rec.frontier, start=T0 - 5), rec


def device_invite(method: str = "INVITE", *, user: str = "alice", trusted: bool = False) -> LimitedRequest:
    return LimitedRequest(method, user, REALM, REALM, "127.0.0.66", "cid-1", trusted, False)


def carrier_invite(*, trusted: bool) -> LimitedRequest:  # From host is the carrier's IP: realm = To host
    return LimitedRequest(
        "INVITE", "+14155551234", "127.0.0.10", "127.0.0.1", "127.0.0.10", "cid-2", trusted, False
    )


# ---------------------------------------------------------------- frontier
def test_frontier_answers_a_known_realm_with_its_system_config_defaults(store: DocumentStore) -> None:
    answer = rate_limits_answer(
        store, {"Entity": f"alice@{REALM}", "Method-List": ["INVITE", "TOTAL"], "With-Realm": True}
    )
    assert answer == {
        "Realm": {
            "Minute": {"INVITE": 200, "TOTAL": 2000},
            "Second": {"INVITE": 50, "TOTAL": 100},
            "Name": REALM,
        },
        "Device": {
            "Minute": {"INVITE": 100, "TOTAL": 1000},
            "Second": {"INVITE": 5, "TOTAL": 20},
            "Name": "alice",
        },
    }


def test_frontier_throttles_an_unknown_realm(store: DocumentStore) -> None:
    answer = rate_limits_answer(store, {"Entity": "bob@127.0.0.1", "Method": "INVITE", "With-Realm": True})
    assert answer == {
        "Device": {"Minute": {"INVITE": -1}, "Second": {"INVITE": -1}, "Name": "bob"},
        "Realm": {"Minute": {"INVITE": -1}, "Second": {"INVITE": -1}, "Name": "127.0.0.1"},
    }


def test_frontier_reads_system_config_frontier() -> None:
    copy = load_demo()
    rates = {
        "account": DEFAULT_RATES["account"],
        "device": {"per_minute": {"invites": 7}, "per_second": {"invites": 2}},
    }
    copy.put("system_config", {"_id": "frontier", "default": {"rate_limits": rates}})
    answer = rate_limits_answer(copy, {"Entity": f"alice@{REALM}", "Method": "INVITE", "With-Realm": False})
    assert answer == {"Device": {"Minute": {"INVITE": 7}, "Second": {"INVITE": 2}, "Name": "alice"}}


# ---------------------------------------------------------------- the role
def test_sixth_invite_of_a_device_in_one_second_gets_603(store: DocumentStore) -> None:
    limiter, rec = role(store)
    decisions = [limiter.check(device_invite(), T0) for _ in range(6)]
    assert decisions[0] == Decision(((100, "Attempting K query"),))  # limits fetched once, then cached
    assert decisions[1:5] == [Decision()] * 4
    assert decisions[5] == Decision(((603, "Over rate Limit"),), rejected=True)
    assert len(rec.queries) == 1
    assert rec.queries[0] == {
        "Entity": f"alice@{REALM}", "Method-List": ["INVITE", "TOTAL"], "Event-Category": "rate_limit",
        "Event-Name": "query", "With-Realm": True,
    }  # fmt: skip
    key = f"alice@{REALM}:INVITE:sec:2026/11/26_04_00_10"
    assert rec.lines[-1] == ("info", f" Out of INVITE {key} rate limits: 6 > 5)", "cid-1", "RL-device log")
    assert limiter.check(device_invite(), T0 + 1) == Decision()  # a new second, a new counter


def test_the_per_minute_limit(store: DocumentStore) -> None:
    limiter, rec = role(store)
    verdicts = [limiter.check(device_invite(), T0 + i // 5).rejected for i in range(101)]  # 5 a second
    assert verdicts == [False] * 100 + [True]
    assert (
        rec.texts()[-1]
        == f" Out of INVITE alice@{REALM}:INVITE:min:2026/11/26_04_00_00 rate limits: 101 > 100)"
    )


def test_other_methods_count_only_in_total(store: DocumentStore) -> None:
    limiter, rec = role(store)
    limiter.check(device_invite(), T0)  # fetches and caches the realm's and the device's limits
    verdicts = [limiter.check(device_invite("OPTIONS"), T0).rejected for _ in range(20)]
    assert verdicts == [False] * 19 + [True]  # the INVITE was the first of the device's 20 TOTAL
    assert (
        rec.texts()[-1]
        == f" Out of TOTAL(OPTIONS) alice@{REALM}:TOTAL:sec:2026/11/26_04_00_10 rate limits: 21 > 20)"
    )


def test_a_device_request_before_any_invite_is_rejected(store: DocumentStore) -> None:
    """Not an INVITE: the query asks for TOTAL without With-Realm, frontier answers the device only, and
    the realm's TOTAL limits stay -1. What the config does, as read; to be confirmed on a running one."""
    limiter, rec = role(store)
    assert limiter.check(device_invite("OPTIONS"), T0).rejected
    assert rec.queries[0] == {
        "Entity": f"alice@{REALM}", "Method": "TOTAL", "Event-Category": "rate_limit", "Event-Name": "query",
        "With-Realm": False,
    }  # fmt: skip
    assert (
        rec.texts()[-1]
        == f" Out of TOTAL(OPTIONS) {REALM}:TOTAL:sec:2026/11/26_04_00_10 rate limits: 1 > -1)"
    )


def test_an_unknown_realm_is_rejected_from_the_first_invite_and_asked_again(store: DocumentStore) -> None:
    limiter, rec = role(store)
    first = limiter.check(carrier_invite(trusted=False), T0)
    assert first == Decision(((100, "Attempting K query"), (603, "Over rate Limit")), rejected=True)
    texts = rec.texts()
    assert " Fixup for INVITE method with IP in from URI: use to-domain" in texts
    assert " INVITE DB=>HASH for 127.0.0.10/INVITE/sec=-1" in texts  # realm INVITE keys use $fd as written
    assert texts[-1] == " Out of INVITE 127.0.0.1:INVITE:sec:2026/11/26_04_00_10 rate limits: 1 > -1)"
    assert limiter.check(carrier_invite(trusted=False), T0).replies[0] == (100, "Attempting K query")
    assert len(rec.queries) == 2  # -1 is the htable's "missing": every request asks again


def test_kazoo_43_counts_trusted_sources_kazoo_5_does_not(store: DocumentStore) -> None:
    limiter_43, _ = role(store, "kazoo-4.3")
    assert limiter_43.check(carrier_invite(trusted=True), T0).rejected  # DOS_PREVENTION before CLASSIFY
    limiter_5, rec = role(store, "kazoo-5")
    assert limiter_5.check(carrier_invite(trusted=True), T0) == Decision()
    assert rec.lines == [("debug", "trusted source IP(127.0.0.10) ignoring", "cid-2", "")]
    assert limiter_5.check(carrier_invite(trusted=False), T0).rejected


def test_kazoo_5_lines_have_no_area(store: DocumentStore) -> None:
    limiter, rec = role(store, "kazoo-5")
    for _ in range(6):
        limiter.check(device_invite(), T0)
    assert {area for _, _, _, area in rec.lines} == {""}
    assert f"can't find HASHed rate for alice@{REALM} with INVITE method" in rec.texts()
    assert (
        rec.texts()[-1] == f" Out of INVITE alice@{REALM}:INVITE:sec:2026/11/26_04_00_10 rate limits: 6 > 5)"
    )


def test_cached_limits_expire_at_the_htable_timer_after_60_s(store: DocumentStore) -> None:
    limiter, rec = role(
        store
    )  # htable timer runs at T0-5 + 10k: set at T0, expired after T0+60, gone at T0+65
    limiter.check(device_invite(), T0)
    limiter.check(device_invite(), T0 + 64.9)
    assert len(rec.queries) == 1
    limiter.check(device_invite(), T0 + 65.0)
    assert len(rec.queries) == 2


def test_frontier_unreachable_lets_the_request_on(store: DocumentStore) -> None:
    rec = Recorder(store)
    limiter = RateLimiterRole(release("kazoo-4.3"), rec.log, lambda query: None, start=T0)
    assert limiter.check(device_invite(), T0) == Decision(((100, "Attempting K query"),))
    assert rec.lines[-1] == ("error", f" INVITE DB unreachable for entity: alice@{REALM}", "cid-1", "RL log")


PRISTINE_5X = sbc_release("kazoo-5").pristine
_XLOG_TEXT = re.compile(r'xlog\("L_[A-Z]+",\s*"((?:[^"\\]|\\.)*)"\)')
_VARIABLE = re.compile(r"\$\w+(?:\((?:[^()]|\([^()]*\))*\))?")  # $rm, $var(x), $sht(t=>$var(x))


@pytest.mark.skipif(not PRISTINE_5X.is_dir(), reason="Kazoo's 5.x configuration missing (../shared)")
def test_each_5x_line_names_the_xlog_that_writes_it(store: DocumentStore, tmp_path: Path) -> None:
    """Every line the role writes on 5.x names, in xlog's prefix, the file:line of an xlog in the running
    (ported) tree whose text, its $variables standing for anything, is the line's text."""
    tree = tmp_path / "kamailio"
    copy_config(PRISTINE_5X, tree)
    port_5x(tree)
    source = (tree / "rate-limiter-role.cfg").read_text(encoding="utf-8").splitlines()
    limiter, rec = role(store, "kazoo-5")
    for _ in range(6):
        limiter.check(device_invite(), T0)
    limiter.check(carrier_invite(trusted=False), T0)
    assert len(rec.lines) > 10 and all(where is not None for where in rec.wheres)
    for (_, message, _, _), where in zip(rec.lines, rec.wheres, strict=True):
        assert where is not None
        file, number, route = where
        found = _XLOG_TEXT.search(source[number - 1])
        assert found is not None, f"{file}:{number} is not an xlog: {source[number - 1].strip()}"
        parts = _VARIABLE.split(found.group(1).removesuffix("\\n"))
        pattern = ".+".join(re.escape(part) for part in parts)
        assert re.fullmatch(pattern, message, re.S), (
            f"{file}:{number} logs {found.group(1)!r}, not {message!r}"
        )
        routes = re.findall(r"^route\[([^\]]+)\]", "\n".join(source[:number]), re.M)
        assert routes and route == routes[-1].lower(), (
            f"{file}:{number} is in route {routes[-1:]}, not {route}"
        )
