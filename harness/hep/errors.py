"""The one exception family the HEP layer raises for bad bytes."""

from __future__ import annotations


class HepError(ValueError):
    """Bytes that are not a valid HEP packet.

    ``what`` says what is wrong and ``offset`` is the byte offset in the packet (or in the stream
    buffer, for the stream decoder) where it was found. Every decoder and framer in
    :mod:`harness.hep` raises this and nothing else for bad input.
    """

    def __init__(self, what: str, offset: int) -> None:
        self.what = what
        self.offset = offset
        super().__init__(f"{what} (byte {offset})")


class HepTruncated(HepError):
    """The bytes end before the packet does: more bytes would complete it (a stream waits for them)."""
