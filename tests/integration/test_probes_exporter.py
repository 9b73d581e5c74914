"""The probe exporter over HTTP against real SIP stacks: the embedded model described by target files
(one permissive, one locked down as a production stack is), a stack that is down, one that swallows
every datagram. Each test says what broken code it catches."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from probe_helpers import ACL, CATALOG, ROUTED, dead_port, get, parse, scrape, silent_sbc, stack_file, value
from targets_helpers import model_target_file

from harness.kazoo.causes import Cause
from harness.model.stack import ModelConfig, RunningModel, start_model
from harness.probes.probe import BUSY, TIMEOUT, UNREACHABLE, Status
from harness.probes.server import SCRAPE_TIMEOUT_HEADER, ProbeExporter
from harness.probes.service import ProbeService
from harness.targets.kinds import open_target

SECRET = "esl-Pw-probe-4be1"  # the model's event-socket password, read by the target file from the env
SECRET_ENV = "T_PROBE_ESL_PW"
LOCKED = "allow_malformed = false\nallow_provisioning = false\nrate_limit = 4\n"
CONFIG = f"""
timeout: 5
probes:
  unlisted_routes:            # expects routed from a carrier the ACLs do not list: fails, cause acl
    scenario: {ACL}
    params: {{expect: {{outcome: routed, never: []}}}}
  no_cseq_built:              # builds a message without CSeq: no mutator, but the gate sees the defect
    scenario: {ROUTED}
    params: {{send: {{remove_headers: [CSeq]}}}}
  carrier_{SECRET}:           # a name that holds the secret: every output must mask it
    scenario: {ACL}
"""


@pytest.fixture(scope="module")
def model() -> Iterator[RunningModel]:
    running = start_model(
        ModelConfig(
            sbc_port=0, media_port=0, esl_port=0, couch_port=0, route_timeout=0.2, esl_password=SECRET
        )
    )
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def files(model: RunningModel, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("probe-targets")
    config = directory / "probes.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    dead = f'[[sbc]]\nname = "dead"\nhost = "127.0.0.1"\nport = {dead_port()}\n'
    return {
        "open": model_target_file(model, directory, name="open", esl_password_env=SECRET_ENV, extra=dead),
        "locked": model_target_file(
            model, directory, name="locked", safety=LOCKED, esl_password_env=SECRET_ENV
        ),
        "config": config,
    }


@pytest.fixture(scope="module")
def secret_env() -> Iterator[None]:
    mp = pytest.MonkeyPatch()
    mp.setenv(SECRET_ENV, SECRET)
    yield
    mp.undo()


def _exporter(target_file: Path, config: Path) -> Iterator[ProbeExporter]:
    with open_target(str(target_file)) as target:
        service = ProbeService.load(target, config=config, catalog=CATALOG)
        exporter = ProbeExporter(service, port=0)
        with exporter.running():
            yield exporter


@pytest.fixture(scope="module")
def open_exporter(files: dict[str, Path], secret_env: None) -> Iterator[ProbeExporter]:
    yield from _exporter(files["open"], files["config"])


@pytest.fixture(scope="module")
def locked_exporter(files: dict[str, Path], secret_env: None) -> Iterator[ProbeExporter]:
    yield from _exporter(files["locked"], files["config"])


def test_a_routed_probe_answers_every_series(open_exporter: ProbeExporter) -> None:
    """Catches: a wrong verdict, code or timing series, a log line left out or labelled by its regex."""
    response = get(open_exporter.url, "/probe", scenario=ROUTED)
    assert response.status_code == 200
    series = parse(response.text)
    assert value(series, "probe_success") == 1
    assert value(series, "probe_sip_final_code") == 200
    first = value(series, "probe_sip_first_provisional_seconds")
    final = value(series, "probe_sip_final_seconds")
    duration = value(series, "probe_duration_seconds")
    assert first is not None and final is not None and duration is not None
    assert 0 < first <= final <= duration
    present = {
        k: v for k, v in series.items() if k[0] == "probe_log_line_seen" and ("expected", "present") in k[1]
    }
    assert len(present) == 3 and set(present.values()) == {1.0}  # the routed outcome's three lines, all seen
    assert {dict(k[1])["source"] for k in present} == {"freeswitch", "kazoo"}
    assert value(series, "probe_expected_outcome_info", outcome="routed") == 1
    assert "probe_failure_cause" not in {k[0] for k in series}
    assert "won call control" not in response.text  # the pattern is an id, never the regex


def test_the_acl_scenario_succeeds_when_the_stack_rejects_the_unlisted_carrier(
    open_exporter: ProbeExporter,
) -> None:
    """Catches: probe_success taken from the SIP code instead of the scenario's verdict."""
    series = scrape(open_exporter.url, ACL)
    assert value(series, "probe_success") == 1
    assert value(series, "probe_sip_final_code") == 407
    assert value(series, "probe_expected_outcome_info", outcome="acl_rejected") == 1
    seen = {dict(k[1])["expected"]: v for k, v in series.items() if k[0] == "probe_log_line_seen"}
    assert seen == {"present": 1.0, "absent": 0.0}  # the challenge line seen, no new channel


def test_a_failed_expectation_names_the_cause(open_exporter: ProbeExporter) -> None:
    """Catches: a failure without probe_failure_cause, or a cause not diagnosed through the profile."""
    series = scrape(open_exporter.url, "unlisted_routes")
    assert value(series, "probe_success") == 0
    assert value(series, "probe_sip_final_code") == 407
    assert value(series, "probe_failure_cause", cause=Cause.ACL.value) == 1
    assert [k for k in series if k[0] == "probe_failure_cause"] == [
        ("probe_failure_cause", frozenset({("cause", "acl")}))
    ]
    assert "probe_error_info" not in {k[0] for k in series}
    routed_lines = [v for k, v in series.items() if k[0] == "probe_log_line_seen"]
    assert routed_lines and set(routed_lines) == {0.0}  # none of routed's lines appeared


def test_bad_requests_get_400_with_the_reason(open_exporter: ProbeExporter) -> None:
    """Catches: an unknown or ambiguous scenario or node run anyway, or answered with 500."""
    unknown = get(open_exporter.url, "/probe", scenario="no_such_scenario")
    assert unknown.status_code == 400 and "no scenario 'no_such_scenario'" in unknown.text
    ambiguous = get(open_exporter.url, "/probe", scenario="a routed call rings, answers and hangs up")
    assert ambiguous.status_code == 400 and ROUTED in ambiguous.text
    missing = get(open_exporter.url, "/probe")
    assert missing.status_code == 400 and "scenario=NAME" in missing.text
    node = get(open_exporter.url, "/probe", scenario=ACL, sbc="kam9")
    assert node.status_code == 400 and "no SBC node 'kam9'" in node.text and "sbc1" in node.text
    assert get(open_exporter.url, "/nothing-here").status_code == 404
    own = parse(get(open_exporter.url, "/metrics").text)
    refused = value(own, "kazoo_harness_probe_errors_total", reason="refused")
    assert refused is not None and refused >= 4


def test_sbc_picks_a_node_of_the_target_file(open_exporter: ProbeExporter) -> None:
    """Catches: sbc=NODE ignored (both answers would be the same node's)."""
    live = scrape(open_exporter.url, ACL, sbc="sbc1")
    assert value(live, "probe_success") == 1
    down = scrape(open_exporter.url, ACL, sbc="dead")
    assert value(down, "probe_success") == 0
    assert value(down, "probe_error_info", reason=UNREACHABLE) == 1
    assert value(down, "probe_sip_final_code") == 0


def test_a_busy_node_answers_busy_within_the_scrape_timeout(open_exporter: ProbeExporter) -> None:
    """Catches: a second probe run beside one holding the node's only slot, or waiting past its budget
    (the scrape's own timeout header caps it)."""
    service = open_exporter.service
    slot = service.request(ACL).slot
    with service.slots.hold(slot, time.monotonic() + 5):
        started = time.monotonic()
        response = get_with_header(open_exporter.url, ACL, {SCRAPE_TIMEOUT_HEADER: "1.0"})
        waited = time.monotonic() - started
    series = parse(response.text)
    assert response.status_code == 200
    assert value(series, "probe_success") == 0
    assert value(series, "probe_error_info", reason=BUSY) == 1
    duration = value(series, "probe_duration_seconds")
    assert duration is not None and 0.4 <= duration < 1.0  # waited its budget: 1.0 s less the margin
    assert waited < 5
    assert value(scrape(open_exporter.url, ACL), "probe_success") == 1  # the slot is free again


def get_with_header(url: str, scenario: str, headers: dict[str, str]) -> requests.Response:
    return requests.get(url + "/probe", params={"scenario": scenario}, headers=headers, timeout=30)


def test_concurrent_probes_against_one_node_take_turns(open_exporter: ProbeExporter) -> None:
    """Catches: the per-node cap not held (two calls at once on the stack)."""
    service = open_exporter.service
    barrier = threading.Barrier(2)
    results: list[tuple[float, float]] = []

    def probe() -> None:
        barrier.wait(timeout=10)
        result = service.probe(ROUTED)
        assert result.status == Status.SUCCESS, result.detail
        exchange = result.exchange
        assert exchange is not None
        results.append((exchange.events[0].wall, exchange.events[-1].wall))

    threads = [threading.Thread(target=probe) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(results) == 2
    (_, a_end), (b_start, _) = sorted(results)
    assert a_end <= b_start, f"the calls overlapped: {results}"


def test_a_stack_that_is_down_is_probe_success_0_not_an_error_page(tmp_path: Path) -> None:
    """Catches: an unreachable SBC answered with HTTP 500, or waited on until the timeout."""
    with open_target(str(stack_file(tmp_path, dead_port())), reach=False) as target:
        service = ProbeService.load(target, catalog=CATALOG, timeout=3)
        with ProbeExporter(service, port=0).running() as exporter:
            response = get(exporter.url, "/probe", scenario=ROUTED)
    assert response.status_code == 200
    series = parse(response.text)
    assert value(series, "probe_success") == 0
    assert value(series, "probe_error_info", reason=UNREACHABLE) == 1
    duration = value(series, "probe_duration_seconds")
    assert duration is not None and duration < 3


def test_a_stack_that_swallows_the_invite_ends_at_the_probe_timeout(tmp_path: Path) -> None:
    """Catches: a probe that outlives its timeout (the exchange alone would wait 5.6 s here)."""
    with (
        silent_sbc() as port,
        open_target(str(stack_file(tmp_path, port, name="silent")), reach=False) as target,
    ):
        service = ProbeService.load(target, catalog=CATALOG, timeout=1.0)
        with ProbeExporter(service, port=0).running() as exporter:
            started = time.monotonic()
            response = get(exporter.url, "/probe", scenario=ROUTED)
            elapsed = time.monotonic() - started
    series = parse(response.text)
    assert value(series, "probe_success") == 0
    assert value(series, "probe_error_info", reason=TIMEOUT) == 1
    duration = value(series, "probe_duration_seconds")
    assert duration is not None and 1.0 <= duration < 2.5
    assert elapsed < 3.0


def test_a_locked_target_refuses_malformed_and_setup_probes(locked_exporter: ProbeExporter) -> None:
    """Catches: a malformed or provisioning scenario sent to a stack that does not allow it — declared
    (mutators, setup) or only found in the bytes by the send gate (a header removed)."""
    mutated = get(locked_exporter.url, "/probe", scenario="an_invite_without_via_is_dropped")
    assert mutated.status_code == 400 and "allow_malformed" in mutated.text and "mutators" in mutated.text
    setup = get(
        locked_exporter.url, "/probe", scenario="number_only_in_to_routes_once_inbound_user_field_is_to"
    )
    assert setup.status_code == 400 and "allow_provisioning" in setup.text
    built = get(locked_exporter.url, "/probe", scenario="no_cseq_built")
    assert built.status_code == 400 and "allow_malformed" in built.text and "cseq" in built.text.lower()
    own = parse(get(locked_exporter.url, "/metrics").text)
    assert not [k for k in own if k[0] == "kazoo_harness_probes_total"]  # none of them ran


def test_a_config_probe_the_target_forbids_stops_the_start(
    files: dict[str, Path], tmp_path: Path, secret_env: None
) -> None:
    """Catches: a probe of the config that can never run on the target found only at 03:00."""
    config = tmp_path / "setup.yaml"
    config.write_text(
        "probes:\n  needs_setup:\n    scenario: a_busy_device_gives_486\n"
        "    params: {setup: {system_config: {stepswitch: {inbound_user_field: To}}}}\n",
        encoding="utf-8",
    )
    from harness.probes.probe import ProbeRefused

    with open_target(str(files["locked"])) as target, pytest.raises(ProbeRefused) as refused:
        ProbeService.load(target, config=config, catalog=CATALOG)
    assert f"{config}:2" in str(refused.value) and "allow_provisioning" in str(refused.value)


def test_the_target_rate_limit_paces_probes(locked_exporter: ProbeExporter) -> None:
    """Catches: probes sent around the target's gate (rate_limit = 4/s: INVITEs 0.25 s apart)."""
    service = locked_exporter.service
    starts = []
    for _ in range(2):
        result = service.probe(ACL)
        assert result.status == Status.SUCCESS, result.detail
        assert result.exchange is not None
        starts.append(result.exchange.events[0].wall)
    assert starts[1] - starts[0] >= 0.25 * 0.9


def test_secrets_never_reach_any_output(
    open_exporter: ProbeExporter, caplog: pytest.LogCaptureFixture
) -> None:
    """Catches: an output path that skips redaction — a 400 body echoing the request, the index, a
    label of /metrics, the debug text. The secret is real here: the model's event-socket password."""
    caplog.set_level("DEBUG", logger="harness.probes")
    bodies = [
        get(open_exporter.url, "/probe", scenario=SECRET),
        get(open_exporter.url, "/probe", scenario=ACL, sbc=SECRET),
        get(open_exporter.url, "/probe", scenario=f"carrier_{SECRET}"),
        get(open_exporter.url, "/probe", scenario=f"carrier_{SECRET}", debug="true"),
        get(open_exporter.url, "/"),
        get(open_exporter.url, "/metrics"),
    ]
    assert [b.status_code for b in bodies] == [400, 400, 200, 200, 200, 200]
    assert value(parse(bodies[2].text), "probe_success") == 1  # it ran: the secret is in its name only
    texts = [b.text for b in bodies] + [caplog.text]
    for text in texts:
        assert SECRET not in text
    assert "***" in bodies[0].text and "carrier_***" in bodies[4].text and "carrier_***" in bodies[5].text
    assert "probe carrier_***" in bodies[3].text
