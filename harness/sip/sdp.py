"""SDP offers, answers and a small parser (RFC 4566, RFC 3264, RTP/AVP payload types of RFC 3551)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from harness.sip.errors import SipParseError
from harness.sip.uri import bounded_int

DEFAULT_CODECS: tuple[str, ...] = ("PCMU", "PCMA", "telephone-event")

# RFC 3551 §6 static payload types (audio and video) the harness may meet.
STATIC_PAYLOADS: dict[int, tuple[str, int]] = {
    0: ("PCMU", 8000),
    3: ("GSM", 8000),
    4: ("G723", 8000),
    8: ("PCMA", 8000),
    9: ("G722", 8000),
    13: ("CN", 8000),
    18: ("G729", 8000),
    26: ("JPEG", 90000),
    31: ("H261", 90000),
    34: ("H263", 90000),
}
_STATIC_BY_NAME = {name.lower(): pt for pt, (name, _rate) in STATIC_PAYLOADS.items()}
# clock rates (and channels) of dynamic codecs the harness offers; anything else is written at 8000 Hz
_DYNAMIC_RATES = {"telephone-event": "8000", "opus": "48000/2", "vp8": "90000", "h264": "90000"}
TELEPHONE_EVENT_PT = 101

# The codecs Kazoo's FreeSWITCH accepts (kazoo-behaviour.md §4); anything else gets 488.
FREESWITCH_CODECS: tuple[str, ...] = (
    "OPUS",
    "VP8",
    "H263",
    "H264",
    "G7221@32000h",
    "G7221@16000h",
    "G722",
    "PCMU",
    "PCMA",
    "G729",
    "GSM",
    "Speex",
)


@dataclass(frozen=True)
class MediaDescription:
    """One ``m=`` section: ``formats`` are the payload types as written, ``rtpmap`` their
    ``a=rtpmap`` values (``"PCMU/8000"``), ``fmtp`` their ``a=fmtp`` parameters."""

    media: str
    port: int
    proto: str
    formats: tuple[str, ...]
    rtpmap: dict[str, str] = field(default_factory=dict)
    fmtp: dict[str, str] = field(default_factory=dict)
    connection: str | None = None
    attributes: tuple[str, ...] = ()

    def encoding(self, fmt: str) -> tuple[str, int | None]:
        """Codec name and clock rate of a payload type (rtpmap first, then the static table)."""
        if fmt in self.rtpmap:
            name, _, rest = self.rtpmap[fmt].partition("/")
            rate = rest.partition("/")[0]
            return name, bounded_int(rate, 2**32)
        pt = bounded_int(fmt, 127)
        if pt is not None and pt in STATIC_PAYLOADS:
            return STATIC_PAYLOADS[pt]
        return fmt, None

    @property
    def codec_names(self) -> list[str]:
        return [self.encoding(f)[0] for f in self.formats]


@dataclass(frozen=True)
class SessionDescription:
    origin: str | None
    connection: str | None  # session-level c= address
    media: tuple[MediaDescription, ...]

    def address(self, media: MediaDescription) -> str | None:
        """Where the media of ``media`` goes: its own c= line, else the session's."""
        return media.connection or self.connection

    @property
    def codec_names(self) -> list[str]:
        return [n for m in self.media for n in m.codec_names]


_LINE = re.compile(r"^([a-z])=(.*)$")
_MEDIA = re.compile(r"^(\S+) ([0-9]+)(?:/[0-9]+)? (\S+)((?: \S+)*)$")
_CONN = re.compile(r"^IN IP[46] (\S+)$")


@dataclass
class _MediaBuilder:
    media: str
    port: int
    proto: str
    formats: tuple[str, ...]
    rtpmap: dict[str, str] = field(default_factory=dict)
    fmtp: dict[str, str] = field(default_factory=dict)
    connection: str | None = None
    attributes: list[str] = field(default_factory=list)

    def attribute(self, value: str) -> None:
        name, _, rest = value.partition(":")
        if name in ("rtpmap", "fmtp"):
            fmt, _, params = rest.partition(" ")
            (self.rtpmap if name == "rtpmap" else self.fmtp)[fmt.strip()] = params.strip()
        self.attributes.append(value)

    def build(self) -> MediaDescription:
        return MediaDescription(
            self.media,
            self.port,
            self.proto,
            self.formats,
            self.rtpmap,
            self.fmtp,
            self.connection,
            tuple(self.attributes),
        )


def parse_sdp(data: bytes) -> SessionDescription:
    """Parse an SDP body; raise :class:`SipParseError` when it is not one."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SipParseError(f"SDP is not UTF-8: {exc.reason}", offset=exc.start) from exc
    lines = [ln for ln in re.split(r"\r?\n", text) if ln]
    if not lines or lines[0].strip() != "v=0":
        raise SipParseError("SDP does not start with v=0")
    origin: str | None = None
    session_conn: str | None = None
    media: list[_MediaBuilder] = []
    for number, line in enumerate(lines, 1):
        m = _LINE.match(line)
        if not m:
            raise SipParseError(f"bad SDP line {line[:60]!r}", line=number)
        kind, value = m.group(1), m.group(2).strip()
        if kind == "o":
            origin = value
        elif kind == "c":
            cm = _CONN.match(value)
            if not cm:
                raise SipParseError(f"bad SDP connection line {value[:60]!r}", line=number)
            if media:
                media[-1].connection = cm.group(1)
            else:
                session_conn = cm.group(1)
        elif kind == "m":
            mm = _MEDIA.match(value)
            port = bounded_int(mm.group(2), 65535) if mm else None
            if not mm or port is None:
                raise SipParseError(f"bad SDP media line {value[:60]!r}", line=number)
            formats = tuple(mm.group(4).split())
            media.append(_MediaBuilder(mm.group(1), port, mm.group(3), formats))
        elif kind == "a" and media:
            media[-1].attribute(value)
    return SessionDescription(origin, session_conn, tuple(b.build() for b in media))


def _ip_version(ip: str) -> str:
    return "IP6" if ":" in ip else "IP4"


def _payloads(codecs: Iterable[str]) -> list[tuple[int, str, str | None]]:
    """(payload type, rtpmap value, fmtp value) for each codec name, in order."""
    out: list[tuple[int, str, str | None]] = []
    next_dynamic = 96
    for codec in codecs:
        low = codec.lower()
        if low in _STATIC_BY_NAME:
            pt = _STATIC_BY_NAME[low]
            name, rate = STATIC_PAYLOADS[pt]
            out.append((pt, f"{name}/{rate}", None))
        elif low == "telephone-event":
            out.append((TELEPHONE_EVENT_PT, "telephone-event/8000", "0-16"))
        else:
            if next_dynamic == TELEPHONE_EVENT_PT:
                next_dynamic += 1
            out.append((next_dynamic, f"{codec}/{_DYNAMIC_RATES.get(low, '8000')}", None))
            next_dynamic += 1
    return out


def _render(ip: str, session_id: int, media_lines: Sequence[str]) -> bytes:
    ipv = _ip_version(ip)
    lines = [
        "v=0",
        f"o=kazoo-harness {session_id} {session_id} IN {ipv} {ip}",
        "s=kazoo-harness",
        f"c=IN {ipv} {ip}",
        "t=0 0",
        *media_lines,
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


def _audio_lines(rtp_port: int, payloads: Sequence[tuple[int | str, str, str | None]]) -> list[str]:
    lines = [f"m=audio {rtp_port} RTP/AVP " + " ".join(str(pt) for pt, _, _ in payloads)]
    for pt, rtpmap, _ in payloads:
        lines.append(f"a=rtpmap:{pt} {rtpmap}")
    for pt, _, fmtp in payloads:
        if fmtp is not None:
            lines.append(f"a=fmtp:{pt} {fmtp}")
    return [*lines, "a=ptime:20", "a=sendrecv"]


def make_offer(
    ip: str,
    rtp_port: int,
    codecs: Sequence[str] = DEFAULT_CODECS,
    session_id: int | None = None,
) -> bytes:
    """An audio offer: static payload types where RFC 3551 has one, telephone-event at 101
    (``a=fmtp:101 0-16``), other codecs dynamic from 96; ptime 20, sendrecv."""
    if not codecs:
        raise ValueError("an SDP offer needs at least one codec")
    sid = secrets.randbelow(2**31) if session_id is None else session_id
    return _render(ip, sid, _audio_lines(rtp_port, _payloads(codecs)))


def make_answer(
    offer: SessionDescription,
    ip: str,
    rtp_port: int,
    supported: set[str],
    session_id: int | None = None,
) -> bytes | None:
    """Answer the first audio stream of ``offer`` with the offered codecs in ``supported`` (offer order,
    offer's payload types); other streams are declined with port 0. None when no real codec is in common
    (telephone-event alone does not make a call)."""
    wanted = {c.lower() for c in supported}
    audio = next((m for m in offer.media if m.media == "audio" and m.port != 0), None)
    if audio is None:
        return None
    chosen: list[tuple[int | str, str, str | None]] = []
    for fmt in audio.formats:
        name, rate = audio.encoding(fmt)
        if name.lower() in wanted:
            rtpmap = audio.rtpmap.get(fmt) or f"{name}/{rate or 8000}"
            chosen.append((fmt, rtpmap, audio.fmtp.get(fmt)))
    if not any(not rtpmap.lower().startswith("telephone-event/") for _, rtpmap, _ in chosen):
        return None
    media_lines: list[str] = []
    for m in offer.media:
        if m is audio:
            media_lines += _audio_lines(rtp_port, chosen)
        else:  # RFC 3264 §6: a declined stream keeps its place with port 0
            media_lines.append(f"m={m.media} 0 {m.proto} {m.formats[0] if m.formats else '0'}")
    sid = secrets.randbelow(2**31) if session_id is None else session_id
    return _render(ip, sid, media_lines)


def _freeswitch_match(name: str, rate: int | None) -> bool:
    for entry in FREESWITCH_CODECS:
        fs_name, _, fs_rate = entry.partition("@")
        if fs_name.lower() != name.lower():
            continue
        if not fs_rate or rate is None or int(fs_rate.rstrip("h")) == rate:
            return True
    return False


def freeswitch_codecs_offered(offer: SessionDescription) -> list[str]:
    """The offered codec names that Kazoo's FreeSWITCH would accept (FREESWITCH_CODECS)."""
    out = []
    for m in offer.media:
        if m.port == 0:
            continue
        for fmt in m.formats:
            name, rate = m.encoding(fmt)
            if _freeswitch_match(name, rate):
                out.append(name)
    return out


def has_freeswitch_codec(offer: SessionDescription) -> bool:
    """True when the offer has a codec FreeSWITCH accepts; False means 488 (CODEC NEGOTIATION ERROR)."""
    return bool(freeswitch_codecs_offered(offer))
