"""The load shapes as arithmetic: when call k is due, how many calls a run places, and how senders
split a run without talking to each other."""

from __future__ import annotations

import math

import pytest

from harness.load.schedule import Schedule, share


def test_constant_rate_spaces_calls_evenly() -> None:
    s = Schedule("constant", rate=200, calls=1000)
    assert s.total == 1000
    assert s.due(0) == 0.0
    assert s.due(200) == pytest.approx(1.0)
    assert s.span == pytest.approx(999 / 200)


def test_duration_bounds_a_run_without_a_count() -> None:
    assert Schedule("constant", rate=50, duration=4).total == 200


def test_ramp_follows_the_integral_of_its_rate() -> None:
    s = Schedule("ramp", rate=100, start_rate=10, duration=10)
    # calls due by t are the area under the rate line from 10/s to 100/s
    assert s.total == int(10 * 10 + 90 * 10 / 2)
    for t in (1.0, 2.5, 5.0, 9.0):
        expected = 10 * t + (90 / 10) * t * t / 2
        due_by_t = sum(1 for k in range(s.total) if s.due(k) <= t)
        assert abs(due_by_t - math.ceil(expected)) <= 1
    dues = [s.due(k) for k in range(s.total)]
    assert dues == sorted(dues)
    assert dues[-1] <= 10.0


def test_ramp_then_constant_when_the_count_outlasts_the_ramp() -> None:
    s = Schedule("ramp", rate=100, start_rate=0, duration=2, calls=300)  # 100 calls in the ramp
    assert s.due(100) == pytest.approx(2.0)
    assert s.due(200) == pytest.approx(3.0)


def test_burst_of_n_within_t_ms() -> None:
    burst = Schedule("burst", calls=120, within=0.2)
    assert burst.due(0) == 0.0
    assert burst.due(119) == pytest.approx(0.2)
    assert burst.peak_rate == pytest.approx(600.0)
    at_once = Schedule("burst", calls=120, within=0.0)
    assert {at_once.due(k) for k in range(120)} == {0.0}
    assert at_once.peak_rate == math.inf


def test_senders_split_the_run_exactly() -> None:
    total = 1001
    parts = [list(share(total, i, 3)) for i in range(3)]
    assert sorted(k for p in parts for k in p) == list(range(total))
    assert all(abs(len(p) - total / 3) < 1 for p in parts)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"shape": "ramp", "rate": 10}, "duration"),
        ({"shape": "constant", "rate": 0, "calls": 5}, "rate > 0"),
        ({"shape": "constant", "rate": 5}, "calls or duration"),
        ({"shape": "burst"}, "calls >= 1"),
        ({"shape": "wave", "rate": 5, "calls": 5}, "shape must be one of"),
    ],
)
def test_shapes_that_cannot_run_say_why(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Schedule(**kwargs)  # type: ignore[arg-type]
