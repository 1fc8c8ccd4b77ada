"""The arithmetic of the household band, and what repair and exact search need of a search.

A total of households is *divisible* when it can form whole grids in ``[lo, hi]``; the
answers are memoised because the search asks about the same totals millions of times.
:class:`Search` is the part of :class:`~geo.planning.partition.search.Partitioner` that
:mod:`~geo.planning.partition.exact` and :mod:`~geo.planning.partition.improve` call back
into, so that neither imports the search module (no import circle).
"""

from __future__ import annotations

import random
from typing import Protocol

from geo.planning.partition.problem import Budget, Problem


class Band:
    """The band ``[lo, hi]`` of households per grid, with memoised answers about totals."""

    def __init__(self, lo: int, hi: int) -> None:
        self.lo, self.hi = lo, hi
        self.mid = (lo + hi) / 2.0
        self._div: dict[int, bool] = {}
        self._slack: dict[int, float] = {}
        self._dist: dict[int, int] = {}

    def divisible(self, total: int) -> bool:
        """Whether ``total`` households can form whole grids: ``k·lo ≤ total ≤ k·hi``."""
        ok = self._div.get(total)
        if ok is None:
            ok = total > 0 and -(-total // self.hi) <= total // self.lo
            self._div[total] = ok
        return ok

    def slack(self, total: int) -> float:
        """Households per grid by which ``total`` could move and stay divisible (best ``k``)."""
        room = self._slack.get(total)
        if room is None:
            room = -1.0
            for k in range(max(1, -(-total // self.hi)), total // self.lo + 1):
                room = max(room, min(total - k * self.lo, k * self.hi - total) / k)
            self._slack[total] = room
        return room

    def distance(self, total: int) -> int:
        """Households outside the band for the best number of grids (0 when divisible)."""
        d = self._dist.get(total)
        if d is None:
            k = max(1, round(total / self.mid))
            d = min(
                max(0, j * self.lo - total, total - j * self.hi)
                for j in range(max(1, k - 2), k + 3)
            )
            self._dist[total] = d
        return d

    def best_k(self, total: int) -> int:
        """The number of grids for ``total``: inside the band if possible, nearest the middle."""
        k = max(1, round(total / self.mid))

        def miss(j: int) -> tuple[int, float]:
            return max(0, j * self.lo - total, total - j * self.hi), abs(total / j - self.mid)

        return min(range(max(1, k - 2), k + 3), key=miss)

    def deviation(self, total: int) -> int:
        """Households outside the band for one grid (0 inside it)."""
        return max(0, self.lo - total, total - self.hi)


class Search(Protocol):
    """What repair and exact search use of the partitioner that runs them."""

    p: Problem
    lo: int
    hi: int
    mid: float
    rng: random.Random
    budget: Budget

    def divisible(self, total: int) -> bool: ...

    def deviation(self, total: int) -> int: ...

    def random_tree(self, piece: list[int]) -> tuple[list[int], dict[int, int], dict[int, int]]: ...
