"""The 5.x port's edits against the pristine tree in ../shared (kazoo-configs-kamailio 5.x, byte for byte):
each edit finds its anchor exactly as often as it says, fails loudly without it, and after all of them no
syntax of 2600Hz's fork is left in any file the tree includes. Running the result is in
tests/integration/test_kazoo_sbc_5x.py."""

from __future__ import annotations

import functools
import re
import shutil
from pathlib import Path

import pytest

from harness.kazoo_sbc.cfgtree import route_blocks, routes_calls, walk
from harness.kazoo_sbc.edit import Edit, EditError, apply_edits
from harness.kazoo_sbc.edits_5x import (
    DISPATCHER_FILE_5X,
    DOCS_BEGIN,
    DOCS_END,
    EDITS_5X,
    LOCAL_REQUEST_SUFFIXES_5X,
    ROUTES_5X,
    ROUTES_CALLS_5X,
    SITE_VALUES_5X,
    SiteValue,
    edits_markdown,
    import_index_name,
    port_5x,
    unported_routes,
)

PRISTINE = Path(__file__).resolve().parents[3] / "shared" / "kazoo-configs-kamailio" / "5.x" / "kamailio"
pytestmark = pytest.mark.skipif(not PRISTINE.is_dir(), reason=f"no 5.x configuration at {PRISTINE}")
# how the pristine tree names its included files before the port (MAJOR is 5.6 on Debian; the port
# includes the 5.7 file) and which database file KZ_DB_MODULE's default selects
NAMES = {"MAJOR": "5.7", "KAMAILIO_DBMS": "kazoo"}


@functools.cache
def _pristine_texts() -> dict[str, str]:
    return {path.name: path.read_text(encoding="utf-8") for path in PRISTINE.glob("*.cfg")}


def _texts() -> dict[str, str]:
    return dict(_pristine_texts())


def _copy(dest: Path) -> Path:
    tree = shutil.copytree(PRISTINE, dest)
    for path in [tree, *tree.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return tree


@pytest.fixture(scope="module")
def ported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = _copy(tmp_path_factory.mktemp("ported") / "cfg")
    port_5x(tree)
    return tree


def _included(tree: Path) -> list[str]:
    return [value for kind, value in walk(tree, names=NAMES) if kind == "include"]


def test_each_edit_finds_its_anchor_in_the_pristine_tree_as_often_as_it_says() -> None:
    texts = _texts()
    for edit in EDITS_5X:  # in order: an edit sees the text the edits before it left
        found = len(re.findall(edit.old, texts[edit.file], re.MULTILINE))
        assert found == edit.count, f"{edit.name} on {edit.file}: {found} matches, expected {edit.count}"
        texts[edit.file] = edit.apply(texts[edit.file])


@pytest.mark.parametrize("edit", EDITS_5X, ids=lambda e: f"{e.name}@{e.file}")
def test_an_edit_whose_anchor_is_gone_fails_loudly_with_its_name_and_reason(edit: Edit) -> None:
    text = re.sub(edit.old, "", _texts()[edit.file], flags=re.MULTILINE)
    with pytest.raises(EditError, match=re.escape(edit.name)) as raised:
        edit.apply(text)
    assert edit.reason in str(raised.value)


def test_a_missing_file_fails_loudly(tmp_path: Path) -> None:
    with pytest.raises(EditError, match=r"no file kamailio\.cfg"):
        apply_edits(tmp_path, EDITS_5X)


def test_every_edit_says_why_and_the_edits_do_not_repeat() -> None:
    assert all(len(edit.reason) > 40 for edit in EDITS_5X)
    keys = [(edit.file, edit.old) for edit in EDITS_5X]
    assert len(keys) == len(set(keys))


def test_routes_expansion_lists_every_route_of_the_tree_with_the_prefix_in_definition_order() -> None:
    routes = route_blocks(PRISTINE, names=NAMES)
    assert len(routes) > 200  # the walk reached every role file
    for prefix, expansion in ROUTES_5X.items():
        assert expansion == tuple(name for name in routes if name.startswith(f"{prefix}_")), prefix
    local = sorted({name.split("_", 3)[3] for name in routes if re.match(r"KZ_LOCAL_[A-Z]+_", name)})
    assert tuple(local) == tuple(sorted(LOCAL_REQUEST_SUFFIXES_5X))
    assert not [name for name in routes if re.match(r"KZ_[A-Z]+_START_ROUTE_", name)]


def test_routes_calls_are_those_of_the_tree() -> None:
    tree_calls: dict[str, dict[str, int]] = {}
    for file in _included(PRISTINE):
        for prefix in routes_calls(PRISTINE, file):
            if "$" not in prefix:  # the two $(rm) prefixes have edits of their own
                tree_calls.setdefault(file, {}).setdefault(prefix, 0)
                tree_calls[file][prefix] += 1
    assert tree_calls == ROUTES_CALLS_5X
    assert set(ROUTES_5X) == {prefix for calls in ROUTES_CALLS_5X.values() for prefix in calls}


# What stock 5.6 does not parse or has not (the fork's syntax), and what Debian's kazoo module crashes on
FORK_ONLY = [
    r"^\s*routes\(",
    r"^import_files ",
    r"^bflags",
    r"\$ki\b",
    r"\$\(?knode\b",
    r"\$bflag\(",
    r"\$flag\(",
    r"kz\.filename",
    r'"uri_pvname"',
    r'"ds_rehash_max"',
    r"rollingexpire",
    r'"ka_interval"',
    r'"ka_flag"',
    r"^tls_threads_mode",
    r'"init_mode"',
    r'"db_kazoo\.so"',
    r"dispatcher-role-MAJOR",
    r"route=TRUSTED_QUERY",
    r"route=JWT_KEYS_QUERY",
    r"listen=tcp:127\.0\.0\.1:5090",
]


@pytest.mark.parametrize("pattern", FORK_ONLY)
def test_no_fork_syntax_is_left_in_any_included_file(ported: Path, pattern: str) -> None:
    included = _included(ported)
    assert DISPATCHER_FILE_5X in included and "db_kazoo.cfg" in included
    assert "dispatcher-role-5.5.cfg" not in included
    left = [
        f"{file}:{n}: {line.strip()}"
        for file in included
        for n, line in enumerate((ported / file).read_text().splitlines(), 1)
        if re.search(pattern, line) and not line.lstrip().startswith("#")
    ]
    assert left == []


def test_the_fork_syntax_list_is_found_in_the_pristine_tree() -> None:
    """Each FORK_ONLY pattern matches the pristine tree, so the test above tests something."""
    text = "\n".join(_texts().values())
    for pattern in FORK_ONLY:
        assert re.search(pattern, text, re.MULTILINE), pattern


def test_routes_become_route_if_exists_calls_in_the_same_order(ported: Path) -> None:
    text = (ported / "default.cfg").read_text()
    assert (
        '    route_if_exists("CLASSIFY_SOURCE_DISPATCHER"); route_if_exists("CLASSIFY_SOURCE_TRUSTED");\n'
    ) in text
    assert "    ;  # routes(CORE_REPLY): no route is named CORE_REPLY_*\n" in text
    assert 'route_if_exists("KZ_LOCAL_$(rm)_INTERNAL"); route_if_exists("KZ_LOCAL_$(rm)_PRESENCE");' in text


def test_import_files_globs_become_indexes_of_the_operators_files_in_name_order(tmp_path: Path) -> None:
    tree = _copy(tmp_path / "cfg")
    (tree / "extras.d").mkdir()
    (tree / "extras.d" / "b.cfg").write_text("route[OPERATOR_B] {\n    exit;\n}\n")
    (tree / "extras.d" / "a.cfg").write_text("route[OPERATOR_A] {\n    exit;\n}\n")
    (tree / "extras.d" / "notes.txt").write_text("not a .cfg: not imported\n")
    port_5x(tree)
    assert 'import_file "import-extras.d.cfg"' in (tree / "kamailio.cfg").read_text()
    index = (tree / import_index_name("extras.d")).read_text().splitlines()
    assert index == [f'include_file "{tree / "extras.d" / name}"' for name in ("a.cfg", "b.cfg")]
    assert not (tree / import_index_name("local.d")).exists()  # no files: no index, import_file skips it
    assert route_blocks(tree)[-2:] == ["OPERATOR_A", "OPERATOR_B"]


def test_an_operator_route_the_expansion_would_miss_stops_the_port(tmp_path: Path) -> None:
    tree = _copy(tmp_path / "cfg")
    (tree / "local.d").mkdir()
    (tree / "local.d" / "mine.cfg").write_text(
        "route[CLASSIFY_SOURCE_OPERATOR] {\n}\nroute[KZ_LOCAL_OPTIONS_MINE] {\n}\n"
        "route[KZ_INVITE_START_ROUTE_MINE] {\n}\nroute[KZ_LOCAL_NOTIFY_INTERNAL] {\n}\n"
    )
    with pytest.raises(EditError, match="CLASSIFY_SOURCE_OPERATOR") as raised:
        port_5x(tree)
    assert "KZ_LOCAL_OPTIONS_MINE" in str(raised.value)
    assert "KZ_INVITE_START_ROUTE_MINE" in str(raised.value)
    # KZ_LOCAL_NOTIFY_INTERNAL is called by route_if_exists("KZ_LOCAL_$(rm)_INTERNAL")
    assert unported_routes(tree) == [
        "CLASSIFY_SOURCE_OPERATOR",
        "KZ_LOCAL_OPTIONS_MINE",
        "KZ_INVITE_START_ROUTE_MINE",
    ]


def test_site_values_are_written_as_5x_reads_them() -> None:
    names = {site.name: site for site in SITE_VALUES_5X}
    assert (
        names["KAZOO_DB_URL"].line("sqlite:////x/kazoo.db")
        == '#!substdef "!KAZOO_DB_URL!sqlite:////x/kazoo.db!g"'
    )
    assert names["SIP_PORT"].line("5062") == "#!define SIP_PORT 5062"
    assert SiteValue("X", "define", "").line("1") == "#!define X 1"
    # each name is one the tree reads (a trydef or an ifndef guard), or the port's own
    text = "\n".join(_texts().values())
    for site in SITE_VALUES_5X:
        if site.name != "KZ_LOCAL_ROUTE_PORT":
            assert re.search(rf"^#!(?:trydef|ifndef) {site.name}\b", text, re.MULTILINE), site.name


def test_the_docs_tables_are_those_of_the_edits() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "kazoo-sbc-5x-port.md").read_text()
    begin, end = docs.index(DOCS_BEGIN), docs.index(DOCS_END) + len(DOCS_END)
    assert docs[begin:end] == edits_markdown(), (
        "run: python -m harness.kazoo_sbc.edits_5x --write docs/kazoo-sbc-5x-port.md"
    )
