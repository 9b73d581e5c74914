"""Benchmark (prints figures, asserts nothing): what one scrape of the probe exporter costs.

    .venv/bin/python tests/perf/bench_probes.py [--runs 50]

Starts the embedded model and the exporter in this process, then `--runs` sequential
`GET /probe?scenario=...` for three probes of the catalog — an OPTIONS ping, the ACL challenge (407)
and a routed call (INVITE, 200, ACK, BYE) — and prints the HTTP round trip (median, p95) and the
`probe_duration_seconds` the exporter reports, as a scrape costs it end to end.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from harness.probes.server import ProbeExporter
from harness.probes.service import ProbeService
from harness.targets.kinds import open_target

ROOT = Path(__file__).resolve().parents[2]
PROBES = (
    "options_ping_is_answered[sbc]",
    "unlisted_carrier_is_challenged",
    "a_routed_call_rings_answers_and_hangs_up[udp]",
)


def _duration(text: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "probe_duration_seconds":
                return float(sample.value)
    raise AssertionError("no probe_duration_seconds in the answer")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    with open_target("embedded") as target:
        service = ProbeService.load(target, catalog=ROOT / "scenarios")
        with ProbeExporter(service, port=0).running() as exporter, requests.Session() as http:
            print(f"probe exporter in front of the embedded model: {args.runs} sequential scrapes per probe")
            for name in PROBES:
                trips, reported = [], []
                for _ in range(args.runs):
                    started = time.perf_counter()
                    answer = http.get(exporter.url + "/probe", params={"scenario": name}, timeout=30)
                    trips.append((time.perf_counter() - started) * 1000)
                    assert answer.status_code == 200 and "probe_success 1.0" in answer.text, answer.text
                    reported.append(_duration(answer.text) * 1000)
                p95 = statistics.quantiles(trips, n=20)[18]
                print(
                    f"{name}: HTTP round trip median {statistics.median(trips):.1f} ms, p95 {p95:.1f} ms; "
                    f"probe_duration_seconds median {statistics.median(reported):.1f} ms"
                )


if __name__ == "__main__":
    main()
