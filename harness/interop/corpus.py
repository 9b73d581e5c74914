"""The RFC 4475 / RFC 5118 torture-message corpus (../shared/corpus): files, RFC verdicts, and the
facts about each message that decide how it may be sent on loopback.

The messages name hosts that are not loopback (example.com, 192.0.2.x, 2001:db8::). The carrier is
always a loopback address; what matters is whether a message could make an element send anywhere
else, which :func:`leaves_loopback` decides from the lab configuration's routing rules.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

DEFAULT_CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
SETS = ("rfc4475", "rfc5118")
DEFAULT_VIA_PORT = 5060

# RFC 5118's verdicts, from the corpus README's prose (it has no table for them)
RFC5118_VERDICTS = {
    "ipv6-bad": "invalid",
    "ipv6-bug-abnf-3-colons": "invalid",
    "port-ambiguous": "well formed but ambiguous",
}
RFC5118_DEFAULT = "valid"

_TABLE_ROW = re.compile(r"^\|\s*([a-z0-9 ]+?)\s*\|\s*([^|]*?)\s*\|\s*([^|]*?)\s*\|\s*$")
_FIRST_VIA = re.compile(rb"^(?:via|v)[ \t]*:[ \t]*([^\r\n]*)", re.I | re.M)
_SENT_BY_PORT = re.compile(rb"^SIP\s*/\s*[0-9.]+\s*/\s*[A-Za-z]+\s+(\[[^\]]*\]|[^\s;:,]+)(?::(\d{1,5}))?")
_HEADER_LINE = re.compile(rb"^([A-Za-z0-9!%*_+`'~.-]+)[ \t]*:[ \t]*([^\r\n]*(?:\r?\n[ \t]+[^\r\n]*)*)", re.M)
_TAG = re.compile(r";\s*tag\s*=", re.I)
_VIA_HOSTS = re.compile(r"SIP\s*/\s*[0-9.]+\s*/\s*[A-Za-z]+\s+(\[[^\]]*\]|[^\s;:,]+)", re.I)
_URI_HOST = re.compile(r"sips?:(?:[^@<>;\s]*@)?(\[[^\]]*\]|[^:;>\s]+)", re.I)


@dataclass(frozen=True)
class CorpusMessage:
    set: str  # "rfc4475" | "rfc5118"
    name: str  # file name without ".dat"
    data: bytes
    verdict: str  # what a compliant element should do, from the corpus README

    @property
    def label(self) -> str:
        return f"{self.set}/{self.name}"

    @property
    def is_request(self) -> bool:
        return not self.data.startswith(b"SIP/")


def corpus_dir() -> Path:
    """``$KAZOO_HARNESS_CORPUS`` or ../shared/corpus next to the repository."""
    return Path(os.environ.get("KAZOO_HARNESS_CORPUS", DEFAULT_CORPUS))


def rfc4475_verdicts(readme: str) -> dict[str, str]:
    """File name -> verdict, from the README's "| files | RFC section | verdict |" table."""
    verdicts: dict[str, str] = {}
    for line in readme.splitlines():
        match = _TABLE_ROW.match(line)
        if match is None or match.group(1) == "files":
            continue
        files, section, verdict = match.groups()
        for name in files.split():
            verdicts[name] = f"{section}: {verdict}"
    return verdicts


def load_corpus(root: Path | None = None) -> list[CorpusMessage]:
    """Every corpus file, bytes exact, in a stable order (set, then name)."""
    root = root or corpus_dir()
    readme = (root / "README.md").read_text(encoding="utf-8")
    verdicts = rfc4475_verdicts(readme)
    messages: list[CorpusMessage] = []
    for set_name in SETS:
        for path in sorted((root / set_name).glob("*.dat")):
            name = path.stem
            if set_name == "rfc4475":
                verdict = verdicts.get(name, "not in the README table")
            else:
                verdict = RFC5118_VERDICTS.get(name, RFC5118_DEFAULT)
            messages.append(CorpusMessage(set_name, name, path.read_bytes(), verdict))
    return messages


def via_port(data: bytes) -> int:
    """The port of the first Via's sent-by (5060 when absent or unreadable).

    Kamailio answers to the source address but, without ``rport``, to the Via's port (RFC 3261
    §18.2.2); the carrier binds that port so it hears the answer as a Via-following element sends it.
    """
    via = _FIRST_VIA.search(data)
    if via is None:
        return DEFAULT_VIA_PORT
    sent_by = _SENT_BY_PORT.match(via.group(1).strip())
    if sent_by is None or sent_by.group(2) is None:
        return DEFAULT_VIA_PORT
    port = int(sent_by.group(2))
    return port if 0 < port < 65536 else DEFAULT_VIA_PORT


def _headers(data: bytes) -> list[tuple[str, str]]:
    head = data.split(b"\r\n\r\n", 1)[0]
    return [
        (name.decode("ascii", "replace").lower(), value.decode("utf-8", "replace"))
        for name, value in _HEADER_LINE.findall(head)
    ]


def _is_loopback_host(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def leaves_loopback(message: CorpusMessage) -> str | None:
    """Why sending ``message`` to the lab Kamailio could make it send off loopback, or None.

    The lab relays initial requests only to the dispatcher's (loopback) media server, answers to the
    source address (``reply_to_via`` off) and runs with ``dns=no``; the one path that follows the
    message's own addresses is an in-dialog request (To tag) with a Route set, which ``loose_route()``
    relays to the first Route. A response that matches no transaction is forwarded statelessly to
    its second Via (``check_via`` is off: the top Via is not compared with Kamailio's address).
    """
    headers = _headers(message.data)
    if not message.is_request:
        vias = [value for name, value in headers if name in ("via", "v")]
        hosts = [host for value in vias for host in _VIA_HOSTS.findall(value)]
        if len(hosts) > 1 and not _is_loopback_host(hosts[1]):
            return f"a response is forwarded statelessly to its second Via, {hosts[1]}"
        return None
    has_to_tag = any(name in ("to", "t") and _TAG.search(value) for name, value in headers)
    routes = [value for name, value in headers if name == "route" and value.strip()]
    if has_to_tag and routes:
        match = _URI_HOST.search(routes[0])
        host = match.group(1) if match else routes[0]
        if not _is_loopback_host(host):
            return f"in-dialog request with Route to {host}: loose_route() would relay it there"
    return None


def leaves_loopback_through_kazoo(message: CorpusMessage) -> str | None:
    """Why sending ``message`` to Kazoo's own configuration could make it send off loopback, or None:
    what :func:`leaves_loopback` says, and an in-dialog request whose Request-URI is no loopback address:
    Kazoo 5.x relays such a request to its Request-URI (seen: rfc5118/mult-ip-in-header made it look up
    `host.example.net` in DNS, answered `478 Unresolvable destination`)."""
    reason = leaves_loopback(message)
    if reason is not None or not message.is_request:
        return reason
    headers = _headers(message.data)
    if not any(name in ("to", "t") and _TAG.search(value) for name, value in headers):
        return None
    match = _URI_HOST.search(message.data.split(b"\r\n", 1)[0].decode("utf-8", "replace"))
    host = match.group(1) if match else ""
    if not _is_loopback_host(host):
        return f"in-dialog request to {host or 'its Request-URI'}: Kazoo 5.x may relay it there (DNS too)"
    return None
