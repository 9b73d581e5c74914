"""The pytest plugin (entry point `pytest11`): options, markers, fixtures and YAML scenario collection.

With no target given, one embedded Kazoo model is started per pytest session (per xdist worker) on free
loopback ports and stopped at the end. Scenario files are collected from `scenarios/**/*.yaml`.
"""

from __future__ import annotations

import json
import os
import random
import shlex
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.kazoo.profiles import DEFAULT_PROFILE, ProfileError, load_profile
from harness.kazoo.provision_fixture import kazoo_provision  # noqa: F401  (a fixture the plugin offers)
from harness.net.carrier import CarrierUA
from harness.progress import step
from harness.scenario.case import ScenarioCase, expand, load_cases
from harness.scenario.records import scenario_record
from harness.scenario.runner import ScenarioResult, ScenarioSetupError, run_case_sync
from harness.scenario.safety import check_destination, refusal
from harness.scenario.schema import SCENARIO, ScenarioError, check
from harness.scenario.target import Target, TargetError
from harness.scenario.targets import TargetStartError, open_target
from harness.sip.transaction import Timers

CAUSE_MARKERS = {
    "acl": "seed cause 1: the carrier's IP is not in the allowed list (ecallmgr ACLs)",
    "number_format": "seed cause 2: the dialed number is not in a form Kazoo understands",
    "number_mapping": "seed cause 3: the number is not mapped in the numbers database",
    "malformed": "seed cause 4: the INVITE is malformed, oversized or asks for unsupported features",
    "call_flow": "healthy call flows and the symptoms callers report",
}
INFRA_EXIT = 3
TARGET_KEY = pytest.StashKey[Target]()
SEED_KEY = pytest.StashKey[int]()
RESULTS_KEY = pytest.StashKey[list[dict[str, Any]]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kazoo-harness", "Kazoo SIP test harness")
    group.addoption(
        "--kazoo-target",
        dest="kazoo_target",
        default=None,
        help="what to test: 'embedded' (default: a Kazoo model started for the session), 'lab', 'docker', "
        "or a target file (TOML). ini: kazoo_target",
    )
    group.addoption(
        "--kazoo-profile",
        dest="kazoo_profile",
        default=None,
        help="expectation profile: kazoo-4.3 (default), kazoo-5, or a profile file. ini: kazoo_profile",
    )
    group.addoption(
        "--harness-seed",
        dest="harness_seed",
        default=None,
        type=int,
        help="seed for generated data (caller names, tags, branches); printed in the header so a run can be "
        "replayed. ini: harness_seed",
    )
    group.addoption(
        "--harness-json",
        dest="harness_json",
        default=None,
        help="write one JSON record per scenario to this file",
    )
    group.addoption(
        "--harness-html",
        dest="harness_html",
        default=None,
        help="write the harness's HTML report (failures first, ladders, log lines) to this file",
    )
    group.addoption(
        "--harness-pcap",
        dest="harness_pcap",
        default=None,
        help="write one pcap per scenario into this directory",
    )
    parser.addini("kazoo_target", "default for --kazoo-target", default="embedded")
    parser.addini("kazoo_profile", "default for --kazoo-profile", default=DEFAULT_PROFILE)
    parser.addini("harness_seed", "default for --harness-seed", default="")


def _option(config: pytest.Config, name: str) -> str:
    value = config.getoption(name)
    return str(value) if value is not None else str(config.getini(name))


def pytest_configure(config: pytest.Config) -> None:
    for cause, doc in CAUSE_MARKERS.items():
        config.addinivalue_line("markers", f"{cause}: {doc}")
    config.addinivalue_line("markers", "kazoo_4_3: runs only with a kazoo-4.3 profile")
    config.addinivalue_line("markers", "kazoo_5: runs only with a kazoo-5 profile")
    config.addinivalue_line("markers", "slow: takes more than a couple of seconds")
    config.addinivalue_line("markers", "scenario: a scenario from the YAML catalog")
    seed_text = _option(config, "harness_seed")
    worker_input = getattr(config, "workerinput", {})
    if "harness_seed" in worker_input:  # an xdist worker replays the controller's seed
        seed = int(worker_input["harness_seed"])
    elif seed_text.strip():
        seed = int(seed_text)
    elif os.environ.get("HARNESS_SEED", "").strip():
        seed = int(os.environ["HARNESS_SEED"])
    else:
        seed = random.randrange(10**6)
    config.stash[SEED_KEY] = seed
    config.stash[RESULTS_KEY] = []
    config.pluginmanager.register(_Recorder(config.stash[RESULTS_KEY]), "kazoo-harness-recorder")
    try:
        load_profile(_option(config, "kazoo_profile"))
    except ProfileError as exc:
        raise pytest.UsageError(str(exc)) from exc


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist: hand the session seed to every worker."""
    node.workerinput["harness_seed"] = node.config.stash[SEED_KEY]


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [
        f"kazoo-harness: target={_option(config, 'kazoo_target')} profile={_option(config, 'kazoo_profile')} "
        f"seed={config.stash[SEED_KEY]} (replay with --harness-seed {config.stash[SEED_KEY]})"
    ]


def session_target(config: pytest.Config) -> Target:
    """The session's target, started on first use."""
    if TARGET_KEY not in config.stash:
        profile = load_profile(_option(config, "kazoo_profile"))
        name = _option(config, "kazoo_target")
        started = time.monotonic()
        step(f"starting target {name} ({profile.name})")  # a lab or docker start takes a while
        try:
            config.stash[TARGET_KEY] = open_target(name, profile)
        except TargetError as exc:
            # raised while a test runs, so end the session rather than fail that one test
            pytest.exit(f"kazoo-harness: cannot use target: {exc}", returncode=pytest.ExitCode.USAGE_ERROR)
        except TargetStartError as exc:
            # infrastructure, not a scenario failure: a distinct exit status (kazoo-harness run: 3)
            pytest.exit(f"kazoo-harness: infrastructure error: {exc}", returncode=INFRA_EXIT)
        sbc = config.stash[TARGET_KEY].sbc
        step(f"target {name} ready in {time.monotonic() - started:.1f} s (SBC {sbc[0]}:{sbc[1]})")
    return config.stash[TARGET_KEY]


def pytest_unconfigure(config: pytest.Config) -> None:
    target = config.stash.get(TARGET_KEY, None)
    if target is not None:
        if target.close is not None:
            target.close()
        elif target.model is not None:
            target.model.stop()
    path = config.getoption("harness_json", None)
    if path and not hasattr(config, "workerinput"):
        Path(path).write_text(json.dumps(config.stash[RESULTS_KEY], indent=2) + "\n", encoding="utf-8")
    html = config.getoption("harness_html", None)
    if html and not hasattr(config, "workerinput"):
        from harness.report.html_report import write_html

        records: list[dict[str, Any]] = config.stash[RESULTS_KEY]
        write_html(records, html)


# -- fixtures: the same power from Python tests -----------------------------------------------------


@pytest.fixture(scope="session")
def kazoo(pytestconfig: pytest.Config) -> Target:
    """The target under test (embedded model unless --kazoo-target says otherwise)."""
    return session_target(pytestconfig)


@pytest.fixture
def carrier(kazoo: Target) -> Iterator[Callable[..., CarrierUA]]:
    """A factory of carrier UAs: ``carrier(role="listed", transport="udp")`` or ``carrier(address=...)``."""
    made: list[CarrierUA] = []

    def make(
        role: str | None = "listed",
        *,
        address: str | None = None,
        transport: str = "udp",
        port: int | None = None,
    ) -> CarrierUA:
        check_destination(kazoo, kazoo.sbc)  # the fixture's users send to the target's SBC
        ip, p = kazoo.carrier(role, address, port)
        ua = CarrierUA(ip, p, transport, timers=Timers(t1=0.5))
        made.append(ua)
        return ua

    yield make
    for ua in made:
        ua.close()


@pytest.fixture
def run_scenario(kazoo: Target, pytestconfig: pytest.Config) -> Callable[[dict[str, Any]], ScenarioResult]:
    """Run a scenario given as a dict (the YAML schema) and return its result; raise on a failed verdict."""

    def run(data: dict[str, Any], *, check_only: bool = False) -> ScenarioResult:
        node_data = dict(data)
        node_data.setdefault("description", node_data.get("name", "python scenario"))
        import yaml

        node = yaml.compose(yaml.safe_dump(node_data))
        assert node is not None
        checked = check(node, SCENARIO, "<python>", "")
        results = [
            run_case_sync(case, kazoo, session_seed=pytestconfig.stash[SEED_KEY])
            for case in expand(checked, Path("<python>"), 1)
        ]
        failed = [r for r in results if r.failures]
        if failed and not check_only:
            raise AssertionError(format_failure(failed[0], pytestconfig))
        return results[0]

    return run


@pytest.fixture
def sip_logs(kazoo: Target) -> Callable[[], Any]:
    """A factory of log hubs over the target's log sources: ``async with sip_logs() as hub: ...``."""
    from harness.logs.hub import LogHub
    from harness.scenario.runner import _log_sources

    return lambda: LogHub(_log_sources(kazoo))


# -- YAML collection --------------------------------------------------------------------------------


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    if file_path.suffix not in (".yaml", ".yml") or "scenarios" not in file_path.parts:
        return None
    if "targets" in file_path.parts or "profiles" in file_path.parts:
        return None
    return ScenarioFile.from_parent(parent, path=file_path)


class ScenarioFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        for case in load_cases(self.path):
            markers = [case.cause, "scenario", *case.markers]
            item = ScenarioItem.from_parent(self, name=case.test_id, case=case)
            for marker in markers:
                item.add_marker(marker)
            for release in case.releases:
                item.add_marker(release.replace("-", "_").replace(".", "_"))
            yield item

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ScenarioError):
            return f"scenario schema error: {excinfo.value}"
        return str(super().repr_failure(excinfo))


class ScenarioFailure(Exception):
    def __init__(self, result: ScenarioResult) -> None:
        super().__init__("scenario failed")
        self.result = result


class ScenarioItem(pytest.Item):
    def __init__(self, *, case: ScenarioCase, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.result: ScenarioResult | None = None

    def runtest(self) -> None:
        target = session_target(self.config)
        if self.case.targets and target.kind not in self.case.targets:
            pytest.skip(f"scenario runs on {', '.join(self.case.targets)} targets only, not {target.kind}")
        mutators = [str(m) for m in self.case.send.get("mutators") or []]
        reason = refusal(target, self.case.cause, oversized=any(m.startswith("pad") for m in mutators))
        if reason:
            pytest.skip(reason)
        try:
            self.result = run_case_sync(self.case, target, session_seed=self.config.stash[SEED_KEY])
        except ScenarioSetupError as exc:
            pytest.skip(str(exc))
        if self.result.skipped:
            pytest.skip(self.result.skipped)
        if self.result.failures:
            raise ScenarioFailure(self.result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ScenarioFailure):
            return format_failure(excinfo.value.result, self.config)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.case.line - 1, f"scenario: {self.case.name}"


def reproduce_command(case: ScenarioCase, config: pytest.Config) -> str:
    rel = os.path.relpath(case.path, config.rootpath) if case.path.is_absolute() else str(case.path)
    parts = ["pytest", f"{rel}::{case.test_id}"]
    target = _option(config, "kazoo_target")
    if target != "embedded":
        parts += ["--kazoo-target", target]
    parts += [
        "--kazoo-profile",
        _option(config, "kazoo_profile"),
        "--harness-seed",
        str(config.stash[SEED_KEY]),
    ]
    return shlex.join(parts)


def format_failure(result: ScenarioResult, config: pytest.Config) -> str:
    from harness.report.ladder import text_ladder

    case = result.case
    exp = result.expectation
    lines = [
        f"scenario {case.name!r} ({case.cause}) at {case.path}:{case.line}",
        f"  {case.description}",
        "",
        f"expected: {exp.describe()}"
        + (
            f"  (outcome {exp.outcome} from profile {config.getoption('kazoo_profile') or 'kazoo-4.3'})"
            if exp.outcome
            else ""
        ),
        f"got:      {result.got}",
        "",
        "failures:",
        *[f"  - {f}" for f in result.failures],
    ]
    if result.exchange is not None:
        lines += ["", "ladder:", text_ladder(result.exchange)]
    lines += ["", f"reproduce: {reproduce_command(case, config)}"]
    return "\n".join(lines)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if not isinstance(item, ScenarioItem) or call.when != "call":
        return report
    result = item.result
    record = scenario_record(item.case, result, report.outcome, reproduce_command(item.case, item.config))
    record["run"] = run_context(item.config)
    if result is not None and result.exchange is not None:
        _attach_html(report, result)
        pcap_dir = item.config.getoption("harness_pcap", None)
        if pcap_dir:
            from harness.report.pcap import write_pcap

            Path(pcap_dir).mkdir(parents=True, exist_ok=True)
            pcap = Path(pcap_dir).resolve() / f"{item.case.cause}-{item.case.test_id}.pcap"
            write_pcap([result.exchange], pcap)
            record["pcap"] = str(pcap)  # absolute: the HTML report links to it relative to itself
    report.user_properties.append(("harness_record", json.dumps(record)))
    return report


def run_context(config: pytest.Config) -> dict[str, Any]:
    """What every record says about the run it belongs to (the HTML report's header)."""
    target = config.stash.get(TARGET_KEY, None)
    return {
        "target": _option(config, "kazoo_target"),
        "profile": _option(config, "kazoo_profile"),
        "release": target.profile.release if target is not None else None,
        "seed": config.stash[SEED_KEY],
    }


def _attach_html(report: pytest.TestReport, result: ScenarioResult) -> None:
    try:
        from pytest_html import extras
    except ImportError:
        return
    from html import escape

    from harness.report.ladder import svg_ladder

    assert result.exchange is not None
    log_lines = result.logs.explain() if result.logs is not None else "(no log expectations)"
    html = f"<div>{svg_ladder(result.exchange)}</div><pre>{escape(log_lines)}</pre>"
    report.extras = [*getattr(report, "extras", []), extras.html(html)]  # type: ignore[attr-defined]


class _Recorder:
    """Collects every scenario's record (also from xdist workers, through the reports' user_properties)."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for key, value in report.user_properties:
            if key == "harness_record":
                self.records.append(json.loads(str(value)))
