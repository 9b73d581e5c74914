"""Metrics with prometheus_client: a fresh registry per probe (what one `GET /probe` answers, as
blackbox_exporter answers /probe) and the exporter's own registry (`GET /metrics`).

Every label value passes :func:`label`, which masks the target's secrets (harness.targets.redact): a
label is output too. Log lines are labelled by source and a short stable id, never by their regex.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from harness.probes.probe import ProbeResult, Status
from harness.probes.slots import NodeSlots
from harness.targets.redact import redact

# The series of one probe (docs/probes.md), by name: the shipped alerts and dashboard use these.
PROBE_SERIES = (
    "probe_success",
    "probe_duration_seconds",
    "probe_sip_final_code",
    "probe_sip_first_provisional_seconds",
    "probe_sip_final_seconds",
    "probe_log_line_seen",
    "probe_failure_cause",
    "probe_error_info",
    "probe_expected_outcome_info",
)
OWN = "kazoo_harness_probe"  # the exporter's own metrics: kazoo_harness_probe_...
ANY_SOURCE = "any"  # the source label of a pattern that may match in any log


def label(value: object, secrets: Sequence[str]) -> str:
    return redact(str(value), secrets)


def probe_registry(result: ProbeResult, secrets: Sequence[str] = ()) -> CollectorRegistry:
    """What one probe tells, as the series of a registry made for it."""
    registry = CollectorRegistry(auto_describe=True)

    def gauge(name: str, doc: str, labels: Iterable[str] = ()) -> Gauge:
        return Gauge(name, doc, labelnames=tuple(labels), registry=registry)

    gauge("probe_success", "1 when the scenario's verdict passed, 0 otherwise").set(int(result.success))
    gauge("probe_duration_seconds", "how long the probe took, waiting for a slot included").set(
        result.duration
    )
    gauge("probe_sip_final_code", "the final SIP response code (0: none)").set(result.final_code or 0)
    first = result.first_provisional_seconds
    if first is not None:
        gauge("probe_sip_first_provisional_seconds", "from the INVITE to the first 1xx").set(first)
    final = result.final_seconds
    if final is not None:
        gauge("probe_sip_final_seconds", "from the INVITE to the final response").set(final)
    if result.log_lines:
        lines = gauge(
            "probe_log_line_seen",
            "1 when the log line was seen; expected=present must be, expected=absent must not be",
            ("source", "line", "expected"),
        )
        for line in result.log_lines:
            lines.labels(label(line.source or ANY_SOURCE, secrets), line.id, line.expected).set(
                int(line.seen)
            )
    if result.status == Status.FAILED and result.diagnosis is not None:
        cause = gauge("probe_failure_cause", "the cause the profile names for the failed call", ("cause",))
        cause.labels(label(result.diagnosis.cause, secrets)).set(1)
    if result.status == Status.ERROR and result.reason is not None:
        Info("probe_error", "why the probe could not look at the stack", registry=registry).info(
            {"reason": label(result.reason, secrets)}
        )
    if result.expected_outcome is not None:
        Info("probe_expected_outcome", "the profile outcome the scenario expects", registry=registry).info(
            {"outcome": label(result.expected_outcome, secrets)}
        )
    return registry


class _InFlight(Collector):
    """Probes holding a slot of each node right now, read from the slots at scrape time."""

    def __init__(self, slots: NodeSlots) -> None:
        self.slots = slots

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            f"{OWN}s_in_flight", "probes running against each SBC node", labels=["node"]
        )
        for node, count in sorted(self.slots.in_flight().items()):
            family.add_metric([node], count)
        yield family


class ExporterMetrics:
    """The exporter's own metrics: probes run by result, errors by reason, probes in flight, durations,
    and the process (CPU, memory, open files)."""

    def __init__(self, slots: NodeSlots, secrets: Sequence[str] = ()) -> None:
        self.secrets = tuple(secrets)
        self.registry = CollectorRegistry(auto_describe=True)
        self.runs = Counter(
            f"{OWN}s",
            "probes run, by probe, SBC node and status",
            ("probe", "sbc", "status"),
            registry=self.registry,
        )
        self.errors = Counter(
            f"{OWN}_errors",
            "probes that could not run or look at the stack, by reason",
            ("reason",),
            registry=self.registry,
        )
        self.durations = Histogram(
            f"{OWN}_duration_seconds",
            "how long probes took",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.registry.register(_InFlight(slots))
        ProcessCollector(registry=self.registry)

    def observe(self, result: ProbeResult) -> None:
        self.runs.labels(
            label(result.probe, self.secrets), label(result.node or "", self.secrets), str(result.status)
        ).inc()
        self.durations.observe(result.duration)
        if result.reason is not None:
            self.errors.labels(result.reason).inc()

    def refused(self) -> None:
        self.errors.labels("refused").inc()

    def internal_error(self) -> None:
        self.errors.labels("internal").inc()
