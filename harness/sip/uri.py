"""SIP/SIPS/tel URIs (RFC 3261 §19.1, RFC 3966), parsed leniently enough for torture messages."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from harness.sip.errors import SipParseError

# RFC 3261 §25.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+\-.]*):(.*)$", re.S)
# hostport: IPv6reference / hostname / IPv4 with an optional port
_HOSTPORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[^:\[\]]*)(?::([0-9]*))?$")


def bounded_int(text: str, maximum: int) -> int | None:
    """``text`` as an int when it is ASCII digits not above ``maximum``, else None.

    Guards ``int()``: it accepts Unicode digits that str.isdigit() lets through ("²" fails later), and
    refuses strings of over 4,300 digits with a ValueError that is not a SipParseError.
    """
    if not (text.isascii() and text.isdigit()):  # ASCII digits only (what "[0-9]+" says, faster)
        return None
    digits = text.lstrip("0") or "0"
    if len(digits) > len(str(maximum)) or int(digits) > maximum:
        return None
    return int(digits)


def _split_params(text: str) -> dict[str, str | None]:
    params: dict[str, str | None] = {}
    for part in text.split(";"):
        if not part:
            continue
        name, eq, value = part.partition("=")
        params[name.strip().lower()] = value.strip() if eq else None
    return params


@dataclass(frozen=True)
class SipUri:
    """A parsed URI. For schemes other than sip/sips/tel only ``scheme`` and ``opaque`` are set."""

    scheme: str
    user: str | None = None
    password: str | None = None
    host: str = ""
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    headers: str | None = None
    opaque: str = ""

    @property
    def is_sip(self) -> bool:
        return self.scheme.lower() in ("sip", "sips")

    def __str__(self) -> str:
        if not self.is_sip and self.scheme.lower() != "tel":
            return f"{self.scheme}:{self.opaque}"
        return f"{self.scheme}:{self.opaque}"


@functools.lru_cache(maxsize=4096)  # URIs recur call after call (Request-URIs, From and To addresses)
def parse_uri(text: str) -> SipUri:
    """Parse ``text`` as a URI; raise :class:`SipParseError` when it is not one. The result may be
    shared with other callers: never change its ``params``."""
    text = text.strip()
    m = _SCHEME.match(text)
    if not m:
        raise SipParseError(f"not a URI: {text[:60]!r}")
    scheme, rest = m.group(1), m.group(2)
    if any(c in rest for c in " \t\r\n"):
        raise SipParseError(f"whitespace inside URI {text[:60]!r}")
    low = scheme.lower()
    if low == "tel":
        number, _, params = rest.partition(";")
        return SipUri(scheme=scheme, user=number, params=_split_params(params), opaque=rest)
    if low not in ("sip", "sips"):
        return SipUri(scheme=scheme, opaque=rest)
    body, q, headers = rest.partition("?")
    user: str | None = None
    password: str | None = None
    if "@" in body:
        userinfo, _, body = body.rpartition("@")
        user, colon, pw = userinfo.partition(":")
        password = pw if colon else None
    hostport, _, params = body.partition(";")
    hm = _HOSTPORT.match(hostport)
    if not hm or not hm.group(1):
        raise SipParseError(f"bad host in URI {text[:60]!r}")
    port: int | None = None
    if hm.group(2) is not None:
        parsed = bounded_int(hm.group(2), 65535)
        if parsed is None:
            raise SipParseError(f"bad port in URI {text[:60]!r}")
        port = parsed
    return SipUri(
        scheme=scheme,
        user=user,
        password=password,
        host=hm.group(1),
        port=port,
        params=_split_params(params),
        headers=headers if q else None,
        opaque=rest,
    )


def host_is_ip(host: str) -> bool:
    """True when a URI host is an IPv4 address or an IPv6 reference (TRAFFIC_FILTER's test)."""
    if host.startswith("["):
        return True
    return bool(re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", host))
