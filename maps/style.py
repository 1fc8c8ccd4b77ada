"""Colour scales for gridwork maps, computed in Python so no colour library is loaded in the page.

branca's colormaps draw their legends with d3 fetched from a CDN, which an intranet cannot reach;
the classes here only produce hex colours and legend labels, and `maps.base.Legend` draws them
as plain HTML.

Palettes are ColorBrewer (Cynthia Brewer, Penn State; Apache-2.0-style licence) and Tableau 10
colour values.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

#: ColorBrewer "Blues", 5 classes: light = few households, dark = many.
BLUES_5: tuple[str, ...] = ("#eff3ff", "#bdd7e7", "#6baed6", "#3182bd", "#08519c")
#: Tableau 10 without its grey, which is kept for "other" so it never names a real kind.
CATEGORICAL_9: tuple[str, ...] = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
)
OTHER_COLOUR = "#bab0ac"
NO_DATA_COLOUR = "#d9d9d9"


@dataclass(frozen=True)
class ScaleClass:
    """One class of a sequential scale: values in (previous upper, upper] share `colour`."""

    upper: float
    colour: str
    low_seen: float
    high_seen: float


@dataclass(frozen=True)
class SequentialScale:
    """Quantile classes over the values actually mapped, so each colour marks a similar count."""

    classes: tuple[ScaleClass, ...]

    def colour(self, value: float | None) -> str:
        """Colour for `value`; missing values get the no-data grey rather than the lowest class."""
        if value is None or not math.isfinite(value) or not self.classes:
            return NO_DATA_COLOUR
        for cls in self.classes:
            if value <= cls.upper:
                return cls.colour
        return self.classes[-1].colour

    def labels(self) -> list[tuple[str, str]]:
        """(label, colour) pairs naming the lowest and highest value seen in each class."""
        out = []
        for cls in self.classes:
            low, high = _fmt(cls.low_seen), _fmt(cls.high_seen)
            out.append((low if low == high else f"{low} – {high}", cls.colour))
        return out


def quantile_scale(
    values: Iterable[float | None], *, palette: Sequence[str] = BLUES_5
) -> SequentialScale:
    """Split the finite values into at most len(palette) quantile classes.

    Quantile (not equal-interval) classes because household counts are skewed: a few large
    communities would otherwise take the dark colours and leave the rest in one pale class.
    Breaks are data values (inverted CDF) and duplicates collapse, so there are never empty
    classes; with fewer classes than colours the colours are spread over the whole palette.
    """
    finite = np.array(
        [float(v) for v in values if v is not None and math.isfinite(float(v))], dtype=float
    )
    if finite.size == 0:
        return SequentialScale(classes=())
    k = min(len(palette), int(np.unique(finite).size))
    quantiles = np.quantile(finite, [i / k for i in range(1, k + 1)], method="inverted_cdf")
    uppers = sorted({float(q) for q in quantiles})
    picks = np.linspace(0, len(palette) - 1, num=len(uppers)).round().astype(int)
    classes = []
    lower = -math.inf
    for upper, pick in zip(uppers, picks, strict=True):
        members = finite[(finite > lower) & (finite <= upper)]
        classes.append(
            ScaleClass(
                upper=upper,
                colour=palette[int(pick)],
                low_seen=float(members.min()),
                high_seen=float(members.max()),
            )
        )
        lower = upper
    return SequentialScale(classes=tuple(classes))


def categorical_colours(
    kinds: Iterable[str | None], *, palette: Sequence[str] = CATEGORICAL_9
) -> dict[str, str]:
    """Colour per kind: the most frequent kinds get palette colours, the rest share OTHER_COLOUR.

    Ties in frequency break on the kind's name, so the same data always gets the same colours.
    Missing kinds are not keys; callers colour them as other.
    """
    counts = Counter(k for k in kinds if k is not None)
    ranked = sorted(counts, key=lambda kind: (-counts[kind], kind))
    return {kind: palette[i] if i < len(palette) else OTHER_COLOUR for i, kind in enumerate(ranked)}


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"
