"""Dialed forms of an E.164 number, as carriers send them (what the number_format scenarios vary)."""

from __future__ import annotations

import phonenumbers


def dialed_form(e164: str, fmt: str) -> str:
    """Write ``e164`` (e.g. +14155550100) the way a carrier might: `nanp10` 4155550100, `nanp11`
    14155550100, `intl011` 011..., `intl00` 00..., `dashed` 415-555-0100, `dotted` 415.555.0100,
    `spaced` +1 415 555 0100, `parens` (415) 555-0100, `digits` 14155550100 (E.164 without +).

    National layouts come from phonenumbers (Google's libphonenumber metadata), so a non-NANP
    number is laid out the way its own country writes it.
    """
    if fmt == "e164" or not e164.startswith("+"):
        return e164
    digits = e164[1:]
    if fmt in ("digits", "nanp11"):
        return digits
    if fmt == "intl011":
        return "011" + digits
    if fmt == "intl00":
        return "00" + digits
    parsed = phonenumbers.parse(e164, None)
    national = str(parsed.national_number)
    if fmt == "nanp10":
        return national
    if fmt == "parens":
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    if fmt == "spaced":
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL).replace(
            "-", " "
        )
    if fmt in ("dashed", "dotted"):
        text = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
        plain = "".join(c if c.isdigit() else " " for c in text).split()
        return ("-" if fmt == "dashed" else ".").join(plain)
    raise ValueError(f"unknown number format {fmt!r}")
