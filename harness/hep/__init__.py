"""HEP (Homer Encapsulation Protocol, also EEP), sans-I/O: bytes in, immutable packets out, bytes back.

``decode_packet`` reads one HEP v1, v2 or v3 packet, ``HepStreamDecoder`` frames HEP3 over TCP, and
``encode_v3`` / ``encode_v2`` write packets. The grammar is written once, in ``spec.py``; every error
is a :class:`HepError` with the byte offset where the problem was found. No sockets here: the receiver
is ``harness.logs.hep_source``.
"""

from harness.hep.decode import decode_packet, looks_like_hep
from harness.hep.encode import encode_v2, encode_v3
from harness.hep.errors import HepError, HepTruncated
from harness.hep.framing import HepStreamDecoder
from harness.hep.packet import Chunk, HepPacket

__all__ = [
    "Chunk",
    "HepError",
    "HepPacket",
    "HepStreamDecoder",
    "HepTruncated",
    "decode_packet",
    "encode_v2",
    "encode_v3",
    "looks_like_hep",
]
