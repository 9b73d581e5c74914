"""Kamailio's pike tree as the model keeps it (harness/model/pike.py), on a clock the test sets.

Every count below follows from pike's ip_tree.c/pike_funcs.c with Kazoo's antiflood-role.cfg settings
(density 50 per 2 s unit, remove latency 4 s); the module docstring derives the 63.
"""

from __future__ import annotations

import pytest

from harness.model.pike import PikeSettings, PikeTree, Verdict

SOURCE = "127.0.0.66"


def burst(tree: PikeTree, ip: str, count: int, now: float) -> list[Verdict]:
    return [tree.check(ip, now) for _ in range(count)]


def test_fresh_tree_lets_63_through_then_blocks() -> None:
    lines: list[str] = []
    tree = PikeTree(start=0.0, log=lambda event, text: lines.append(f"{event}: {text}"))
    verdicts = burst(tree, SOURCE, 120, 0.5)
    assert all(v is Verdict.ALLOWED for v in verdicts[:63])
    assert verdicts[63] is Verdict.NEWLY_BLOCKED  # 14 grow the path to the leaf, 49 counted on it
    assert all(v is Verdict.BLOCKED for v in verdicts[64:])
    assert tree.leaf_hits(SOURCE) == (0, 106)  # blocked requests are counted too: 120 - 14 to grow it
    assert len(lines) == 1 and lines[0].startswith(f"block: PIKE - BLOCKing ip {SOURCE}, node=0x")


def test_a_neighbour_inherits_the_grown_prefix() -> None:
    tree = PikeTree(start=0.0)
    burst(tree, SOURCE, 120, 0.1)
    verdicts = burst(tree, "127.0.0.67", 80, 0.2)
    # 127.0.0 is hot already: the first request splits off the leaf, the next 49 are counted on it
    assert verdicts.index(Verdict.NEWLY_BLOCKED) == 50


def test_other_first_byte_is_another_branch() -> None:
    tree = PikeTree(start=0.0)
    burst(tree, SOURCE, 120, 0.1)
    assert burst(tree, "10.1.2.3", 63, 0.2) == [Verdict.ALLOWED] * 63


def test_a_burst_split_by_the_swap_passes_whole() -> None:
    tree = PikeTree(start=0.0)
    # 40 before the swap at tick 2 (25 of them on the leaf), 40 after: never 50 in one unit
    verdicts = burst(tree, SOURCE, 40, 1.5) + burst(tree, SOURCE, 40, 2.1)
    assert Verdict.NEWLY_BLOCKED not in verdicts and Verdict.BLOCKED not in verdicts


def test_the_most_a_burst_of_120_can_pass_is_112_when_the_swap_falls_after_its_63rd() -> None:
    """The bound the untrusted-burst load scenario allows: 63 in one unit (the 64th would be blocked),
    then the swap makes them the previous unit's 49 leaf hits, a mean under 50, and 49 more pass."""
    passed = []
    for split in range(121):
        tree = PikeTree(start=0.0)
        verdicts = burst(tree, SOURCE, split, 1.99) + burst(tree, SOURCE, 120 - split, 2.01)
        passed.append(verdicts.count(Verdict.ALLOWED))
    assert max(passed) == 112 and passed.index(112) == 63
    assert min(passed) == 63  # never fewer than a fresh unit lets through


def test_sustained_30_per_second_is_blocked_in_the_second_unit_and_stays_blocked() -> None:
    tree = PikeTree(start=0.0)
    verdicts = [tree.check(SOURCE, i / 30) for i in range(300)]
    first = verdicts.index(Verdict.NEWLY_BLOCKED)
    assert first == 109  # 45 leaf hits in unit 0, the 50th of unit 1 at 3.63 s
    assert all(v is Verdict.BLOCKED for v in verdicts[first + 1 :])  # blocked ones keep it hot


def test_a_slow_source_is_never_blocked_and_its_prefix_expires() -> None:
    tree = PikeTree(start=0.0)
    assert all(v is Verdict.ALLOWED for v in (tree.check(SOURCE, i * 0.5) for i in range(60)))
    assert tree.node_count == 1  # two hits a second never warm the first byte: it never splits


def test_the_ban_ends_at_the_first_swap_that_finds_the_leaf_cold() -> None:
    lines: list[str] = []
    tree = PikeTree(start=0.0, log=lambda event, text: lines.append(f"{event}: {text}"))
    burst(tree, SOURCE, 120, 0.5)
    assert tree.check(SOURCE, 2.5) is Verdict.BLOCKED  # swap at 2: the previous unit was hot
    assert tree.check(SOURCE, 4.5) is Verdict.ALLOWED  # swap at 4: one hit in unit 1, cold
    assert lines[-1].startswith("unblock: PIKE - UNBLOCKing node 0x")


def test_an_idle_leaf_is_removed_after_the_remove_latency() -> None:
    tree = PikeTree(start=0.0)
    burst(tree, SOURCE, 120, 0.5)
    tree.advance(3.9)
    assert tree.is_blocked(SOURCE)
    tree.advance(4.0)  # the cleaner at tick 4: 4 ticks since the last hit at tick 0
    assert tree.leaf_hits(SOURCE) is None and not tree.is_blocked(SOURCE)
    assert tree.check(SOURCE, 4.0) is Verdict.ALLOWED


def test_the_whole_tree_ages_away_and_idle_time_is_skipped() -> None:
    tree = PikeTree(start=0.0)
    burst(tree, SOURCE, 120, 0.5)
    tree.advance(60.0)  # leaf, then each prefix, every 4 ticks
    assert tree.node_count == 0
    tree.advance(10_000_000.0)  # an empty tree does not loop over the ticks in between
    assert burst(tree, SOURCE, 63, 10_000_000.5) == [Verdict.ALLOWED] * 63


def test_density_setting() -> None:
    tree = PikeTree(PikeSettings(reqs_density_per_unit=8), start=0.0)
    # quarter = 2: the first byte splits at its 2nd hit, the next two at once; 7 counted, the 8th red
    assert burst(tree, SOURCE, 12, 0.1).index(Verdict.NEWLY_BLOCKED) == 11


def test_ipv6_sources_have_sixteen_levels() -> None:
    tree = PikeTree(start=0.0)
    verdicts = burst(tree, "::1", 120, 0.1)
    # 12 to warm the first byte, one for each of the 14 next splits, 49 counted on the leaf
    assert verdicts.index(Verdict.NEWLY_BLOCKED) == 12 + 14 + 49


def test_settings_must_be_positive() -> None:
    with pytest.raises(ValueError):
        PikeSettings(sampling_time_unit=0)
