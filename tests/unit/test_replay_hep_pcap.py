"""`replay` reads a HEP stream saved to a file: pcaps of the HEP packets Kamailio 5.6 sent (hep_samples)
to a collector on port 9060, as datagrams (HEP3, HEP v2) and as HEP3 over TCP, also joined mid-stream.
What comes out are the captured SIP messages with the addresses, transport and time the HEP packets
name, not the HEP datagrams' own."""

from __future__ import annotations

from pathlib import Path

import hep_samples as kamailio
from replay_frames import LINKTYPE_ETHERNET, ether, ipv4, tcp, udp, write_pcap

from harness.hep import decode_packet
from harness.replay.capture import find_invites, read_messages
from harness.replay.source import load_source, pick_invite

AGENT, COLLECTOR = ("127.0.0.1", 40000), ("127.0.0.2", 9060)


def hep_udp(datagrams: list[bytes]) -> list[bytes]:
    return [ether(ipv4(AGENT[0], COLLECTOR[0], 17, udp(AGENT[1], COLLECTOR[1], d))) for d in datagrams]


def hep_tcp(chunks: list[bytes], *, syn: bool = True, seq: int = 1000) -> list[bytes]:
    frames = (
        [ether(ipv4(AGENT[0], COLLECTOR[0], 6, tcp(AGENT[1], COLLECTOR[1], seq - 1, flags=0x02)))]
        if syn
        else []
    )
    for chunk in chunks:
        frames.append(ether(ipv4(AGENT[0], COLLECTOR[0], 6, tcp(AGENT[1], COLLECTOR[1], seq, chunk))))
        seq += len(chunk)
    return frames


def test_hep3_datagrams_give_the_captured_messages(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "hep.pcap", LINKTYPE_ETHERNET, hep_udp(kamailio.HEP3_UDP))
    messages = read_messages(path)
    packets = [decode_packet(d) for d in kamailio.HEP3_UDP]
    assert [m.data for m in messages] == [p.payload for p in packets]
    assert [(m.src, m.dst, m.transport, m.time) for m in messages] == [
        (p.src, p.dst, "udp", p.timestamp) for p in packets
    ]
    invite = messages[2]
    assert invite.src[0] == kamailio.CARRIER and invite.dst[0] == kamailio.SBC


def test_hep_v2_datagrams_and_a_tcp_stream_in_any_order(tmp_path: Path) -> None:
    frames = hep_udp(kamailio.HEP2_UDP)
    stream = hep_tcp(kamailio.HEP3_TCP_CHUNKS)
    frames += [stream[0], stream[2], stream[1], *stream[3:]]  # a segment overtaken by the next
    messages = read_messages(write_pcap(tmp_path / "mixed.pcap", LINKTYPE_ETHERNET, frames))
    v2 = [decode_packet(d).payload for d in kamailio.HEP2_UDP]
    streamed = [p.payload for chunk in kamailio.HEP3_TCP_CHUNKS for p in _packets(chunk)]
    assert [m.data for m in messages[: len(v2)]] == v2
    assert sorted(m.data for m in messages[len(v2) :]) == sorted(streamed)


def test_a_tcp_stream_joined_mid_connection_picks_up_at_a_packet(tmp_path: Path) -> None:
    cut = kamailio.HEP3_TCP_CHUNKS[1][10:]  # the capture began inside a packet
    frames = hep_tcp([cut, *kamailio.HEP3_TCP_CHUNKS[2:]], syn=False)
    messages = read_messages(write_pcap(tmp_path / "late.pcap", LINKTYPE_ETHERNET, frames))
    later = [p.payload for chunk in kamailio.HEP3_TCP_CHUNKS[2:] for p in _packets(chunk)]
    assert [m.data for m in messages] == later  # the cut packet is lost, none after it


def test_replay_picks_the_carriers_invite_of_a_call(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "hep.pcap", LINKTYPE_ETHERNET, hep_udp(kamailio.HEP3_UDP))
    capture = load_source(str(path))
    assert capture.kind == "pcap"
    invites = find_invites(capture.messages)
    call_ids = {
        decode_packet(kamailio.HEP3_UDP[i]).payload.split(b"Call-ID: ")[1].split(b"\r")[0] for i in (2, 5)
    }
    assert len(call_ids) == 2 and len(invites) >= 3  # two calls; the relayed copy is an INVITE too
    first_call = call_ids.pop().decode()
    chosen = pick_invite(capture, first_call)
    assert chosen.src[0] == kamailio.CARRIER  # the carrier's own INVITE, not the SBC's relayed copy


def _packets(chunk: bytes) -> list:  # type: ignore[type-arg]
    """The HEP3 packets of one recorded stream chunk (each chunk holds whole packets)."""
    from harness.hep import HepStreamDecoder

    return HepStreamDecoder().feed(chunk)


def test_the_stacks_legs_written_as_a_hep_pcap_read_back_and_replayable(tmp_path: Path) -> None:
    from scapy.layers.inet import UDP
    from scapy.utils import rdpcap

    from harness.logs.hep_source import hep_line
    from harness.logs.legs import Roles, legs_of
    from harness.net.exchange import Exchange
    from harness.report.hep_pcap import write_hep_pcap

    packets = [decode_packet(d) for d in kamailio.HEP3_UDP]
    invite = packets[2]
    assert invite.src is not None and invite.dst is not None
    call_id = invite.payload.split(b"Call-ID: ")[1].split(b"\r\n")[0].decode()
    lines = [hep_line("sbc-capture", p, ("127.0.0.1", 40000), p.timestamp or 0.0) for p in packets]
    exchange = Exchange(call_id, "INVITE", "udp", invite.src, invite.dst, invite.timestamp or 0.0)
    legs = legs_of(lines, exchange, Roles(invite.src, frozenset({invite.dst})))
    path = tmp_path / "call.hep.pcap"
    assert (
        write_hep_pcap(legs, path) == len(legs) == 5
    )  # the call's packets, not the OPTIONS or the other call
    datagrams = [bytes(p[UDP].payload) for p in rdpcap(str(path))]
    assert datagrams == [
        d for d in kamailio.HEP3_UDP if decode_packet(d) in [leg.line.packet for leg in legs]
    ]
    assert pick_invite(load_source(str(path))).data == invite.payload
