"""The model's SBC lines are the lines Kazoo's own configuration logs: every 5.x line at the file, line and
route its xlog has in the running (ported) 5.x tree, every 4.3 text in an xlog of 4.3's tree with its area.
A typo in a text, a line number that moved, a route renamed, a 4.3 line 4.3 never writes: each fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.kazoo.release import KAZOO_4_3, KAZOO_5
from harness.kazoo_sbc.edits_5x import port_5x
from harness.kazoo_sbc.launcher import copy_config
from harness.kazoo_sbc.releases import sbc_release
from harness.model.sbc_lines import CORE, SCRIPT, ScriptLine

PRISTINE_43 = sbc_release(KAZOO_4_3.name).pristine
PRISTINE_5X = sbc_release(KAZOO_5.name).pristine
needs_trees = pytest.mark.skipif(
    not (PRISTINE_43.is_dir() and PRISTINE_5X.is_dir()),
    reason="Kazoo's Kamailio configurations missing (../shared beside the repository)",
)
_XLOG = re.compile(r'xlog\("(?:L_[A-Z]+|[0-9]+)",\s*"((?:[^"\\]|\\.)*)"\)|xlog\("((?:[^"\\]|\\.)*)"\)')
_BLOCK = re.compile(r"^(?:route|failure_route|onreply_route|branch_route|event_route)\[([^\]]+)\]", re.M)


def _matches(template: str, logged: str) -> bool:
    """The xlog's text, with its $variables, has the template's fixed parts in order, and nothing else
    fixed: each variable stands where the template has a placeholder."""
    pattern = "".join(
        re.escape(part)
        if not part.startswith("{")
        else r"(?:\$\w+(?:\([^)]*\))?|\$\([^)]*\)|\$\(\w+\{[^}]*\}\))+"
        for part in re.split(r"(\{[a-z_]+\})", template)
        if part
    )
    pattern = pattern.replace(r"\{", "{").replace(r"\}", "}")
    return re.fullmatch(pattern, logged.removesuffix("\\n")) is not None


@pytest.fixture(scope="module")
def ported_5x(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = tmp_path_factory.mktemp("ported") / "kamailio"
    copy_config(PRISTINE_5X, tree)
    port_5x(tree)
    return tree


def _route_at(text: str, line: int) -> str:
    before = "\n".join(text.splitlines()[:line])
    blocks = _BLOCK.findall(before)
    return blocks[-1].lower() if blocks else ""


@needs_trees
@pytest.mark.parametrize("key", [k for k, v in SCRIPT.items() if v.text_5x is not None])
def test_each_5x_line_is_the_xlog_at_its_file_line_and_route(ported_5x: Path, key: str) -> None:
    line = SCRIPT[key]
    assert line.where_5x is not None and line.text_5x is not None
    file, number, route = line.where_5x
    text = (ported_5x / file).read_text(encoding="utf-8")
    source = text.splitlines()[number - 1]
    found = _XLOG.search(source)
    assert found is not None, f"{file}:{number} is not an xlog: {source.strip()}"
    logged = found.group(1) or found.group(2)
    assert _matches(line.text_5x, logged), f"{file}:{number} logs {logged!r}, the model {line.text_5x!r}"
    assert _route_at(text, number) == route, f"{file}:{number} is in route {_route_at(text, number)!r}"


def _xlogs_43() -> list[str]:
    found = []
    for path in sorted(PRISTINE_43.glob("*.cfg")):
        for match in _XLOG.finditer(path.read_text(encoding="utf-8")):
            found.append(match.group(1) or match.group(2))
    return found


@needs_trees
@pytest.mark.parametrize("key", [k for k, v in SCRIPT.items() if v.text_43 is not None])
def test_each_43_line_is_an_xlog_of_43s_tree_with_its_area(key: str) -> None:
    line: ScriptLine = SCRIPT[key]
    assert line.text_43 is not None
    prefixed = [
        x.removeprefix(f"$ci|{line.area_43}|") for x in _xlogs_43() if x.startswith(f"$ci|{line.area_43}|")
    ]
    assert any(_matches(line.text_43, x) for x in prefixed), (
        f"no 4.3 xlog '$ci|{line.area_43}|{line.text_43}'"
    )


@needs_trees
def test_lines_one_release_does_not_write_are_absent_from_its_tree(ported_5x: Path) -> None:
    xlogs_5x = [
        match.group(1) or match.group(2)
        for path in sorted(ported_5x.glob("*.cfg"))
        for match in _XLOG.finditer(path.read_text(encoding="utf-8"))
    ]
    for key in ("route_set", "media_challenged"):  # 5.x removes the Route set; has no 407 branch
        text = SCRIPT[key].text_43
        assert text is not None
        assert not any(_matches(text, x) for x in xlogs_5x), key
    for key in ("portsip_sdp", "challenging", "auth_query_timeout", "override_604"):
        text = SCRIPT[key].text_5x
        assert text is not None
        assert not any(_matches(text, x.split("|", 2)[-1]) for x in _xlogs_43()), key


def test_core_lines_render_as_kamailio_writes_them() -> None:
    line = CORE["required_headers"].render()
    assert line == "ERROR: <core> [core/receive.c:447]: receive_msg(): required headers not found in request"
    assert (
        CORE["bad_max_forwards"].render().startswith("ERROR: maxfwd [mf_funcs.c:69]: is_maxfwd_present(): ")
    )
    garbage = CORE["core_parse_failed"].render(ip="127.0.0.10", port=5060, proto=1)
    assert garbage.endswith("receive_msg(): core parsing of SIP message failed (127.0.0.10:5060/1)")
