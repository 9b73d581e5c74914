"""Where the model reads messages as Kamailio 5.6's parser does (found with the RFC 4475 corpus)."""

from __future__ import annotations

from harness.model.kamailio_parse import (
    core_parse_failure,
    full_parse_failure,
    tolerate_start_line,
    uri_scheme_failure,
)
from harness.model.sbc import sanity_failure
from harness.sip.message import Request, parse_message

HEAD = b"OPTIONS sip:a@example.com SIP/2.0\r\n"
SANE = [
    b"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1",
    b"From: <sip:b@example.com>;tag=1",
    b"To: <sip:a@example.com>",
    b"Call-ID: c1",
    b"CSeq: 1 OPTIONS",
    b"Content-Length: 0",
]


def _msg(lines: list[bytes], head: bytes = HEAD) -> Request:
    message = parse_message(head + b"\r\n".join(lines) + b"\r\n\r\n")
    assert isinstance(message, Request)
    return message


def test_a_sane_request_passes_every_check() -> None:
    message = _msg(SANE)
    assert core_parse_failure(message) is None
    assert full_parse_failure(message) is None
    assert uri_scheme_failure(message) is None
    assert sanity_failure(message, "udp") is None


def test_a_bad_header_name_before_the_first_via_fails_the_core() -> None:
    message = _msg([b"C%6Fntact: <sip:x@example.com>", *SANE])
    assert core_parse_failure(message) is not None


def test_a_bad_header_name_after_the_first_via_makes_the_message_insane() -> None:
    message = _msg([*SANE, b"extensionHeader-!.%*+_`'~: x"])
    assert core_parse_failure(message) is None
    assert full_parse_failure(message) is not None
    assert sanity_failure(message, "udp") is not None


def test_an_unterminated_quote_in_to_before_the_via_fails_the_core() -> None:
    lines = [
        b'To: "Mr. J. User <sip:j.user@example.com>',
        *[line for line in SANE if not line.startswith(b"To")],
    ]
    assert core_parse_failure(_msg(lines)) == "bad to header"


def test_a_folded_cseq_fails_but_a_huge_cseq_number_is_left_to_sanity() -> None:
    folded = [b"CSeq: 0009\r\n  OPTIONS", *[line for line in SANE if not line.startswith(b"CSeq")]]
    huge = [b"CSeq: 9292394834772304023312 OPTIONS", *[line for line in SANE if not line.startswith(b"CSeq")]]
    assert core_parse_failure(_msg(folded)) == "bad cseq"
    assert core_parse_failure(_msg(huge)) is None
    assert sanity_failure(_msg(huge), "udp") is not None


def test_a_via_of_another_sip_version_fails_the_core() -> None:
    lines = [b"Via: SIP/7.0/UDP 127.0.0.1;branch=z9hG4bK1", *SANE[1:]]
    assert core_parse_failure(_msg(lines)) == "bad via"


def test_a_status_code_must_be_three_digits() -> None:
    response = parse_message(b"SIP/2.0 4294967301 better not break\r\n" + b"\r\n".join(SANE) + b"\r\n\r\n")
    assert core_parse_failure(response) == "bad status line"


def test_from_and_to_uris_must_use_a_scheme_kamailio_knows() -> None:
    lines = [
        b"From: <http://www.example.com>;tag=1",
        *[line for line in SANE if not line.startswith(b"From")],
    ]
    assert uri_scheme_failure(_msg(lines)) == "invalid From header or uri"


def test_duplicate_content_length_fails_the_full_parse() -> None:
    assert full_parse_failure(_msg([*SANE, b"Content-Length: 5"])) is not None


def test_trailing_blanks_after_the_request_line_are_tolerated() -> None:
    data = b"OPTIONS sip:a@example.com SIP/2.0  \r\n" + b"\r\n".join(SANE) + b"\r\n\r\n"
    tolerated = tolerate_start_line(data)
    assert tolerated is not None and tolerated.startswith(HEAD)
    assert tolerate_start_line(HEAD + b"\r\n".join(SANE) + b"\r\n\r\n") is None
