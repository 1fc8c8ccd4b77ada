"""Estimate households per residential building and place them as points.

Real household registers are private and rarely at hand when a grid plan is drafted, but grids
are sized by households. So we estimate them from building footprints (OpenStreetMap has
those everywhere), scale them to a census population where one is known, and place synthetic
household points inside the buildings so that assignment and plan metrics can run.

Every number produced here is an estimate and is flagged as one. Synthetic households carry
only the fields a service needs (size, lives alone): never names, ethnicity, religion or
identity numbers, because none of those are needed to plan grids and all of them would harm.

All inputs are in a projected metric CRS; footprints are measured from the geometry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from geo.errors import CRSError, InvalidGeometry, InvalidInput

RESIDENTIAL_BUILDING_KINDS: frozenset[str] = frozenset(
    {
        "apartments",
        "bungalow",
        "detached",
        "dormitory",
        "farm",
        "house",
        "residential",
        "semidetached_house",
        "terrace",
        "yes",
    }
)
"""OSM ``building=*`` values that may hold dwellings.

An allow-list, not a deny-list: anything else (church, chapel, garage, school, commercial,
industrial, retail, office, warehouse, hotel, roof, ruins, collapsed, typos like ``6``) gets
0 households, because an unknown tag must not invent people. ``yes`` is kept since most
buildings in old town centres carry only ``yes`` and are mostly homes above shops.
"""

HOUSEHOLD_SIZE_MAX = 6
"""Synthetic sizes stay within 1…6, like the synthetic district; larger ones are too rare to
matter for grid sizing."""


@dataclass(frozen=True)
class HouseholdRule:
    """The documented rule: ``round(levels × footprint_m2 × usable_share ÷ avg_dwelling_m2)``.

    The defaults fit dense old towns such as Porto's historic centre: 3 storeys where OSM does
    not know, 80 % of the floor area usable for dwellings (walls, stairs, shops), 90 m² per
    dwelling. ``avg_household_size`` 2.3 is close to the 2011 census figure for Porto city;
    use the local census value elsewhere. Levels below 1 or unparsable count as unknown.
    """

    default_levels: float = 3.0
    usable_share: float = 0.8
    avg_dwelling_m2: float = 90.0
    avg_household_size: float = 2.3
    residential_kinds: frozenset[str] = RESIDENTIAL_BUILDING_KINDS
    kind_col: str = "building"
    levels_col: str = "levels"

    def __post_init__(self) -> None:
        problems = [
            f"{name} must be > 0, got {value}"
            for name, value in (
                ("default_levels", self.default_levels),
                ("usable_share", self.usable_share),
                ("avg_dwelling_m2", self.avg_dwelling_m2),
                ("avg_household_size", self.avg_household_size),
            )
            if not value > 0
        ]
        if not 1 <= self.avg_household_size <= HOUSEHOLD_SIZE_MAX:
            problems.append(f"avg_household_size must lie in 1…{HOUSEHOLD_SIZE_MAX}")
        if problems:
            raise InvalidInput("; ".join(problems), field="HouseholdRule")


def estimate_households(
    buildings: gpd.GeoDataFrame, rule: HouseholdRule | None = None
) -> gpd.GeoDataFrame:
    """Apply the rule to every building; returns a copy with the columns ``residential``,
    ``levels_used``, ``levels_default`` (True where the rule's default was used),
    ``households`` (int) and ``households_estimated`` (always True)."""
    rule = rule or HouseholdRule()
    _require_metric(buildings)
    for col in (rule.kind_col, rule.levels_col):
        if col not in buildings.columns:
            raise InvalidInput(f"column {col!r} is missing", field="buildings")
    kinds = buildings[rule.kind_col].astype("string").str.strip().str.lower()
    residential = kinds.isin(rule.residential_kinds).fillna(False).to_numpy(dtype=bool)
    levels = pd.to_numeric(buildings[rule.levels_col], errors="coerce").to_numpy(dtype=float)
    unknown = ~(levels >= 1)  # NaN and nonsense like 0 or -1
    levels = np.where(unknown, rule.default_levels, levels)
    footprint = shapely.area(np.asarray(buildings.geometry.values, dtype=object))
    footprint = np.nan_to_num(footprint)
    raw = levels * footprint * rule.usable_share / rule.avg_dwelling_m2
    # np.round rounds half to even; the rule means half up, as a clerk would.
    households = np.where(residential, np.floor(raw + 0.5), 0).astype(np.int64)
    return buildings.assign(
        residential=residential,
        levels_used=levels,
        levels_default=unknown,
        households=households,
        households_estimated=True,
    )


def apportion(weights: np.ndarray | pd.Series, total: int) -> np.ndarray:
    """Split ``total`` into integers proportional to ``weights`` that add up exactly.

    Largest-remainder (Hamilton) method: everyone gets the floor of their quota, and the units
    left over go to the largest fractional remainders. Ties go to the earlier position, so the
    result is deterministic. Zero weights always get zero.
    """
    w = np.asarray(weights, dtype=float)
    if total < 0:
        raise InvalidInput(f"total must be >= 0, got {total}", field="total")
    if (w < 0).any() or not np.isfinite(w).all():
        raise InvalidInput("weights must be finite and >= 0", field="weights")
    if total == 0:
        return np.zeros(len(w), dtype=np.int64)
    if w.sum() <= 0:
        raise InvalidInput(f"cannot share {total} among zero weights", field="weights")
    quota = w * (total / w.sum())
    share = np.floor(quota).astype(np.int64)
    left = total - int(share.sum())
    order = np.lexsort((np.arange(len(w)), -(quota - share)))
    share[order[:left]] += 1
    return share


def scale_to_population(
    buildings: gpd.GeoDataFrame,
    populations: Mapping[Any, int],
    *,
    community_col: str,
    rule: HouseholdRule | None = None,
) -> gpd.GeoDataFrame:
    """Rescale estimated ``households`` so each community with a known population gets exactly
    ``round(population ÷ avg_household_size)`` households.

    Footprint estimates get the distribution right but not the level: in old centres many
    floors are empty, offices or holiday flats. The census gets the level right. Buildings keep
    their relative weights (largest-remainder rounding keeps totals exact); communities not in
    ``populations`` keep their raw estimate. Every community named must have some residential
    floor area, else the population would have nowhere to live.
    """
    rule = rule or HouseholdRule()
    if "households" not in buildings.columns:
        raise InvalidInput(
            "run estimate_households first: no 'households' column", field="buildings"
        )
    if community_col not in buildings.columns:
        raise InvalidInput(f"column {community_col!r} is missing", field="buildings")
    counts = buildings["households"].to_numpy(dtype=np.int64).copy()
    community = buildings[community_col].to_numpy()
    empty = []
    for code, population in populations.items():
        mask = community == code
        target = round(population / rule.avg_household_size)
        if target > 0 and counts[mask].sum() == 0:
            empty.append(str(code))
            continue
        counts[mask] = apportion(counts[mask], target)
    if empty:
        raise InvalidInput(
            f"no residential building to hold the population of {', '.join(empty)}",
            field=community_col,
        )
    return buildings.assign(households=counts, households_estimated=True)


def place_households(
    buildings: gpd.GeoDataFrame,
    counts: pd.Series,
    seed: int,
    *,
    community_col: str | None = None,
    populations: Mapping[Any, int] | None = None,
    avg_household_size: float = 2.3,
) -> gpd.GeoDataFrame:
    """Put ``counts[i]`` synthetic household points strictly inside building ``i``.

    Points are uniform inside each footprint (vectorised rejection sampling from the bounding
    box with one seeded generator, so the same seed gives the same points). Sizes are drawn per
    community so that their sum is exactly the community's population when known, otherwise
    ``round(n × avg_household_size)``: the average then matches, and grid population figures
    add up. Output columns: ``building_id`` (the building's index label), ``household``
    (0-based within the building), ``size``, ``lives_alone``, ``estimated`` (True), and the
    community column when given. Nothing else: no names, no identity fields.
    """
    _require_metric(buildings)
    if not counts.index.equals(buildings.index):
        raise InvalidInput("counts must be indexed like buildings", field="counts")
    n = counts.to_numpy(dtype=np.int64)
    if (n < 0).any():
        raise InvalidInput("household counts must be >= 0", field="counts")
    geoms = np.asarray(buildings.geometry.values, dtype=object)
    holding = n > 0
    unusable = holding & (shapely.is_missing(geoms) | ~(shapely.area(geoms) > 0))
    if unusable.any():
        labels = ", ".join(map(str, buildings.index[unusable][:10]))
        raise InvalidGeometry(f"buildings with households but no area: {labels}", field="geometry")

    rng = np.random.default_rng(seed)
    owner = np.repeat(np.arange(len(n)), n)
    x, y = _sample_inside(geoms, owner, rng)
    out = pd.DataFrame(
        {
            "building_id": buildings.index.to_numpy()[owner],
            "household": _rank_within(owner),
        }
    )
    if community_col is not None:
        out[community_col] = buildings[community_col].to_numpy()[owner]
        groups = out[community_col].to_numpy()
    else:
        groups = np.zeros(len(owner), dtype=np.int64)
    out["size"] = _sizes_by_group(groups, populations or {}, avg_household_size, rng)
    out["lives_alone"] = out["size"] == 1
    out["estimated"] = True
    return gpd.GeoDataFrame(out, geometry=gpd.points_from_xy(x, y), crs=buildings.crs)


# --- helpers ---------------------------------------------------------------------------------


def _require_metric(frame: gpd.GeoDataFrame) -> None:
    if frame.crs is None:
        raise CRSError("no CRS set; reproject to a metric CRS first", field="buildings")
    crs = CRS.from_user_input(frame.crs)
    if not crs.is_projected or crs.axis_info[0].unit_name not in ("metre", "meter"):
        raise CRSError(
            f"{crs.to_string()} is not a projected metric CRS; footprints would not be in m²",
            field="buildings",
        )


def _sample_inside(
    geoms: np.ndarray, owner: np.ndarray, rng: np.random.Generator, max_rounds: int = 200
) -> tuple[np.ndarray, np.ndarray]:
    """Uniform points strictly inside ``geoms[owner]``; rejected draws are redrawn together.

    A polygon that covers a tiny share of its box may still miss after ``max_rounds``; its
    leftover points fall back to the point on surface, which is inside by construction.
    """
    bounds = shapely.bounds(geoms)[owner]
    shapely.prepare(geoms)
    x = np.empty(len(owner))
    y = np.empty(len(owner))
    todo = np.arange(len(owner))
    for _ in range(max_rounds):
        if not len(todo):
            break
        b = bounds[todo]
        x[todo] = rng.uniform(b[:, 0], b[:, 2])
        y[todo] = rng.uniform(b[:, 1], b[:, 3])
        inside = shapely.contains_xy(geoms[owner[todo]], x[todo], y[todo])
        todo = todo[~inside]
    if len(todo):
        fallback = shapely.point_on_surface(geoms[owner[todo]])
        x[todo], y[todo] = shapely.get_x(fallback), shapely.get_y(fallback)
    return x, y


def _rank_within(owner: np.ndarray) -> np.ndarray:
    """0, 1, 2 … within each run of equal ``owner`` values (owner is sorted by np.repeat)."""
    if not len(owner):
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    run = np.repeat(starts, np.diff(np.r_[starts, len(owner)]))
    return np.arange(len(owner)) - run


def _sizes_by_group(
    groups: np.ndarray,
    populations: Mapping[Any, int],
    avg_household_size: float,
    rng: np.random.Generator,
) -> np.ndarray:
    sizes = np.zeros(len(groups), dtype=np.int64)
    for code in pd.unique(groups):
        mask = groups == code
        count = int(mask.sum())
        total = populations.get(code, round(count * avg_household_size))
        sizes[mask] = _draw_sizes(count, int(total), rng)
    return sizes


def _draw_sizes(count: int, total: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` sizes in 1…6 that add up to exactly ``total`` (clamped to what is possible).

    Start from 1 + Poisson(mean − 1), which gives a plausible skew (many singles and couples,
    few large households), then move single persons in or out of random households until the
    sum is exact.
    """
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    total = min(max(total, count), count * HOUSEHOLD_SIZE_MAX)
    sizes = np.clip(1 + rng.poisson(total / count - 1, count), 1, HOUSEHOLD_SIZE_MAX)
    while (diff := total - int(sizes.sum())) != 0:
        step = 1 if diff > 0 else -1
        room = np.flatnonzero(sizes < HOUSEHOLD_SIZE_MAX if step > 0 else sizes > 1)
        pick = rng.choice(room, size=min(abs(diff), len(room)), replace=False)
        sizes[pick] += step
    return sizes.astype(np.int64)
