"""Building requests a carrier would send (RFC 3261 §8.1.1, §9.1, §13.2.2.4, §17.1.1.3).

An :class:`InviteSpec` names what a test cares about; everything else gets an RFC 3261 default. Random
parts (Call-ID, tags, branch) come from ``random.Random(spec.seed)`` and the caller's name and number
from ``Faker("en_US")`` seeded the same way, so one spec always gives the same bytes.
"""

from __future__ import annotations

import functools
import random
import re
import secrets
from dataclasses import dataclass, field, replace

from faker import Faker

from harness.sip.errors import SipParseError
from harness.sip.headers import canonical_name, split_commas
from harness.sip.message import Request, Response, encode, parse_message
from harness.sip.sdp import DEFAULT_CODECS, make_offer

DEFAULT_USER_AGENT = "kazoo-harness/0.1"
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS"
MAX_FORWARDS = 70
BRANCH_COOKIE = "z9hG4bK"  # RFC 3261 §8.1.1.7
CRLF = "\r\n"

# User-Agents Kazoo's Kamailio drops as scanners (kazoo-behaviour.md §4): equal to the first three,
# containing the others. The builder refuses them unless a test asks through a mutator.
SCANNER_USER_AGENTS_EXACT = ("friendly-scanner", "sundayddr", "pplsip")
SCANNER_USER_AGENTS_CONTAINED = ("NiceGuy", "PortSIP", "sipcli", "QNQ")


def is_scanner_user_agent(value: str) -> bool:
    low = value.strip().lower()
    return low in SCANNER_USER_AGENTS_EXACT or any(s.lower() in low for s in SCANNER_USER_AGENTS_CONTAINED)


def _fresh_seed() -> int:
    return secrets.randbits(32)


@dataclass(frozen=True)
class InviteSpec:
    """What an INVITE (or OPTIONS) should look like. ``None`` fields get defaults at build time.

    ``to_user`` defaults to ``ruri_user`` (set it apart to put the number only in the To, as some
    carriers do); ``ruri_host``/``to_host`` default to ``target_host``; ``from_user``/``from_display``
    come from faker; ``rtp_port=None`` sends no SDP. ``seed`` is fixed when the spec is made, so the
    spec records everything needed to rebuild the same bytes.
    """

    target_host: str = "127.0.0.1"
    target_port: int = 5060
    transport: str = "udp"
    local_ip: str = "127.0.0.10"
    local_port: int = 5060
    ruri_user: str = "+14155550100"
    to_user: str | None = None
    ruri_host: str | None = None
    to_host: str | None = None
    from_user: str | None = None
    from_display: str | None = None
    from_host: str | None = None
    call_id: str | None = None
    cseq: int = 1
    branch: str | None = None
    from_tag: str | None = None
    user_agent: str = DEFAULT_USER_AGENT
    rtp_ip: str | None = None  # default: local_ip
    rtp_port: int | None = 40000
    codecs: tuple[str, ...] = DEFAULT_CODECS
    extra_headers: list[tuple[str, str]] = field(default_factory=list)
    remove_headers: list[str] = field(default_factory=list)
    seed: int = field(default_factory=_fresh_seed)


@functools.cache
def _faker() -> Faker:
    # building a Faker loads every provider (~2 ms); one instance, re-seeded per spec, gives the same draws
    return Faker("en_US")


def resolve(spec: InviteSpec) -> InviteSpec:
    """The spec with every defaulted field filled in (what :func:`build_invite` will write).

    The random draws happen in a fixed order whatever is overridden, so overriding one field never
    changes the others.
    """
    rng = random.Random(spec.seed)
    fake = _faker()
    fake.seed_instance(spec.seed)
    call_id = f"{rng.getrandbits(64):016x}@{spec.local_ip}"
    from_tag = f"{rng.getrandbits(32):08x}"
    branch = f"{BRANCH_COOKIE}{rng.getrandbits(64):016x}"
    display = fake.name()
    number = f"+1{fake.random_int(2, 9)}{fake.numerify('##')}{fake.random_int(2, 9)}{fake.numerify('######')}"
    return replace(
        spec,
        call_id=spec.call_id if spec.call_id is not None else call_id,
        from_tag=spec.from_tag if spec.from_tag is not None else from_tag,
        branch=spec.branch if spec.branch is not None else branch,
        from_display=spec.from_display if spec.from_display is not None else display,
        from_user=spec.from_user if spec.from_user is not None else number,
        to_user=spec.to_user if spec.to_user is not None else spec.ruri_user,
        ruri_host=spec.ruri_host if spec.ruri_host is not None else spec.target_host,
        to_host=spec.to_host if spec.to_host is not None else spec.target_host,
        from_host=spec.from_host if spec.from_host is not None else spec.local_ip,
        rtp_ip=spec.rtp_ip if spec.rtp_ip is not None else spec.local_ip,
    )


def _hostport(host: str, port: int | None, default: int = 5060) -> str:
    return host if port is None or port == default else f"{host}:{port}"


def _display(name: str) -> str:
    """A quoted display name (RFC 3261 §25.1 quoted-string)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _contact_uri(spec: InviteSpec) -> str:
    params = "" if spec.transport.lower() == "udp" else f";transport={spec.transport.lower()}"
    return f"sip:{spec.from_user}@{_hostport(spec.local_ip, spec.local_port)}{params}"


def _serialize(start: str, headers: list[tuple[str, str]], body: bytes) -> bytes:
    text = start + CRLF + "".join(f"{n}: {v}{CRLF}" for n, v in headers) + CRLF
    return encode(text) + body


def _request(start: str, headers: list[tuple[str, str]], body: bytes = b"") -> Request:
    msg = parse_message(_serialize(start, headers, body))
    if not isinstance(msg, Request):
        raise ValueError(f"built a response instead of a request: {start!r}")
    return msg


def _ruri(spec: InviteSpec, user: str | None) -> str:
    port = spec.target_port if spec.ruri_host == spec.target_host else None
    userinfo = f"{user}@" if user else ""
    return f"sip:{userinfo}{_hostport(spec.ruri_host or spec.target_host, port)}"


def _common_headers(spec: InviteSpec, method: str) -> list[tuple[str, str]]:
    from_display = _display(spec.from_display or "")
    via = f"SIP/2.0/{spec.transport.upper()} {spec.local_ip}:{spec.local_port};branch={spec.branch};rport"
    return [
        ("Via", via),
        ("Max-Forwards", str(MAX_FORWARDS)),
        ("From", f"{from_display} <sip:{spec.from_user}@{spec.from_host}>;tag={spec.from_tag}"),
        ("To", f"<sip:{spec.to_user}@{spec.to_host}>"),
        ("Call-ID", spec.call_id or ""),
        ("CSeq", f"{spec.cseq} {method}"),
        ("Contact", f"<{_contact_uri(spec)}>"),
        ("User-Agent", spec.user_agent),
        ("Allow", ALLOW),
    ]


def _finish(
    spec: InviteSpec, headers: list[tuple[str, str]], body: bytes, content_type: str | None
) -> list[tuple[str, str]]:
    headers = headers + list(spec.extra_headers)
    if content_type is not None:
        headers.append(("Content-Type", content_type))
    headers.append(("Content-Length", str(len(body))))
    removed = {canonical_name(n) for n in spec.remove_headers}
    return [(n, v) for n, v in headers if canonical_name(n) not in removed]


def build_invite(spec: InviteSpec) -> Request:
    """An initial INVITE for ``spec`` (see :func:`resolve` for the defaults). Raises ValueError when the
    spec's User-Agent is one Kamailio drops as a scanner: use the ``user-agent`` mutator for that."""
    if is_scanner_user_agent(spec.user_agent):
        raise ValueError(f"User-Agent {spec.user_agent!r} is dropped by Kazoo as a scanner")
    s = resolve(spec)
    body = b""
    if s.rtp_port is not None:
        body = make_offer(s.rtp_ip or s.local_ip, s.rtp_port, s.codecs, session_id=s.seed)
    headers = _finish(s, _common_headers(s, "INVITE"), body, "application/sdp" if body else None)
    return _request(f"INVITE {_ruri(s, s.ruri_user)} SIP/2.0", headers, body)


def build_options(spec: InviteSpec) -> Request:
    """An out-of-dialog OPTIONS ping to ``sip:<ruri_host>`` built from the same spec fields."""
    if is_scanner_user_agent(spec.user_agent):
        raise ValueError(f"User-Agent {spec.user_agent!r} is dropped by Kazoo as a scanner")
    s = resolve(spec)
    headers = [*_common_headers(s, "OPTIONS"), ("Accept", "application/sdp")]
    return _request(f"OPTIONS {_ruri(s, None)} SIP/2.0", _finish(s, headers, b"", None))


# -- requests that follow an INVITE --------------------------------------------------------------------


def new_branch() -> str:
    return BRANCH_COOKIE + secrets.token_hex(8)


def _top_via(invite: Request) -> str:
    first = invite.get("via")
    if first is None:
        raise ValueError("the INVITE has no Via")
    return split_commas(first)[0]


def _with_branch(via: str, branch: str) -> str:
    if re.search(r";\s*branch\s*=", via, re.I):
        return re.sub(r"(;\s*branch\s*=\s*)[^;,\s]*", lambda m: m.group(1) + branch, via, count=1, flags=re.I)
    return f"{via};branch={branch}"


def _route_set(response: Response) -> list[str]:
    """The UAC's route set: the response's Record-Route values in reverse (RFC 3261 §12.1.2)."""
    values: list[str] = []
    for v in response.values("record-route"):
        values.extend(split_commas(v))
    return list(reversed(values))


def _remote_target(invite: Request, response: Response) -> str:
    try:
        contact = response.contact
    except SipParseError:
        contact = None
    return str(contact.uri) if contact is not None else invite.uri_text


def _required(msg: Request | Response, name: str) -> str:
    value = msg.get(name)
    if value is None:
        raise ValueError(f"the {type(msg).__name__.lower()} has no {name} header")
    return value


def build_ack(invite: Request, response: Response, *, branch: str | None = None) -> Request:
    """The ACK for ``response`` to ``invite``.

    Non-2xx (RFC 3261 §17.1.1.3): same Request-URI and top Via (same branch), Route copied from the
    INVITE, To from the response. 2xx (§13.2.2.4): a new transaction (new branch, ``branch`` when given)
    to the response's Contact, with the route set from its Record-Route.
    """
    cseq = invite.cseq.number
    via = _top_via(invite)
    if 200 <= response.code < 300:
        ruri = _remote_target(invite, response)
        via = _with_branch(via, branch or new_branch())
        routes = _route_set(response)
    else:
        ruri = invite.uri_text
        routes = invite.values("route")
    headers = [
        ("Via", via),
        ("Max-Forwards", str(MAX_FORWARDS)),
        *[("Route", r) for r in routes],
        ("From", _required(invite, "from")),
        ("To", _required(response, "to")),
        ("Call-ID", _required(invite, "call-id")),
        ("CSeq", f"{cseq} ACK"),
        ("Content-Length", "0"),
    ]
    return _request(f"ACK {ruri} SIP/2.0", headers)


def build_bye(invite: Request, response: Response, cseq: int, *, branch: str | None = None) -> Request:
    """A BYE in the dialog ``response`` (a 2xx) established: to its Contact, route set from its
    Record-Route, From/To with both tags, a new branch (RFC 3261 §12.2.1.1, §15.1.1)."""
    headers = [
        ("Via", _with_branch(_top_via(invite), branch or new_branch())),
        ("Max-Forwards", str(MAX_FORWARDS)),
        *[("Route", r) for r in _route_set(response)],
        ("From", _required(invite, "from")),
        ("To", _required(response, "to")),
        ("Call-ID", _required(invite, "call-id")),
        ("CSeq", f"{cseq} BYE"),
        ("Content-Length", "0"),
    ]
    ua = invite.get("user-agent")
    if ua is not None:
        headers.insert(-1, ("User-Agent", ua))
    return _request(f"BYE {_remote_target(invite, response)} SIP/2.0", headers)


def build_cancel(invite: Request) -> Request:
    """CANCEL for a pending INVITE (RFC 3261 §9.1): same Request-URI, top Via (branch), From, To,
    Call-ID, CSeq number and Route as the INVITE."""
    headers = [
        ("Via", _top_via(invite)),
        ("Max-Forwards", str(MAX_FORWARDS)),
        *[("Route", r) for r in invite.values("route")],
        ("From", _required(invite, "from")),
        ("To", _required(invite, "to")),
        ("Call-ID", _required(invite, "call-id")),
        ("CSeq", f"{invite.cseq.number} CANCEL"),
        ("Content-Length", "0"),
    ]
    return _request(f"CANCEL {invite.uri_text} SIP/2.0", headers)
