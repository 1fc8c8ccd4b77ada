"""The band's arithmetic against brute force over every k: whole grids in ``[lo, hi]``."""

from __future__ import annotations

import pytest

from geo.planning.partition.band import Band

BANDS = [(150, 180), (100, 200), (7, 9), (170, 170)]


def _miss(total: int, k: int, lo: int, hi: int) -> int:
    return max(0, k * lo - total, total - k * hi)


@pytest.mark.parametrize(("lo", "hi"), BANDS)
def test_band_answers_match_brute_force(lo: int, hi: int) -> None:
    band = Band(lo, hi)
    for total in range(2000):
        ks = range(1, total // max(1, lo) + 3)
        fits = [k for k in ks if k * lo <= total <= k * hi]
        assert band.divisible(total) == bool(fits), total
        assert band.deviation(total) == max(0, lo - total, total - hi)
        if total == 0:
            continue
        best = min(_miss(total, k, lo, hi) for k in ks)
        assert band.distance(total) == best, total
        assert _miss(total, band.best_k(total), lo, hi) == best, total
        slack = max((min(total - k * lo, k * hi - total) / k for k in fits), default=-1.0)
        assert band.slack(total) == pytest.approx(slack), total


def test_best_k_prefers_the_count_whose_grids_sit_nearest_the_middle() -> None:
    """1,850 households fit the 150–180 band as 11 grids (~168) or 12 (~154): a planner wants
    the 11, nearest the 165 middle, not simply the most (or fewest) grids that fit."""
    band = Band(150, 180)
    assert band.divisible(1850)
    assert band.best_k(1850) == 11
    assert band.best_k(2000) == 12  # 12 × ~167 beats 11 × ~182 (out) and 13 × ~154
