"""HEP3 over a byte stream (TCP): packets one after the other, each carrying its own total length.

HEP v1/v2 carry no length and cannot be framed on a stream; bytes that do not start with "HEP3" at a
packet boundary make the stream unreadable from there on.
"""

from __future__ import annotations

from typing import NoReturn

from harness.hep import spec
from harness.hep.decode import decode_v3
from harness.hep.errors import HepError
from harness.hep.packet import HepPacket


class HepStreamError(HepError):
    """A stream that failed at ``offset`` (counted from the stream's first byte). ``decoded`` holds the
    packets decoded from the same ``feed()`` before the failure; ``fatal`` says the stream is out of
    step (a bad packet with a good length is skipped, and the stream goes on)."""

    def __init__(self, what: str, offset: int, *, decoded: list[HepPacket], fatal: bool) -> None:
        super().__init__(what, offset)
        self.decoded = decoded
        self.fatal = fatal


class HepStreamDecoder:
    """Feed bytes as they arrive; take whole packets out."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._consumed = 0  # stream offset of self._buf[0]
        self._broken: HepStreamError | None = None

    @property
    def pending(self) -> int:
        """Bytes held for a packet not complete yet."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[HepPacket]:
        """The packets ``data`` completes, decoded."""
        self._append(data)
        out: list[HepPacket] = []
        while (frame := self._next_frame(out)) is not None:
            start, packet = frame
            try:
                out.append(decode_v3(packet))
            except HepError as exc:
                raise HepStreamError(exc.what, start + exc.offset, decoded=out, fatal=False) from exc
        return out

    def feed_frames(self, data: bytes) -> list[bytes]:
        """The packets ``data`` completes, as bytes (framed by their length, not decoded)."""
        self._append(data)
        out: list[bytes] = []
        while (frame := self._next_frame([])) is not None:
            out.append(frame[1])
        return out

    def _append(self, data: bytes) -> None:
        if self._broken is not None:
            raise HepStreamError(
                f"stream already unreadable: {self._broken.what}", self._broken.offset, decoded=[], fatal=True
            )
        self._buf += data

    def _next_frame(self, decoded: list[HepPacket]) -> tuple[int, bytes] | None:
        """(stream offset, bytes) of the next complete packet, None when it is not complete yet."""
        if len(self._buf) < spec.HEP3_HEADER.size:
            if not spec.HEP3_ID.startswith(bytes(self._buf[:4])):
                self._fail(f"expected a HEP3 packet, got {bytes(self._buf)!r}", self._consumed, decoded)
            return None
        ident, total = spec.HEP3_HEADER.unpack_from(self._buf)
        if ident != spec.HEP3_ID:
            what = f"expected a HEP3 packet, got {bytes(self._buf[:4])!r} (HEP v1/v2 cannot be streamed)"
            self._fail(what, self._consumed, decoded)
        if total < spec.HEP3_HEADER.size:
            self._fail(
                f"declared length {total} is shorter than the HEP3 header", self._consumed + 4, decoded
            )
        if len(self._buf) < total:
            return None
        frame = (self._consumed, bytes(self._buf[:total]))
        del self._buf[:total]
        self._consumed += total
        return frame

    def _fail(self, what: str, offset: int, decoded: list[HepPacket]) -> NoReturn:
        """The stream is out of step for good: nothing later on it can be read."""
        self._broken = HepStreamError(what, offset, decoded=decoded, fatal=True)
        raise self._broken
