"""Inbound-call probes for Prometheus: one catalog scenario (or a probe of the config) run against the
target on request, answered as metrics in the multi-target (blackbox) style.

Layout: config.py (probes.yaml), catalog.py (finding a scenario by test id or name), safety.py (what a
target lets a probe do), slots.py (the per-node concurrency cap), probe.py (run one probe: ProbeResult),
service.py (request -> probe, shared by `probe once` and `probe serve`), metrics.py (a probe's registry
and the exporter's own), server.py (the HTTP exporter). docs/probes.md says what a scrape returns.
"""
