"""The routing role: what ecallmgr, stepswitch, reorder and callflow decide for one inbound INVITE.

FreeSWITCH (the media role) asks for a dialplan; ecallmgr publishes the route request, stepswitch
looks the dialed number up, and either callflow answers (the number routes) or reorder answers with
its configured response (604 "Nope Nope Nope"). The decision carries the delay the real stack shows:
an error for a non-reconcilable number, or a number without callflow, only comes after the route
fetch timeout because no application answered in time.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from harness.kazoo.numbers import SYSTEM_CONFIG_DB, DocReader, InboundConfig, find_callflow, lookup_number
from harness.model.logbus import LogBus
from harness.sip.errors import SipParseError
from harness.sip.message import Request

DEFAULT_REORDER_CODE = 604
DEFAULT_REORDER_MESSAGE = "Nope Nope Nope"
PICNIC_CODE = 686
PICNIC_REASON = "PICNIC"

# Behaviours a demo callflow can ask of the media role (demo data: callflow ``model_behaviour``).
CALLFLOW_BEHAVIOURS = ("answer", "busy", "ring_forever", "no_media")

Outcome = Literal["routed", "error", "no_callflow"]


@dataclass(frozen=True)
class RouteDecision:
    outcome: Outcome
    fetch_id: str
    number: str | None
    e164: str | None
    delay: float = 0.0  # seconds before the final answer (route fetch timeout)
    code: int | None = None  # the final answer for error / no_callflow
    reason: str | None = None
    account_id: str | None = None
    behaviour: str = "answer"
    callflow: dict[str, Any] | None = field(default=None, repr=False)


def callflow_behaviour(callflow: Mapping[str, Any]) -> str:
    """The demo data's hint for the media role: ``model_behaviour`` or a flag in ``flags``."""
    hint = callflow.get("model_behaviour")
    if isinstance(hint, str) and hint in CALLFLOW_BEHAVIOURS:
        return hint
    flags = callflow.get("flags")
    if isinstance(flags, list):
        for flag in flags:
            if flag in CALLFLOW_BEHAVIOURS:
                return str(flag)
    return "answer"


def reorder_response(store: DocReader) -> tuple[int, str]:
    """system_config/reorder ``unknown_number`` response code and message (defaults 604 Nope Nope Nope)."""
    doc = store.get(SYSTEM_CONFIG_DB, "reorder") or {}
    section = doc.get("default", doc)
    unknown = section.get("unknown_number", {}) if isinstance(section, Mapping) else {}
    if not isinstance(unknown, Mapping):
        unknown = {}
    try:
        code = int(unknown.get("response_code", DEFAULT_REORDER_CODE))
    except (TypeError, ValueError):
        code = DEFAULT_REORDER_CODE
    if not 400 <= code <= 699:
        code = DEFAULT_REORDER_CODE
    message = str(unknown.get("response_message", DEFAULT_REORDER_MESSAGE))
    return code, message


def _user(request: Request, which: str) -> str | None:
    try:
        uri = request.uri if which == "ruri" else request.to.uri
    except SipParseError:
        return None
    return uri.user


def fetch_id() -> str:
    """A fresh version-4 UUID, as ecallmgr's fetch ids are. From the process's generator, not uuid4's
    os.urandom (a system call per call): a fetch id must be unique, not secret."""
    n = random.getrandbits(128)
    n = (n & ~(0xF000 << 64)) | (4 << 76)  # the version (RFC 4122 4.1.3)
    n = (n & ~(0xC000 << 48)) | (0x8000 << 48)  # the variant (4.1.1)
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class RoutingRole:
    def __init__(self, store: DocReader, bus: LogBus, node: str, route_timeout: float) -> None:
        self.store = store
        self.bus = bus
        self.node = node
        self.route_timeout = route_timeout

    def route(self, request: Request, call_id: str) -> RouteDecision:
        fetch = fetch_id()
        self.bus.kazoo(
            "ecallmgr",
            "ecallmgr_fs_route",
            153,
            "info",
            f"process route request for fetch id {fetch}",
            call_id,
        )
        config = InboundConfig.read(self.store, self.node)
        number = config.dialed(_user(request, "ruri"), _user(request, "to"))
        found = lookup_number(self.store, number, self.node, config=config)
        if not found.ok:
            dialed = found.e164 or number
            self.bus.kazoo(
                "stepswitch",
                "stepswitch_inbound",
                79,
                "info",
                f"unable to determine account for fetch-id {fetch}, {dialed}: {found.reason}",
                call_id,
            )
            code, message = reorder_response(self.store)
            # Reorder answers at once only for a number it could reconcile; otherwise nothing answers
            # the route request until FreeSWITCH's fetch timeout.
            delay = 0.0 if found.reconcilable else self.route_timeout
            return RouteDecision("error", fetch, number, found.e164, delay, code, message)
        assert found.account_id is not None and found.e164 is not None
        callflow = find_callflow(self.store, found.account_id, found.e164)
        if callflow is None:
            self.bus.kazoo("callflow", "cf_route_req", 112, "info", "unable to find callflow", call_id)
            return RouteDecision(
                "no_callflow",
                fetch,
                number,
                found.e164,
                self.route_timeout,
                PICNIC_CODE,
                PICNIC_REASON,
                found.account_id,
            )
        self.bus.kazoo(
            "ecallmgr",
            "ecallmgr_fs_route",
            231,
            "info",
            f"received affirmative route response for request {fetch}",
            call_id,
        )
        return RouteDecision(
            "routed",
            fetch,
            number,
            found.e164,
            account_id=found.account_id,
            behaviour=callflow_behaviour(callflow),
            callflow=callflow,
        )
