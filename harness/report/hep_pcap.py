"""The stack's captured legs of a call as a pcap of HEP3 datagrams, as a tcpdump on the collector's port
would have caught them: ``kazoo-harness replay`` reads it (the SBC's own view of the call, sent again),
and so does Wireshark with sipcapture's HEP dissector (the hep-wireshark Lua plugin: Wireshark 4.0 has
none built in). Each leg's packet is re-encoded by harness.hep's encoder,
which writes Kamailio's layout byte for byte; the datagram's time is when the harness received it."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.utils import PcapWriter

from harness.hep import encode_v3
from harness.logs.legs import Leg

LINKTYPE_ETHERNET = 1
COLLECTOR = ("127.0.0.1", 9060)  # where the datagrams are written to have gone (HEP's usual port)


def write_hep_pcap(legs: Iterable[Leg], path: str | Path, *, collector: tuple[str, int] = COLLECTOR) -> int:
    """Write the legs' HEP packets; returns how many. The agent's address is the packet's own peer."""
    count = 0
    with open(path, "wb") as out:
        writer = PcapWriter(out, linktype=LINKTYPE_ETHERNET, sync=False)
        for leg in legs:
            packet = leg.line.packet
            if packet is None:
                continue
            agent = leg.line.peer or ("127.0.0.1", 9)
            ip = IPv6(src=agent[0], dst="::1") if ":" in agent[0] else IP(src=agent[0], dst=collector[0])
            frame = Ether() / ip / UDP(sport=agent[1], dport=collector[1]) / encode_v3(packet)
            frame.time = leg.line.received
            writer.write(frame)
            count += 1
        if count == 0:  # an empty capture still needs its file header
            writer.write_header(None)
        writer.flush()
    return count


__all__ = ["write_hep_pcap"]
