"""HTTP Digest authentication as SIP uses it (RFC 2617, RFC 7616, RFC 3261 §22).

Client side: answer a 401/407 challenge. Server side (the model's media role): issue a challenge and
check an answer. MD5 is what Kazoo's FreeSWITCH speaks; SHA-256 and the ``-sess`` variants come free.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from harness.sip.errors import SipParseError
from harness.sip.headers import Challenge, parse_challenge

_HASHES = {"md5": "md5", "sha-256": "sha256", "sha-512-256": "sha512_256"}


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


def _hash_name(algorithm: str) -> tuple[str, bool]:
    """hashlib name and whether the algorithm is a ``-sess`` one; ValueError when unknown."""
    low = algorithm.lower()
    sess = low.endswith("-sess")
    base = low.removesuffix("-sess")
    if base not in _HASHES:
        raise ValueError(f"unsupported digest algorithm {algorithm!r}")
    return _HASHES[base], sess


def _h(hash_name: str, text: str) -> str:
    return hashlib.new(hash_name, text.encode("utf-8", "surrogateescape")).hexdigest()


def digest_response(
    *,
    username: str,
    password: str,
    realm: str,
    nonce: str,
    method: str,
    uri: str,
    qop: str | None = None,
    cnonce: str = "",
    nc: str = "00000001",
    algorithm: str = "MD5",
) -> str:
    """The ``response`` value (RFC 2617 §3.2.2.1; without qop the RFC 2069 form)."""
    hash_name, sess = _hash_name(algorithm)
    ha1 = _h(hash_name, f"{username}:{realm}:{password}")
    if sess:
        ha1 = _h(hash_name, f"{ha1}:{nonce}:{cnonce}")
    ha2 = _h(hash_name, f"{method}:{uri}")
    if qop is None:
        return _h(hash_name, f"{ha1}:{nonce}:{ha2}")
    return _h(hash_name, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def authorization_value(
    challenge: Challenge,
    method: str,
    uri: str,
    creds: Credentials,
    *,
    cnonce: str,
    nc: int = 1,
) -> str:
    """The Authorization / Proxy-Authorization value answering ``challenge`` for one request.

    Uses qop=auth when the challenge offers it, the RFC 2069 form when it offers no qop. Raises
    ValueError for a non-Digest challenge, a missing realm or nonce, an unsupported algorithm, or a
    challenge that offers only qop=auth-int.
    """
    if challenge.scheme.lower() != "digest":
        raise ValueError(f"cannot answer a {challenge.scheme!r} challenge")
    params = challenge.params
    if "realm" not in params or "nonce" not in params:
        raise ValueError("digest challenge without realm or nonce")
    algorithm = params.get("algorithm", "MD5")
    qop: str | None = None
    if "qop" in params:
        offered = [q.strip().lower() for q in params["qop"].split(",")]
        if "auth" not in offered:
            raise ValueError(f"digest challenge offers no qop=auth ({params['qop']!r})")
        qop = "auth"
    nc_text = f"{nc:08x}"
    response = digest_response(
        username=creds.username,
        password=creds.password,
        realm=params["realm"],
        nonce=params["nonce"],
        method=method,
        uri=uri,
        qop=qop,
        cnonce=cnonce,
        nc=nc_text,
        algorithm=algorithm,
    )
    parts = [
        f"username={_quote(creds.username)}",
        f"realm={_quote(params['realm'])}",
        f"nonce={_quote(params['nonce'])}",
        f"uri={_quote(uri)}",
        f"response={_quote(response)}",
        f"algorithm={algorithm}",
    ]
    if qop is not None:
        parts += [f"cnonce={_quote(cnonce)}", f"qop={qop}", f"nc={nc_text}"]
    if "opaque" in params:
        parts.append(f"opaque={_quote(params['opaque'])}")
    return "Digest " + ", ".join(parts)


def make_challenge_value(realm: str, nonce: str) -> str:
    """A WWW-/Proxy-Authenticate value: ``Digest realm="...", nonce="...", algorithm=MD5, qop="auth"``."""
    return f'Digest realm={_quote(realm)}, nonce={_quote(nonce)}, algorithm=MD5, qop="auth"'


def verify(
    authorization_value: str,
    method: str,
    password: str,
    *,
    realm: str | None = None,
    nonce: str | None = None,
) -> bool:
    """True when ``authorization_value`` carries the right digest for ``method`` and ``password``.

    ``realm``/``nonce``, when given, must match too (nonce freshness is the caller's business). Any
    malformed or unsupported value gives False, never an exception.
    """
    try:
        auth = parse_challenge(authorization_value)
    except SipParseError:
        return False
    p = auth.params
    if auth.scheme.lower() != "digest" or not {"username", "realm", "nonce", "uri", "response"} <= p.keys():
        return False
    if (realm is not None and p["realm"] != realm) or (nonce is not None and p["nonce"] != nonce):
        return False
    qop = p.get("qop")
    if qop is not None and (qop.lower() != "auth" or "cnonce" not in p or "nc" not in p):
        return False
    try:
        expected = digest_response(
            username=p["username"],
            password=password,
            realm=p["realm"],
            nonce=p["nonce"],
            method=method,
            uri=p["uri"],
            qop=qop.lower() if qop else None,
            cnonce=p.get("cnonce", ""),
            nc=p.get("nc", ""),
            algorithm=p.get("algorithm", "MD5"),
        )
    except ValueError:
        return False
    return hmac.compare_digest(expected, p["response"].lower())
