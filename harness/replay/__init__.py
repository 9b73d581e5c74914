"""Captured SIP messages (pcap, pcapng, sofia siptrace, pasted text) and their refresh for replay."""
