"""The pytest plugin (entry point `pytest11`): options, markers, fixtures and YAML scenario collection.

The target under test is the session fixture ``kazoo``: opened on first use (with no target given, an
embedded Kazoo model on free loopback ports, one per pytest session or xdist worker) and closed by the
fixture's teardown. YAML scenarios are pytest Functions that take it like any test does. Scenario files
are collected wherever they are: any YAML file holding scenarios (`name`, `send`, `expect`, or a
`scenarios:` list); their schema is checked against what the target is known to have (its log sources).
"""

from __future__ import annotations

import json
import os
import random
import shlex
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, cast

import pytest

from harness.kazoo.causes import CALL_FLOW, CALL_FLOW_TITLE, GUIDE
from harness.kazoo.profile import Profile, ProfileError
from harness.kazoo.provision import Provisioner
from harness.kazoo.release import RELEASES
from harness.kazoo_sbc.releases import CONFIG_ENV as SBC_CONFIG_ENV
from harness.load.pytest_load import MARKER as LOAD_MARKER
from harness.load.pytest_load import load_items, load_runner
from harness.load.run import LoadResult
from harness.net.carrier import CarrierUA
from harness.net.gate import SendRefused
from harness.progress import step
from harness.scenario.case import ScenarioCase, expand, load_cases
from harness.scenario.records import scenario_record
from harness.scenario.runner import ScenarioResult, run_case_sync
from harness.scenario.schema import check_scenario, context, is_scenario_file
from harness.sip.transaction import Timers
from harness.targets.kinds import TargetRef, choose_profile, resolve
from harness.targets.target import Target, TargetError, TargetStartError
from harness.yaml_schema import SchemaError

INFRA_EXIT = 3
SEED_KEY = pytest.StashKey[int]()
REF_KEY = pytest.StashKey[TargetRef]()
PROFILE_KEY = pytest.StashKey[Profile]()
RESULTS_KEY = pytest.StashKey[list[dict[str, Any]]]()
CONTEXT_KEY = pytest.StashKey[dict[str, Any]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kazoo-harness", "Kazoo SIP test harness")
    group.addoption(
        "--kazoo-target",
        dest="kazoo_target",
        default=None,
        help="what to test: 'embedded' (default: a Kazoo model started for the session), 'lab', 'docker', "
        "'kazoo-sbc' (Kazoo's own Kamailio configuration), 'model', HOST:PORT, or a target file (TOML). "
        "ini: kazoo_target",
    )
    group.addoption(
        "--kazoo-profile",
        dest="kazoo_profile",
        default=None,
        help=f"expectation profile: {', '.join(RELEASES)} or a profile file (default: the target file's, "
        f"else {next(iter(RELEASES))}). ini: kazoo_profile",
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
        "--harness-json", dest="harness_json", default=None, help="write one JSON record per scenario here"
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
    group.addoption(
        "--kazoo-sbc-config",
        dest="kazoo_sbc_config",
        default=None,
        help="with --kazoo-target kazoo-sbc: an operator's Kazoo Kamailio configuration directory (their "
        "/etc/kazoo/kamailio) instead of the release's stock one; same as KAZOO_SBC_CONFIG",
    )
    group.addoption(
        "--harness-load",
        dest="harness_load",
        action="store_true",
        help="also collect each scenario's load: block as a [load] item (marker load; docs/load.md)",
    )
    parser.addini("kazoo_target", "default for --kazoo-target", default="embedded")
    parser.addini("kazoo_profile", "default for --kazoo-profile", default="")
    parser.addini("harness_seed", "default for --harness-seed", default="")


def _option(config: pytest.Config, name: str) -> str:
    value = config.getoption(name)
    return str(value) if value is not None else str(config.getini(name))


def pytest_configure(config: pytest.Config) -> None:
    for cause, doc in GUIDE.items():
        config.addinivalue_line("markers", f"{cause}: {doc}")
    config.addinivalue_line("markers", f"{CALL_FLOW}: {CALL_FLOW_TITLE}")
    for release in RELEASES.values():
        config.addinivalue_line("markers", f"{release.marker}: runs only with a {release.name} profile")
    config.addinivalue_line("markers", "slow: takes more than a couple of seconds")
    config.addinivalue_line("markers", "scenario: a scenario from the YAML catalog")
    config.addinivalue_line("markers", LOAD_MARKER)
    config.stash[SEED_KEY] = _seed(config)
    sbc_config = config.getoption("kazoo_sbc_config", None)
    if sbc_config:  # read by the kazoo-sbc kind (xdist workers inherit the environment)
        os.environ[SBC_CONFIG_ENV] = str(Path(sbc_config).resolve())
    config.stash[RESULTS_KEY] = []
    config.pluginmanager.register(_Recorder(config.stash[RESULTS_KEY]), "kazoo-harness-recorder")
    try:
        ref = resolve(_option(config, "kazoo_target"))
        profile = choose_profile(ref, _option(config, "kazoo_profile") or None)
        log_names = ref.log_names
    except (TargetError, ProfileError) as exc:
        raise pytest.UsageError(f"kazoo-harness: {exc}") from exc
    config.stash[REF_KEY] = ref
    config.stash[PROFILE_KEY] = profile
    # a target file's log sources are known before it is opened: a pattern naming another source is an
    # error at its line (only when the target declares its logs: a bare HOST:PORT has none to check)
    known = log_names if log_names or ref.kind.name == "file" else None
    config.stash[CONTEXT_KEY] = context(known, sorted(profile.never))


def _seed(config: pytest.Config) -> int:
    seed_text = _option(config, "harness_seed")
    worker_input = getattr(config, "workerinput", {})
    if "harness_seed" in worker_input:  # an xdist worker replays the controller's seed
        return int(worker_input["harness_seed"])
    if seed_text.strip():
        return int(seed_text)
    if os.environ.get("HARNESS_SEED", "").strip():
        return int(os.environ["HARNESS_SEED"])
    return random.randrange(10**6)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist: hand the session seed to every worker."""
    node.workerinput["harness_seed"] = node.config.stash[SEED_KEY]


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [
        f"kazoo-harness: target={_option(config, 'kazoo_target')} profile={config.stash[PROFILE_KEY].name} "
        f"seed={config.stash[SEED_KEY]} (replay with --harness-seed {config.stash[SEED_KEY]})"
    ]


def pytest_unconfigure(config: pytest.Config) -> None:
    path = config.getoption("harness_json", None)
    if path and not hasattr(config, "workerinput") and RESULTS_KEY in config.stash:
        Path(path).write_text(json.dumps(config.stash[RESULTS_KEY], indent=2) + "\n", encoding="utf-8")
    html = config.getoption("harness_html", None)
    if html and not hasattr(config, "workerinput") and RESULTS_KEY in config.stash:
        from harness.report.html_report import write_html

        records: list[dict[str, Any]] = config.stash[RESULTS_KEY]
        write_html(records, html)


# -- fixtures: the same power from Python tests -----------------------------------------------------


@pytest.fixture(scope="session")
def kazoo(pytestconfig: pytest.Config) -> Iterator[Target]:
    """The target under test (embedded model unless --kazoo-target says otherwise), closed at the end."""
    from harness.targets.kinds import open_target

    ref, profile = pytestconfig.stash[REF_KEY], pytestconfig.stash[PROFILE_KEY]
    started = time.monotonic()
    step(f"starting target {ref.text} ({profile.name})")  # a lab, kazoo-sbc or docker start takes a while
    with ExitStack() as stack:
        try:
            target = stack.enter_context(open_target(ref.text, profile))
        except TargetError as exc:
            pytest.exit(f"kazoo-harness: cannot use target: {exc}", returncode=pytest.ExitCode.USAGE_ERROR)
        except TargetStartError as exc:
            # infrastructure, not a scenario failure: a distinct exit status (kazoo-harness run: 3)
            pytest.exit(f"kazoo-harness: infrastructure error: {exc}", returncode=INFRA_EXIT)
        sbc = f"{target.sbc[0]}:{target.sbc[1]}"
        step(f"target {ref.text} ready in {time.monotonic() - started:.1f} s (SBC {sbc})")
        yield target


@pytest.fixture
def carrier(kazoo: Target) -> Iterator[Callable[..., CarrierUA]]:
    """A factory of carrier UAs sending through the target's gate: ``carrier(role="listed")`` or
    ``carrier(address=...)``."""
    made: list[CarrierUA] = []

    def make(
        role: str | None = "listed",
        *,
        address: str | None = None,
        transport: str = "udp",
        port: int | None = None,
    ) -> CarrierUA:
        ip, p = kazoo.carrier(role, address, port)
        ua = CarrierUA(ip, p, transport, gate=kazoo.gate, timers=Timers(t1=0.5))
        made.append(ua)
        return ua

    yield make
    for ua in made:
        ua.close()


@pytest.fixture
def run_scenario(kazoo: Target, pytestconfig: pytest.Config) -> Callable[..., ScenarioResult]:
    """Run a scenario given as a dict (the YAML schema) and return its result; raise on a failed verdict
    (and SendRefused when the target's rules refuse what it would send)."""

    def run(data: dict[str, Any], *, check_only: bool = False) -> ScenarioResult:
        given = {"description": data.get("name", "python scenario"), **data}
        checked = check_scenario(given, context(list(kazoo.logs), sorted(kazoo.profile.never)))
        results = [
            run_case_sync(case, kazoo, session_seed=pytestconfig.stash[SEED_KEY])
            for case in expand(checked, Path("<python>"), 1)
        ]
        failed = [r for r in results if r.failures]
        if failed and not check_only:
            raise AssertionError(format_failure(failed[0], pytestconfig, kazoo))
        return results[0]

    return run


@pytest.fixture
def load_run(kazoo: Target, pytestconfig: pytest.Config) -> Callable[..., LoadResult]:
    """``load_run(scenario, workers=1, check=True, **overrides)``: a scenario at rate on Locust against
    the target (harness.load.pytest_load.load_runner; docs/load.md)."""
    return load_runner(kazoo, pytestconfig.stash[SEED_KEY])


@pytest.fixture
def sip_logs(kazoo: Target) -> Callable[[], Any]:
    """A factory of log hubs over the target's log sources: ``async with sip_logs() as hub: ...``."""
    from harness.logs.hub import LogHub

    return lambda: LogHub(kazoo.log_sources())


@pytest.fixture
def kazoo_provision(kazoo: Target) -> Iterator[Provisioner]:
    """Temporary ACL entries, numbers, accounts and callflows on the target under test, restored at
    teardown whatever the test did; skips on targets without ``allow_provisioning``::

    def test_new_carrier(kazoo_provision, carrier):
        kazoo_provision.acl_entry("127.0.0.77/32")
    """
    try:
        provisioner = kazoo.provisioner()
    except SendRefused as exc:
        pytest.skip(str(exc))
    with provisioner:
        yield provisioner


# -- YAML collection --------------------------------------------------------------------------------


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    """Scenario files under a folder named `scenarios`, or under a path given on the command line (any
    file or folder: `kazoo-harness run ../regressions/`)."""
    found = is_scenario_file(file_path)
    if found is False:
        return None
    given = [Path(str(arg).split("::")[0]).resolve() for arg in parent.config.args]
    resolved = file_path.resolve()
    wanted = "scenarios" in file_path.parts or any(g == resolved or g in resolved.parents for g in given)
    return ScenarioFile.from_parent(parent, path=file_path) if wanted else None


class ScenarioFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        cases = load_cases(self.path, self.config.stash[CONTEXT_KEY])
        yield from load_items(self, cases, self.config.stash[SEED_KEY])
        for case in cases:
            item = ScenarioItem.from_parent(self, name=case.test_id, case=case, callobj=_scenario_test)
            for marker in (case.cause, "scenario", *case.markers):
                item.add_marker(marker)
            for release in case.releases:
                item.add_marker(RELEASES[release].marker)
            yield item

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, SchemaError):
            return f"scenario schema error: {excinfo.value}"
        return str(super().repr_failure(excinfo))


def _scenario_test(kazoo: Target) -> None:
    """What a scenario item calls: the body lives in ScenarioItem.runtest (it needs the item)."""


class ScenarioFailure(Exception):
    def __init__(self, result: ScenarioResult) -> None:
        super().__init__("scenario failed")
        self.result = result


class ScenarioItem(pytest.Function):
    """A scenario case as a pytest Function taking the ``kazoo`` fixture."""

    def __init__(self, *, case: ScenarioCase, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.result: ScenarioResult | None = None

    def runtest(self) -> None:
        target = cast(Target, self.funcargs["kazoo"])
        try:
            self.result = run_case_sync(self.case, target, session_seed=self.config.stash[SEED_KEY])
        except SendRefused as exc:  # the target's rules: a scenario that may not run there
            pytest.skip(str(exc))
        if self.result.skipped:
            pytest.skip(self.result.skipped)
        if self.result.failures:
            raise ScenarioFailure(self.result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ScenarioFailure):
            return format_failure(excinfo.value.result, self.config, cast(Target, self.funcargs.get("kazoo")))
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.case.line - 1, f"scenario: {self.case.name}"


def reproduce_command(case: ScenarioCase, config: pytest.Config) -> str:
    # runnable from where pytest was started: the path relative to there, or absolute outside it
    here = config.invocation_params.dir
    path = case.path if case.path.is_absolute() else here / case.path
    rel = os.path.relpath(path, here)
    parts = ["pytest", f"{rel if not rel.startswith('..') else path}::{case.test_id}"]
    target = _option(config, "kazoo_target")
    if target != "embedded":
        parts += ["--kazoo-target", target]
    parts += [
        "--kazoo-profile",
        config.stash[PROFILE_KEY].name,
        "--harness-seed",
        str(config.stash[SEED_KEY]),
    ]
    return shlex.join(parts)


def format_failure(result: ScenarioResult, config: pytest.Config, target: Target | None = None) -> str:
    from harness.report.ladder import text_ladder
    from harness.report.stack_ladder import stack_ladder

    case = result.case
    exp = result.expectation
    profile = target.profile.name if target is not None else config.stash[PROFILE_KEY].name
    lines = [f"scenario {case.name!r} ({case.cause}) at {case.path}:{case.line}", f"  {case.description}", ""]
    if exp is not None:
        origin = f"  (outcome {exp.outcome} from profile {profile})" if exp.outcome else ""
        lines.append(f"expected: {exp.describe()}{origin}")
    lines += [f"got:      {result.got}", "", "failures:", *[f"  - {f}" for f in result.failures]]
    if result.exchange is not None:
        lines += ["", "ladder:", text_ladder(result.exchange)]
    if result.exchange is not None and result.capture is not None and result.capture.roles is not None:
        lines += ["", stack_ladder(result.exchange, result.capture.legs, result.capture.roles)]
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
            if result.capture is not None and result.capture.legs:  # the stack's own view, as HEP
                from harness.report.hep_pcap import write_hep_pcap

                write_hep_pcap(result.capture.legs, pcap.with_suffix(".hep.pcap"))
    report.user_properties.append(("harness_record", json.dumps(record)))
    return report


def run_context(config: pytest.Config) -> dict[str, Any]:
    """What every record says about the run it belongs to (the HTML report's header)."""
    profile = config.stash[PROFILE_KEY]
    return {
        "target": config.stash[REF_KEY].text,
        "profile": profile.name,
        "release": profile.release.name,
        "seed": config.stash[SEED_KEY],
    }


def _attach_html(report: pytest.TestReport, result: ScenarioResult) -> None:
    try:
        from pytest_html import extras
    except ImportError:
        return
    from html import escape

    from harness.report.ladder import svg_ladder
    from harness.report.stack_ladder import stack_ladder

    assert result.exchange is not None
    log_lines = result.logs.explain() if result.logs is not None else "(no log expectations)"
    html = f"<div>{svg_ladder(result.exchange)}</div><pre>{escape(log_lines)}</pre>"
    if result.capture is not None and result.capture.roles is not None:
        legs = stack_ladder(result.exchange, result.capture.legs, result.capture.roles)
        html += f"<pre>{escape(legs)}\n\n{escape(result.capture.explain())}</pre>"
    report.extras = [*getattr(report, "extras", []), extras.html(html)]  # type: ignore[attr-defined]


class _Recorder:
    """Collects every scenario's record (also from xdist workers, through the reports' user_properties)."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for key, value in report.user_properties:
            if key == "harness_record":
                self.records.append(json.loads(str(value)))
