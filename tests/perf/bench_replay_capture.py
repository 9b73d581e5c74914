"""Prints how fast the pcap writer and the capture reader go (messages per second). Not a test.

Run: .venv/bin/python tests/perf/bench_replay_capture.py [exchanges]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from report_samples import rejected_exchange

from harness.replay.capture import read_messages
from harness.report.pcap import write_pcap


def main(n: int) -> None:
    xs = [
        rejected_exchange("udp" if i % 2 else "tcp", call_id=f"bench-{i}", local=("127.0.0.10", 10000 + i))
        for i in range(n)
    ]
    messages = sum(len(x.events) for x in xs)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "bench.pcap"
        t0 = time.perf_counter()
        packets = write_pcap(xs, path)
        t1 = time.perf_counter()
        got = read_messages(path)
        t2 = time.perf_counter()
    assert len(got) == messages
    print(
        f"write_pcap: {messages} messages / {packets} packets in {t1 - t0:.2f} s "
        f"({messages / (t1 - t0):,.0f} messages/s)"
    )
    print(f"read_messages: {packets} packets in {t2 - t1:.2f} s ({packets / (t2 - t1):,.0f} packets/s)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
