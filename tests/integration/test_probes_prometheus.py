"""A real Prometheus (Debian's `prometheus` package) scraping the probe exporter in front of the
embedded model, with the shipped scrape configuration's relabelling; promtool on the shipped config and
rules (and the rules' own unit tests); every query of the shipped Grafana dashboard run against it.
Without Prometheus these tests skip with the reason (in CI a skip fails)."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from probe_helpers import ACL, CATALOG, REPO, ROUTED, dead_port, stack_file

from harness.lab.kamailio import free_ports
from harness.probes.server import ProbeExporter
from harness.probes.service import ProbeService
from harness.targets.kinds import open_target

SHIPPED = REPO / "docs" / "prometheus"
PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
MISSING = "Prometheus is not installed (Debian: apt-get install prometheus; it brings promtool)"
START_DEADLINE = 30.0
SERIES_DEADLINE = 30.0
POLL = 0.2  # Prometheus tells no one when a sample is ingested: its query API is asked again
FAILING = "unlisted_routes"
DOWN_TIMEOUT = 2.0
CONFIG = f"""
probes:
  {FAILING}:
    scenario: {ACL}
    params: {{expect: {{outcome: routed, never: []}}}}
"""

needs_prometheus = pytest.mark.skipif(PROMETHEUS is None or PROMTOOL is None, reason=MISSING)


@needs_prometheus
@pytest.mark.parametrize(
    "args",
    [
        ("check", "config", "prometheus.yml"),
        ("check", "rules", "alerts.yml"),
        ("test", "rules", "alerts.test.yml"),
    ],
    ids=["check-config", "check-rules", "test-rules"],
)
def test_promtool_accepts_the_shipped_files(args: tuple[str, str, str]) -> None:
    assert PROMTOOL is not None
    done = subprocess.run([PROMTOOL, *args], cwd=SHIPPED, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


class Prometheus:
    """A Prometheus of our own: free loopback port, private data directory, stopped by its PID."""

    def __init__(self, config: dict[str, Any], directory: Path) -> None:
        assert PROMETHEUS is not None
        (port,) = free_ports("127.0.0.1", 1)
        self.url = f"http://127.0.0.1:{port}"
        path = directory / "prometheus.yml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        self.log = (directory / "prometheus.log").open("w")
        self.process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={path}",
                f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_DEADLINE
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"prometheus exited: {self.process.returncode}"
            try:
                if requests.get(self.url + "/-/ready", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(POLL)
        raise AssertionError("prometheus did not become ready")

    def query(self, expr: str) -> list[dict[str, Any]]:
        answer = requests.get(self.url + "/api/v1/query", params={"query": expr}, timeout=10).json()
        assert answer["status"] == "success", (expr, answer)
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def until(self, expr: str, deadline: float = SERIES_DEADLINE) -> list[dict[str, Any]]:
        """The result of ``expr`` once it is not empty."""
        end = time.monotonic() + deadline
        while True:
            result = self.query(expr)
            if result or time.monotonic() > end:
                return result
            time.sleep(POLL)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.log.close()


def scrape_config(exporter: str, down_exporter: str) -> dict[str, Any]:
    """The shipped configuration, its relabelling kept, pointed at our exporters with fast scrapes."""
    shipped = yaml.safe_load((SHIPPED / "prometheus.yml").read_text(encoding="utf-8"))
    probe_job = next(j for j in shipped["scrape_configs"] if j["job_name"] == "kazoo_probe")
    own_job = next(j for j in shipped["scrape_configs"] if j["job_name"] == "kazoo_probe_exporter")

    def aimed(job: dict[str, Any], name: str, address: str, targets: list[str]) -> dict[str, Any]:
        job = copy.deepcopy(job)
        job["job_name"] = name
        job["static_configs"] = [{"targets": targets}]
        for rule in job.get("relabel_configs", []):
            if rule.get("target_label") == "__address__":
                rule["replacement"] = address
        return job

    own = copy.deepcopy(own_job)
    own["static_configs"] = [{"targets": [exporter]}]
    return {
        # 2 s: a failing probe waits a second for its missing log lines; the scrape timeout caps a probe
        "global": {"scrape_interval": "2s", "scrape_timeout": "2s", "evaluation_interval": "2s"},
        "rule_files": [str(SHIPPED / "alerts.yml")],
        "scrape_configs": [
            aimed(probe_job, "kazoo_probe", exporter, [ROUTED, ACL, FAILING]),
            aimed(probe_job, "kazoo_probe_down", down_exporter, [ROUTED]),
            own,
        ],
    }


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    if PROMETHEUS is None or PROMTOOL is None:
        pytest.skip(MISSING)
    directory = tmp_path_factory.mktemp("prometheus")
    config = directory / "probes.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    with (
        open_target("embedded") as target,
        open_target(str(stack_file(directory, dead_port())), reach=False) as down,
    ):
        service = ProbeService.load(target, config=config, catalog=CATALOG)
        down_service = ProbeService.load(down, catalog=CATALOG, timeout=DOWN_TIMEOUT)
        with (
            ProbeExporter(service, port=0).running() as exporter,
            ProbeExporter(down_service, port=0).running() as down_exporter,
        ):
            address = "{}:{}".format(*exporter.address)
            down_address = "{}:{}".format(*down_exporter.address)
            server = Prometheus(scrape_config(address, down_address), directory)
            try:
                server.wait_ready()
                yield server
            finally:
                server.stop()


def _one(result: list[dict[str, Any]]) -> float:
    assert len(result) == 1, result
    return float(result[0]["value"][1])


def test_a_routed_probe_in_prometheus(prometheus: Prometheus) -> None:
    selector = f'job="kazoo_probe", scenario="{ROUTED}"'
    assert _one(prometheus.until(f"probe_success{{{selector}}}")) == 1
    assert _one(prometheus.query(f"probe_sip_final_code{{{selector}}}")) == 200
    seen = prometheus.query(f'probe_log_line_seen{{{selector}, expected="present"}}')
    assert len(seen) == 3 and {float(s["value"][1]) for s in seen} == {1.0}
    assert _one(prometheus.query(f"probe_sip_final_seconds{{{selector}}}")) > 0
    labels = prometheus.query(f"probe_success{{{selector}}}")[0]["metric"]
    assert labels["instance"] == ROUTED  # the shipped relabelling: the probe names the instance
    assert {float(u["value"][1]) for u in prometheus.query('up{job="kazoo_probe"}')} == {1.0}


def test_the_acl_probe_in_prometheus(prometheus: Prometheus) -> None:
    selector = f'job="kazoo_probe", scenario="{ACL}"'
    assert _one(prometheus.until(f"probe_success{{{selector}}}")) == 1
    assert _one(prometheus.query(f"probe_sip_final_code{{{selector}}}")) == 407
    assert prometheus.query(f"probe_failure_cause{{{selector}}}") == []


def test_a_failing_probe_in_prometheus_names_the_cause(prometheus: Prometheus) -> None:
    selector = f'job="kazoo_probe", scenario="{FAILING}"'
    assert _one(prometheus.until(f"probe_success{{{selector}}}")) == 0
    cause = prometheus.until(f"probe_failure_cause{{{selector}}}")
    assert [c["metric"]["cause"] for c in cause] == ["acl"] and _one(cause) == 1


def test_a_down_stack_in_prometheus_is_probe_success_0_within_the_timeout(prometheus: Prometheus) -> None:
    selector = 'job="kazoo_probe_down"'
    assert _one(prometheus.until(f"probe_success{{{selector}}}")) == 0
    assert _one(prometheus.query(f'probe_error_info{{{selector}, reason="unreachable"}}')) == 1
    assert _one(prometheus.query(f"probe_duration_seconds{{{selector}}}")) < DOWN_TIMEOUT
    assert _one(prometheus.query(f"up{{{selector}}}")) == 1  # an answer, not a failed scrape


def _dashboard_queries() -> list[str]:
    dashboard = json.loads((SHIPPED / "grafana-dashboard.json").read_text(encoding="utf-8"))
    return [t["expr"] for p in dashboard["panels"] for t in p["targets"]]


def _grafana(expr: str) -> str:
    """A panel's query as Grafana sends it: its variables at All, its intervals."""
    expr = expr.replace("$__rate_interval", "1m").replace("$__range", "5m").replace("$__interval", "15s")
    return re.sub(r"\$(scenario|sbc)\b", ".*", expr)


def test_every_dashboard_query_runs_and_the_probe_panels_have_data(prometheus: Prometheus) -> None:
    prometheus.until('count_over_time(kazoo_harness_probes_total{job="kazoo_probe_exporter"}[1m]) >= 2')
    prometheus.until(f'probe_failure_cause{{scenario="{FAILING}"}}')
    empty = []
    for expr in _dashboard_queries():
        if not prometheus.query(_grafana(expr)):
            empty.append(expr)
    # only the "something is wrong" panels may be empty here: no forbidden line was seen, and the
    # exporter in front of the model met no error
    wrong = ('expected="absent"', "probe_error_info", "probe_errors_total")
    allowed_empty = [e for e in empty if any(w in e for w in wrong)]
    assert empty == allowed_empty, empty
