"""Replay from Homer 7: one call fetched by Call-ID through Homer's API (sipcapture/homer-app), for the
existing replay.

- ``POST /api/v3/auth`` {username, password} gives a JWT (sent as ``Authorization: Bearer``); an API
  token made in Homer's UI is sent as ``Auth-Token`` instead (homer-app main.go, the restricted group).
- ``POST /api/v3/search/call/data`` with ``param.search = {"1_call": [{name: "sid", value: CALL_ID}]}``
  finds the call's messages (their ids); ``POST /api/v3/search/call/message`` with those ids gives each
  one's protocol header (addresses, IP protocol, capture id, time) and raw text.
- ``POST /api/v3/export/call/messages/pcap`` with ``param.search = {"1_call": {"callid": [CALL_ID]}}``
  gives the call as a pcap, which the replay reads like any capture.

Homer's export rebuilds every message as Ethernet/IPv4/UDP (utils/exportwriter WriteDataPcapBuffer),
whatever it was captured on: each message's transport is put back from its protocol header, and a
note says so where the header gives none (then it stays UDP). Credentials come from the environment:
``HOMER_TOKEN`` (an API auth token), or ``HOMER_USER`` and ``HOMER_PASSWORD``; never from the command
line. Timestamps are Homer's: milliseconds since the epoch.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

from harness.hep.spec import transport_name
from harness.replay.capture import CapturedMessage, read_messages
from harness.replay.source import Capture, SourceError

PREFIX = "homer+"
TOKEN_ENV, USER_ENV, PASSWORD_ENV = "HOMER_TOKEN", "HOMER_USER", "HOMER_PASSWORD"
DEFAULT_WINDOW = 24 * 3600.0  # seconds searched back from --to when --from is not given
SEARCH_LIMIT = 500
TIMEOUT = 15.0


class HomerError(SourceError):
    """Homer could not be asked (unreachable, refused the credentials) or has no such call."""


def is_homer(source: str) -> bool:
    return source.startswith(PREFIX)


def base_url(source: str) -> str:
    """``homer+https://host[:port][/prefix]`` -> ``https://host[:port][/prefix]``."""
    url = source[len(PREFIX) :].rstrip("/") if is_homer(source) else source.rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise HomerError(f"expected homer+https://HOST (or homer+http://), got {source!r}")
    return url


@dataclass
class HomerCall:
    call_id: str
    messages: list[CapturedMessage]
    notes: list[str] = field(default_factory=list)


class HomerClient:
    """Homer 7's API over requests. ``token`` (an API auth token) or ``username``/``password``."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout: float = TIMEOUT,
        session: requests.Session | None = None,
    ) -> None:
        if not token and not (username and password):
            raise HomerError(
                f"no Homer credentials: set {TOKEN_ENV} (an API auth token), or {USER_ENV} and {PASSWORD_ENV}"
            )
        self.url = base_url(url)
        self.timeout = timeout
        self.session = session or requests.Session()
        self._username, self._password = username, password
        self._headers: dict[str, str] = {"Auth-Token": token} if token else {}

    @classmethod
    def from_env(cls, url: str, environ: Mapping[str, str] | None = None) -> HomerClient:
        env = os.environ if environ is None else environ
        return cls(url, token=env.get(TOKEN_ENV), username=env.get(USER_ENV), password=env.get(PASSWORD_ENV))

    def _request(self, path: str, body: Mapping[str, Any], *, auth: bool = True) -> requests.Response:
        if auth and not self._headers:
            self.login()
        try:
            response = self.session.post(
                f"{self.url}{path}", json=body, headers=self._headers if auth else {}, timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise HomerError(f"Homer at {self.url} cannot be reached: {exc}") from exc
        if response.status_code >= 400:
            raise HomerError(f"Homer answered {response.status_code} to {path}: {_message(response)}")
        return response

    def _json(self, path: str, body: Mapping[str, Any], *, auth: bool = True) -> dict[str, Any]:
        response = self._request(path, body, auth=auth)
        try:
            data = response.json()
        except ValueError as exc:
            raise HomerError(f"Homer's answer to {path} is not JSON: {response.text[:200]!r}") from exc
        if not isinstance(data, dict):
            raise HomerError(f"Homer's answer to {path} is not an object: {str(data)[:200]}")
        return data

    def login(self) -> None:
        """``POST /api/v3/auth``: the JWT for later requests."""
        data = self._json(
            "/api/v3/auth", {"username": self._username, "password": self._password}, auth=False
        )
        token = data.get("token")
        if not isinstance(token, str) or not token:
            raise HomerError(f"Homer's /api/v3/auth answer has no token: {sorted(data)}")
        self._headers = {"Authorization": f"Bearer {token}"}

    def search_call(self, call_id: str, since: float, until: float) -> list[dict[str, Any]]:
        """The call's messages without their text (``/api/v3/search/call/data``), oldest first."""
        body = _search_body(
            since, until, {"1_call": [{"name": "sid", "value": call_id, "type": "string", "hepid": 1}]}
        )
        return _rows(self._json("/api/v3/search/call/data", body), "/api/v3/search/call/data")

    def messages(self, ids: list[int], since: float, until: float) -> list[dict[str, Any]]:
        """Those messages with their protocol header and raw text (``/api/v3/search/call/message``)."""
        body = _search_body(since, until, {"1_call": {"uuid": ids}}, limit=max(len(ids), 1))
        return _rows(self._json("/api/v3/search/call/message", body), "/api/v3/search/call/message")

    def export_pcap(self, call_id: str, since: float, until: float) -> bytes:
        """The call as Homer exports it (``/api/v3/export/call/messages/pcap``)."""
        body = _search_body(since, until, {"1_call": {"callid": [call_id]}})
        body["param"]["transaction"] = {"call": True, "registration": False, "rest": False}
        return self._request("/api/v3/export/call/messages/pcap", body).content


def _search_body(
    since: float, until: float, search: Mapping[str, Any], *, limit: int = SEARCH_LIMIT
) -> dict[str, Any]:
    return {
        "param": {"transaction": {}, "limit": limit, "search": dict(search), "location": {"node": []},
                  "timezone": {"value": 0, "name": "UTC"}},
        "timestamp": {"from": int(since * 1000), "to": int(until * 1000)},
    }  # fmt: skip


def _rows(data: Mapping[str, Any], path: str) -> list[dict[str, Any]]:
    rows = data.get("data")
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise HomerError(f"Homer's answer to {path} has no data list: {str(data)[:200]}")
    return rows


def _message(response: requests.Response) -> str:
    """Homer's error text: {"message": ...} (also its FailureResponse {"statuscode", "error", "message"})."""
    try:
        data = response.json()
    except ValueError:
        return response.text[:200] or response.reason
    if isinstance(data, dict) and data.get("message"):
        return str(data["message"])
    return str(data)[:200]


def _key(src: tuple[str, int], dst: tuple[str, int], data: bytes) -> tuple[str, int, str, int, bytes]:
    return (src[0], int(src[1]), dst[0], int(dst[1]), data)


def _protocol(value: object) -> int | None:
    """An IP protocol number as Homer's JSON holds it (a number, sometimes a string)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _transports(details: list[dict[str, Any]]) -> dict[tuple[str, int, str, int, bytes], list[str | None]]:
    """Each message's transport from its protocol header (None when it names no protocol Homer knows),
    in capture order per (addresses, bytes): copies of one message come out of the export in that order."""
    out: dict[tuple[str, int, str, int, bytes], list[str | None]] = {}
    for d in sorted(details, key=lambda d: (d.get("timeSeconds") or 0, d.get("timeUseconds") or 0)):
        try:
            src = (str(d["srcIp"]), int(d["srcPort"]))
            key = _key(src, (str(d["dstIp"]), int(d["dstPort"])), str(d["raw"]).encode())
        except (KeyError, TypeError, ValueError):
            continue
        protocol = _protocol(d.get("protocol"))
        out.setdefault(key, []).append(transport_name(protocol) if protocol is not None else None)
    return out


def fetch_call(client: HomerClient, call_id: str, since: float, until: float) -> HomerCall:
    """The call's messages, read from Homer's pcap export, each with the transport it was captured on."""
    rows = client.search_call(call_id, since, until)
    window = f"{_when(since)} and {_when(until)}"
    if not rows:
        raise HomerError(f"Homer has no message with Call-ID {call_id} between {window}")
    ids = [int(r["id"]) for r in rows if isinstance(r.get("id"), int | float)]
    transports = _transports(client.messages(ids, since, until)) if ids else {}
    pcap = client.export_pcap(call_id, since, until)
    with tempfile.TemporaryDirectory(prefix="homer-") as tmp:
        path = Path(tmp) / "export.pcap"
        path.write_bytes(pcap)
        try:
            exported = read_messages(path)
        except ValueError as exc:
            raise HomerError(f"Homer's pcap export of {call_id} is not a capture: {exc}") from exc
    messages, unknown, restored = [], [], 0
    for m in exported:
        queued = transports.get(_key(m.src, m.dst, m.data))
        transport = queued.pop(0) if queued else None
        if transport is None:
            unknown.append(m.first_line)
            messages.append(m)
            continue
        restored += transport != "udp"
        messages.append(replace(m, transport=transport))
    notes = [f"from Homer {client.url}: {len(messages)} messages of Call-ID {call_id} between {window}"]
    if restored:
        notes.append(
            f"Homer's pcap export rebuilds every message as UDP: {restored} put back on the transport "
            "Homer's metadata records"
        )
    if unknown:
        shown = "; ".join(unknown[:3]) + ("; ..." if len(unknown) > 3 else "")
        notes.append(
            f"transport cannot be known for {len(unknown)} message(s) ({shown}): Homer's export rebuilds "
            "every message as UDP and its metadata names no protocol for them; taken as UDP"
        )
    return HomerCall(call_id, messages, notes)


def homer_capture(
    source: str,
    call_id: str | None,
    since: str | None,
    until: str | None,
    *,
    environ: Mapping[str, str] | None = None,
) -> tuple[Capture, list[str]]:
    """``replay homer+https://HOST --call-id ID [--from/--to]``: the call as a capture, and its notes."""
    if not call_id:
        raise HomerError("a Homer source needs --call-id: Homer is searched for one call")
    start, end = time_window(since, until)
    client = HomerClient.from_env(source, environ)
    call = fetch_call(client, call_id, start, end)
    return Capture("homer", client.url, call.messages), call.notes


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def parse_time(text: str) -> float:
    """``--from``/``--to``: epoch seconds, or ISO 8601 (``2026-12-01T10:00:00Z``; local time without a
    zone)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError as exc:
        raise HomerError(
            f"not a time: {text!r} (epoch seconds or ISO 8601, e.g. 2026-12-01T10:00:00Z)"
        ) from exc


def time_window(since: str | None, until: str | None, *, now: float | None = None) -> tuple[float, float]:
    end = parse_time(until) if until else (time.time() if now is None else now)
    start = parse_time(since) if since else end - DEFAULT_WINDOW
    if start >= end:
        raise HomerError(f"--from ({_when(start)}) must come before --to ({_when(end)})")
    return start, end


__all__ = [
    "HomerCall",
    "HomerClient",
    "HomerError",
    "base_url",
    "fetch_call",
    "homer_capture",
    "is_homer",
    "time_window",
]
