"""The probe exporter's parts without a stack: the probes file, finding a scenario, the safety rules,
the per-node cap, a probe's series, the JSON of `probe once`, and the shipped alerts and dashboard
naming only series the exporter emits."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

import pytest
import yaml
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from harness.kazoo.causes import UNKNOWN, Cause
from harness.kazoo.profile import load_profile
from harness.net.exchange import Exchange, WireEvent
from harness.probes.catalog import Catalog, UnknownScenario
from harness.probes.config import load_config
from harness.probes.metrics import PROBE_SERIES, ExporterMetrics, probe_registry
from harness.probes.probe import BUSY, LogLineSeen, ProbeResult, Status
from harness.probes.safety import refusal
from harness.probes.slots import NodeBusy, NodeSlots
from harness.replay.cause import Diagnosis
from harness.scenario.case import ScenarioCase, with_overrides
from harness.scenario.runner import ScenarioResult
from harness.scenario.schema import context
from harness.sip.message import Response, parse_message
from harness.targets.target import SafetyPolicy, Target
from harness.yaml_schema import SchemaError

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "docs" / "prometheus"
PROFILE = load_profile()


def _case(
    name: str = "unlisted carrier is challenged", param: str | None = None, **fields: object
) -> ScenarioCase:
    return ScenarioCase(
        name=name,
        cause="acl",
        description="d",
        path=Path("x.yaml"),
        line=1,
        param_id=param,
        carrier={"role": "unlisted"},
        send={"number": "routed"},
        expect={"outcome": "acl_rejected", "never": ["answered"]},
        **fields,
    )


def _target(**policy: object) -> Target:
    return Target(
        name="t",
        kind="file",
        profile=PROFILE,
        sbc=("127.0.0.1", 5060),
        policy=SafetyPolicy(origin="t.toml [safety]", **policy),
    )


# -- the probes file ------------------------------------------------------------------------------


def test_the_shipped_example_config_loads() -> None:
    config = load_config(SHIPPED / "probes.example.yaml", context(["freeswitch", "kamailio", "kazoo"]))
    assert config.catalog == SHIPPED / "../../scenarios"
    assert (config.timeout, config.concurrency) == (10.0, 1)
    assert config.probes["carrier_x_routes"].timeout == 8.0
    assert config.probes["carrier_y_routes"].params == {"carrier": {"role": "listed_cidr"}}
    assert config.probes["carrier_y_routes"].where.endswith("probes.example.yaml:20")


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("probes:\n  p:\n    scenario: x\n    retries: 3\n", "4: probes.p.retries: unknown field"),
        ("probes:\n  p:\n    scenario: x\n    timeout: 0\n", "4: probes.p.timeout: must be greater than 0"),
        ("concurrency: -1\n", "1: concurrency: must be greater than 0"),
        ("probes:\n  p:\n    params: {}\n", "3: probes.p: missing required field 'scenario'"),
        (
            "probes:\n  p:\n    scenario: x\n    params:\n      expect:\n        logs:\n          present:\n"
            "            - {source: syslog, pattern: x}\n",
            "8: probes.p.params.expect.logs.present[0].source",
        ),
    ],
)
def test_config_errors_name_file_line_and_field(tmp_path: Path, text: str, where: str) -> None:
    path = tmp_path / "probes.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SchemaError) as error:
        load_config(path, context(["freeswitch", "kazoo"]))
    assert str(error.value).startswith(f"{path}:{where}")


# -- finding a scenario ---------------------------------------------------------------------------


def test_a_scenario_is_found_by_test_id_name_or_slug() -> None:
    catalog = Catalog.of([_case(), _case("a routed call", "udp"), _case("a routed call", "tcp")])
    assert catalog.find("unlisted_carrier_is_challenged").name == "unlisted carrier is challenged"
    assert catalog.find("unlisted carrier is challenged").test_id == "unlisted_carrier_is_challenged"
    assert catalog.find("a_routed_call[tcp]").param_id == "tcp"
    with pytest.raises(
        UnknownScenario, match=r"has 2 cases; name one: a_routed_call\[udp\], a_routed_call\[tcp\]"
    ):
        catalog.find("a routed call")
    with pytest.raises(UnknownScenario, match="no scenario 'nothing'"):
        catalog.find("nothing")
    with pytest.raises(UnknownScenario, match="two scenarios have the test id"):
        Catalog.of([_case(), _case()])


def test_the_repository_catalog_loads_with_unique_ids() -> None:
    catalog = Catalog.load(REPO / "scenarios")
    assert len(catalog.cases) > 50
    assert "unlisted_carrier_is_challenged" in catalog.cases


def test_a_probe_merges_its_params_over_the_scenario() -> None:
    probe = with_overrides(
        _case(), {"carrier": {"address": "127.0.0.77"}, "expect": {"outcome": "routed"}}, "carrier_x"
    )
    assert probe.test_id == "unlisted_carrier_is_challenged[carrier_x]"
    assert probe.carrier == {"role": "unlisted", "address": "127.0.0.77"}
    assert probe.expect == {"outcome": "routed", "never": ["answered"]}
    assert probe.send == {"number": "routed"}


# -- the safety rules -----------------------------------------------------------------------------


def test_unsafe_scenarios_are_refused_unless_the_target_allows_them() -> None:
    locked = _target(allow_malformed=False, allow_provisioning=False)
    assert refusal(_case(), locked) is None
    mutated = with_overrides(_case(), {"send": {"mutators": ["drop-header=CSeq"]}}, "m")
    raw = with_overrides(_case(), {"send": {"raw": "INVITE ..."}}, "r")
    setup = with_overrides(_case(), {"setup": {"media": "down"}}, "s")
    assert "send.mutators" in (refusal(mutated, locked) or "")
    assert "allow_malformed" in (refusal(raw, locked) or "")
    assert "allow_provisioning" in (refusal(setup, locked) or "") and "t.toml [safety]" in (
        refusal(setup, locked) or ""
    )
    permissive = _target()
    assert [refusal(c, permissive) for c in (mutated, raw, setup)] == [None, None, None]


# -- the per-node cap -----------------------------------------------------------------------------


def test_the_node_cap_lets_cap_probes_in_and_makes_the_next_wait_until_its_deadline() -> None:
    slots = NodeSlots(2)
    far = time.monotonic() + 5
    with slots.hold("a", far), slots.hold("a", far):
        assert slots.in_flight() == {"a": 2}
        with slots.hold("b", far):  # another node has its own slots
            assert slots.in_flight() == {"a": 2, "b": 1}
        with pytest.raises(NodeBusy), slots.hold("a", time.monotonic() + 0.05):
            pass
    assert slots.in_flight() == {"a": 0, "b": 0}


def test_a_waiting_probe_gets_the_slot_the_moment_it_is_released() -> None:
    slots = NodeSlots(1)
    released = threading.Event()
    got: list[bool] = []

    def second() -> None:
        with slots.hold("a", time.monotonic() + 5):
            got.append(released.is_set())

    with slots.hold("a", time.monotonic() + 5):
        waiter = threading.Thread(target=second)
        waiter.start()
        released.set()
    waiter.join(timeout=5)
    assert got == [True]


# -- a probe's series -----------------------------------------------------------------------------


def _exchange(*lines: tuple[float, str]) -> Exchange:
    exchange = Exchange("c1@x", "INVITE", "udp", ("127.0.0.66", 5070), ("127.0.0.1", 5060), time.time())
    exchange.events.append(
        WireEvent(
            "sent", 0.01, 0, ("127.0.0.66", 5070), ("127.0.0.1", 5060), "udp", b"INVITE sip:x SIP/2.0\r\n\r\n"
        )
    )
    for t, first in lines:
        data = f"{first}\r\nCall-ID: c1@x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n".encode()
        exchange.events.append(
            WireEvent("received", t, 0, ("127.0.0.1", 5060), ("127.0.0.66", 5070), "udp", data)
        )
        message = parse_message(data)
        assert isinstance(message, Response)
        if message.code >= 200:
            exchange.final, exchange.outcome = message, "response"
        else:
            exchange.provisional.append(message)
    return exchange


def _result(status: Status, exchange: Exchange | None = None, **fields: object) -> ProbeResult:
    scenario = ScenarioResult(_case(), None, exchange) if exchange is not None else None
    return ProbeResult("p", None, status, 0.25, _case(), scenario=scenario, **fields)


def _series(
    result: ProbeResult, secrets: tuple[str, ...] = ()
) -> tuple[str, dict[tuple[str, frozenset[tuple[str, str]]], float]]:
    text = generate_latest(probe_registry(result, secrets)).decode()
    series = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            series[(s.name, frozenset(s.labels.items()))] = s.value
    return text, series


def test_a_failed_probe_has_its_codes_timings_lines_and_cause() -> None:
    exchange = _exchange((0.02, "SIP/2.0 100 Trying"), (0.06, "SIP/2.0 407 Proxy Authentication Required"))
    lines = (
        LogLineSeen("ab12", "freeswitch", "present", False, "won call control"),
        LogLineSeen("cd34", None, "absent", True, "voicemail"),
    )
    result = _result(Status.FAILED, exchange, diagnosis=Diagnosis(Cause.ACL, "acl_rejected"), log_lines=lines)
    text, series = _series(result)
    assert series[("probe_success", frozenset())] == 0
    assert series[("probe_duration_seconds", frozenset())] == 0.25
    assert series[("probe_sip_final_code", frozenset())] == 407
    assert series[("probe_sip_first_provisional_seconds", frozenset())] == pytest.approx(0.01)
    assert series[("probe_sip_final_seconds", frozenset())] == pytest.approx(0.05)
    assert series[("probe_failure_cause", frozenset({("cause", "acl")}))] == 1
    line = frozenset({("source", "freeswitch"), ("line", "ab12"), ("expected", "present")})
    assert series[("probe_log_line_seen", line)] == 0
    anywhere = frozenset({("source", "any"), ("line", "cd34"), ("expected", "absent")})
    assert series[("probe_log_line_seen", anywhere)] == 1
    assert "won call control" not in text and "voicemail" not in text
    assert "probe_error_info" not in text


def test_a_probe_that_could_not_run_has_the_reason_and_no_cause() -> None:
    _, series = _series(_result(Status.ERROR, reason=BUSY, diagnosis=Diagnosis(UNKNOWN, None)))
    assert series[("probe_success", frozenset())] == 0
    assert series[("probe_error_info", frozenset({("reason", "busy")}))] == 1
    assert series[("probe_sip_final_code", frozenset())] == 0
    assert not [k for k in series if k[0] in ("probe_failure_cause", "probe_sip_final_seconds")]


def test_a_passing_probe_has_no_cause_and_labels_mask_secrets() -> None:
    exchange = _exchange((0.03, "SIP/2.0 200 OK"))
    lines = (LogLineSeen("ef56", "fs-s3cr3t", "present", True, "x"),)
    text, series = _series(_result(Status.SUCCESS, exchange, log_lines=lines), secrets=("s3cr3t",))
    assert series[("probe_success", frozenset())] == 1
    assert "probe_sip_first_provisional_seconds" not in text  # no 1xx: no series, not a zero
    assert (
        "probe_log_line_seen",
        frozenset({("source", "fs-***"), ("line", "ef56"), ("expected", "present")}),
    ) in series
    assert "s3cr3t" not in text and "probe_failure_cause" not in text


def test_once_json_is_stable() -> None:
    exchange = _exchange((0.02, "SIP/2.0 100 Trying"), (0.06, "SIP/2.0 407 Proxy Authentication Required"))
    result = _result(Status.FAILED, exchange, diagnosis=Diagnosis(Cause.ACL, "acl_rejected"))
    data = json.loads(json.dumps(result.to_json()))
    assert data["status"] == "failed" and data["success"] is False
    assert (data["cause"], data["observed_outcome"], data["final_code"]) == ("acl", "acl_rejected", 407)
    assert data["scenario"] == "unlisted_carrier_is_challenged" and data["call_id"] == "c1@x"
    assert set(data) >= {
        "probe",
        "sbc",
        "reason",
        "expected",
        "got",
        "duration_seconds",
        "first_provisional_seconds",
        "final_seconds",
        "log_lines",
        "failures",
    }


# -- the shipped alerts and dashboard -------------------------------------------------------------

PROMQL_WORDS = {
    "sum",
    "by",
    "without",
    "count_over_time",
    "avg_over_time",
    "rate",
    "humanizeDuration",
    "on",
    "bool",
    "label_values",
    "and",
    "or",
    "unless",
    "ignoring",
    "group_left",
    "group_right",
}


def _metric_names(expr: str) -> set[str]:
    expr = re.sub(r'"[^"]*"', '""', expr)  # label values
    expr = re.sub(r"\{[^}]*\}", "{}", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "[]", expr)  # ranges
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr))
    return {w for w in words - PROMQL_WORDS if not w.startswith("__")} - {
        "scenario",
        "sbc",
        "cause",
        "reason",
        "status",
    }


def _own_series() -> set[str]:
    slots = NodeSlots(1)
    metrics = ExporterMetrics(slots)
    metrics.observe(_result(Status.ERROR, reason=BUSY))
    with slots.hold("127.0.0.1:5060", time.monotonic() + 1):
        text = generate_latest(metrics.registry).decode()
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


def test_the_shipped_alerts_and_dashboard_name_only_series_the_exporter_emits() -> None:
    known = set(PROBE_SERIES) | _own_series() | {"up"}
    rules = yaml.safe_load((SHIPPED / "alerts.yml").read_text(encoding="utf-8"))
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    dashboard = json.loads((SHIPPED / "grafana-dashboard.json").read_text(encoding="utf-8"))
    exprs += [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs += [v["definition"] for v in dashboard["templating"]["list"]]
    used = set().union(*(_metric_names(e) for e in exprs))
    assert used - known == set()
    assert {"probe_success", "probe_failure_cause", "probe_error_info", "probe_duration_seconds"} <= used
