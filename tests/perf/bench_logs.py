"""Benchmark: log line parsing, and how long a line written by the model takes to reach a LogHub.

Run: .venv/bin/python tests/perf/bench_logs.py [N]. Prints lines parsed per second and the median / p95
latency from LogBus write to the hub through the event socket and through a followed file. No assertion.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from harness.kazoo.logformat import fs_line, kamailio_line, kazoo_line, parse_line
from harness.logs.esl_source import EslSource
from harness.logs.file_source import FileSource
from harness.logs.hub import LogHub
from harness.logs.line import LogLine
from harness.logs.source import LogSource
from harness.model.esl_server import EslServer
from harness.model.logbus import LogBus, LogRecord


def bench_parse(n: int) -> None:
    samples = [
        fs_line(
            "WARNING", "sofia_reg.c", 1780, "SIP auth challenge (INVITE) from ip 127.0.0.66", call_id="c@h"
        ),
        kamailio_line("pipe", "WARNING", "dropping insane message from 127.0.0.66:5060", "c@h", pid=7),
        kazoo_line("info", "stepswitch_inbound", 80, "unable to determine account", call_id="c@h"),
        "some unrelated text that matches no format",
    ]
    started = time.perf_counter()
    for i in range(n):
        parse_line(samples[i % len(samples)])
    elapsed = time.perf_counter() - started
    print(f"parse_line: {n / elapsed:,.0f} lines/s ({len(samples)} formats mixed)")


def ends_with(marker: str) -> Callable[[LogLine], bool]:
    return lambda line: line.raw.endswith(marker)


async def bench_latency(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        bus = LogBus(Path(tmp), "pipe")
        server = EslServer(bus, "127.0.0.1", 0)
        await server.start()
        sources: list[LogSource] = [
            EslSource("127.0.0.1", server.port),
            FileSource(bus.path("kamailio"), "kamailio", poll_interval=0.01),
        ]
        async with LogHub(sources) as hub:
            writers: list[tuple[str, Callable[[int], LogRecord]]] = [
                ("event socket", lambda i: bus.freeswitch("NOTICE", "bench.c", 1, f"bench {i}")),
                ("file (10 ms poll)", lambda i: bus.kamailio("INFO", f"bench {i}")),
            ]
            for label, write in writers:
                delays = []
                for i in range(n):
                    marker = f"bench {i}"
                    sent = time.time()
                    write(i)
                    line = await hub.wait_for(ends_with(marker), sent, sent + 5)
                    if line is not None:
                        delays.append(line.received - sent)
                delays.sort()
                p95 = delays[int(len(delays) * 0.95) - 1] if delays else float("nan")
                print(
                    f"bus -> hub via {label}: median {statistics.median(delays) * 1000:.2f} ms, "
                    f"p95 {p95 * 1000:.2f} ms over {len(delays)}/{n} lines"
                )
        await server.stop()
        bus.close()


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    bench_parse(count * 100)
    asyncio.run(bench_latency(count))
