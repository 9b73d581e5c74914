from __future__ import annotations

import pytest

from harness.sip.digest import (
    Credentials,
    authorization_value,
    digest_response,
    make_challenge_value,
    verify,
)
from harness.sip.headers import Challenge, parse_challenge

# RFC 2617 §3.5 worked example (qop=auth)
RFC2617 = {
    "username": "Mufasa",
    "password": "Circle Of Life",
    "realm": "testrealm@host.com",
    "nonce": "dcd98b7102dd2f0e8b11d0f600bfb0c093",
    "method": "GET",
    "uri": "/dir/index.html",
    "qop": "auth",
    "cnonce": "0a4f113b",
    "nc": "00000001",
}
# RFC 7616 §3.9.1 (qop=auth, MD5 and SHA-256)
RFC7616 = {
    "username": "Mufasa",
    "password": "Circle of Life",
    "realm": "http-auth@example.org",
    "nonce": "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
    "method": "GET",
    "uri": "/dir/index.html",
    "qop": "auth",
    "cnonce": "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    "nc": "00000001",
}


def test_rfc2617_worked_example() -> None:
    assert digest_response(**RFC2617) == "6629fae49393a05397450978507c4ef1"


def test_rfc7616_md5_and_sha256_vectors() -> None:
    assert digest_response(**RFC7616) == "8ca523f5e9506fed4657c9700eebdbec"
    assert (
        digest_response(**RFC7616, algorithm="SHA-256")
        == "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    )


def test_authorization_value_answers_rfc2617_challenge() -> None:
    challenge = parse_challenge(
        'Digest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    value = authorization_value(
        challenge, "GET", "/dir/index.html", Credentials("Mufasa", "Circle Of Life"), cnonce="0a4f113b"
    )
    params = parse_challenge(value).params
    assert params["response"] == "6629fae49393a05397450978507c4ef1"
    assert (params["qop"], params["nc"], params["cnonce"]) == ("auth", "00000001", "0a4f113b")
    assert params["opaque"] == "5ccc069c403ebaf9f0171e9517f40e41"
    assert verify(value, "GET", "Circle Of Life")


def test_server_challenge_round_trip() -> None:
    challenge_text = make_challenge_value("127.0.0.1", "n0nce")
    assert challenge_text == 'Digest realm="127.0.0.1", nonce="n0nce", algorithm=MD5, qop="auth"'
    creds = Credentials("carrier", "s3cret")
    value = authorization_value(
        parse_challenge(challenge_text), "INVITE", "sip:+14155550100@127.0.0.1", creds, cnonce="c1", nc=2
    )
    assert "nc=00000002" in value
    assert verify(value, "INVITE", "s3cret", realm="127.0.0.1", nonce="n0nce")
    assert not verify(value, "INVITE", "wrong")
    assert not verify(value, "BYE", "s3cret")  # the method is part of the digest
    assert not verify(value, "INVITE", "s3cret", nonce="stale")
    assert not verify(value, "INVITE", "s3cret", realm="other")


def test_no_qop_challenge_uses_rfc2069_form() -> None:
    value = authorization_value(
        Challenge("Digest", {"realm": "r", "nonce": "n"}),
        "INVITE",
        "sip:a@127.0.0.1",
        Credentials("u", "p"),
        cnonce="c",
    )
    assert "qop=" not in value and "cnonce=" not in value
    assert verify(value, "INVITE", "p")


@pytest.mark.parametrize(
    "value",
    ["", "Basic dXNlcjpwYXNz", 'Digest username="u"', 'Digest username="u, realm="r"', "Digest garbage"],
)
def test_verify_rejects_malformed_values(value: str) -> None:
    assert verify(value, "INVITE", "p") is False


def test_authorization_value_refuses_what_it_cannot_answer() -> None:
    creds = Credentials("u", "p")
    with pytest.raises(ValueError):
        authorization_value(Challenge("Basic", {"realm": "r"}), "INVITE", "sip:a@h", creds, cnonce="c")
    with pytest.raises(ValueError):
        authorization_value(Challenge("Digest", {"realm": "r"}), "INVITE", "sip:a@h", creds, cnonce="c")
    with pytest.raises(ValueError):
        authorization_value(
            Challenge("Digest", {"realm": "r", "nonce": "n", "qop": "auth-int"}),
            "INVITE",
            "sip:a@h",
            creds,
            cnonce="c",
        )
    with pytest.raises(ValueError):
        authorization_value(
            Challenge("Digest", {"realm": "r", "nonce": "n", "algorithm": "SHA-1"}),
            "INVITE",
            "sip:a@h",
            creds,
            cnonce="c",
        )
