"""The batch jobs on a dask LocalCluster give exactly the serial answers (real PostGIS).

One ``LocalCluster`` of two worker processes (one thread each) serves the module, so every
task and every scattered value really crosses a process boundary (pickled), as on a real
cluster. The data are Porto cut into strips (tests/gridded.py): two communities outside the
band, twelve facility kinds, 3,384 households.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
import shapely
from sqlalchemy import text

from data.access.queries import AreaScope
from data.batch.assign import assign_everything
from data.batch.coverage import cover_every_kind
from data.batch.plan import plan_oversized
from data.batch.runner import DaskRunner, SerialRunner, dask_runner
from data.coverage.service import NetworkCache, coverage
from data.db import transaction
from data.planning.service import UnitInputs
from data.settings import Settings
from geo.planning.split import Budget
from geo.planning.units import Units
from tests.factory import app_settings
from tests.gridded import Gridded

pytestmark = pytest.mark.db

# A short search: the test is about where the split runs, not how good it is.
QUICK = Budget(starts=1, rounds=1)


@pytest.fixture(scope="module")
def dask() -> Iterator[DaskRunner]:
    with dask_runner(workers=2, threads_per_worker=1, processes=True, window=3) as runner:
        yield runner


@pytest.fixture(scope="module")
def strips_settings(strips: Gridded) -> Settings:
    return app_settings(strips.url)


def test_every_oversized_community_gets_the_same_draft_on_dask(
    strips: Gridded, dask: DaskRunner, strips_settings: Settings
) -> None:
    serial = plan_oversized(
        strips.engine, SerialRunner(), settings=strips_settings, seed=3, budget=QUICK
    )
    spread = plan_oversized(strips.engine, dask, settings=strips_settings, seed=3, budget=QUICK)
    assert [c.community for c in serial.communities] == ["131208", "131214"]
    assert [c.community for c in spread.communities] == ["131208", "131214"]
    for one, other in zip(serial.communities, spread.communities, strict=True):
        assert one.error is None and other.error is None
        assert one.assignment is not None and other.assignment is not None
        assert one.grids >= 4
        pd.testing.assert_series_equal(one.assignment, other.assignment)
        assert one.plan_id != other.plan_id
        with transaction(strips.engine) as db:
            for plan in (one, other):  # each kept as a draft, unit by unit as split
                stored = {
                    int(u): str(g)
                    for u, g in db.execute(
                        text("SELECT unit, grid_code FROM plan_unit WHERE plan_id = :p"),
                        {"p": plan.plan_id},
                    ).all()
                }
                assert stored == {int(str(u)): str(g) for u, g in one.assignment.items()}
                status = db.execute(
                    text("SELECT status::text FROM plan WHERE id = :p"), {"p": plan.plan_id}
                ).scalar()
                assert status == "draft"


def test_a_community_the_geometry_engine_gives_up_on_is_reported_and_the_rest_planned(
    strips: Gridded, strips_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = UnitInputs.build
    calls: list[int] = []

    def first_fails(self: UnitInputs) -> Units:
        calls.append(1)
        if len(calls) == 1:
            raise shapely.errors.GEOSException("TopologyException: side location conflict")
        return built(self)

    monkeypatch.setattr(UnitInputs, "build", first_fails)
    batch = plan_oversized(
        strips.engine, SerialRunner(), settings=strips_settings, seed=3, budget=QUICK, write=False
    )
    first, second = batch.communities
    assert (first.community, second.community) == ("131208", "131214")
    assert first.assignment is None and first.error is not None
    assert first.error.startswith("the geometry engine could not cut this community")
    assert "side location conflict" in first.error
    assert second.error is None and second.assignment is not None and second.grids >= 4


def test_city_wide_coverage_of_every_kind_is_the_same_on_dask(
    strips: Gridded, dask: DaskRunner
) -> None:
    serial = cover_every_kind(strips.engine, SerialRunner(), minutes=10)
    spread = cover_every_kind(strips.engine, dask, minutes=10)
    assert [k.kind for k in serial.kinds] == [k.kind for k in spread.kinds]
    assert len(serial.kinds) == 12
    for one, other in zip(serial.kinds, spread.kinds, strict=True):
        pd.testing.assert_frame_equal(one.areas, other.areas)
    # … and the same numbers GET /coverage gives, kind by kind.
    with strips.engine.connect() as conn:
        for batch in (serial.kinds[0], serial.kinds[-1]):
            answer = coverage(
                conn,
                NetworkCache(),
                kind=batch.kind,
                minutes=10,
                scope=AreaScope.everywhere(),
                drawing=False,
            ).as_json()
            by_code = {a["code"]: a for a in answer["areas"]}
            assert set(by_code) == set(batch.areas.index)
            for code, row in batch.areas.iterrows():
                assert by_code[code]["households"] == row["households"]
                assert by_code[code]["covered_households"] == row["covered_households"]
    assert sum(int(k.areas["covered_households"].sum()) for k in serial.kinds) > 0


def test_bulk_reassignment_in_chunks_is_the_same_on_dask(
    strips: Gridded, dask: DaskRunner, strips_settings: Settings
) -> None:
    with transaction(strips.engine) as db:
        db.execute(text("UPDATE household SET grid_id = NULL, snapped = false"))
    serial = assign_everything(
        strips.engine, SerialRunner(), settings=strips_settings, tables=["household"], chunk=500
    )
    households = serial.tables[0]
    assert households.result.rows == 3384
    assert households.result.changed == households.result.rows
    with transaction(strips.engine) as db:
        stored: dict[int, int] = dict(
            db.execute(text("SELECT id, coalesce(grid_id, -1) FROM household")).tuples().all()
        )
        # the covering rule as PostGIS states it, lowest code on a shared edge
        covering: dict[int, int] = dict(
            db.execute(
                text(
                    "SELECT h.id, coalesce((SELECT g.id FROM grid g WHERE g.valid_to IS NULL "
                    'AND ST_Covers(g.geom, h.geom) ORDER BY g.code COLLATE "C" LIMIT 1), -1) '
                    "FROM household h"
                )
            )
            .tuples()
            .all()
        )
    assigned = dict(zip(households.ids.tolist(), households.grid.tolist(), strict=True))
    assert stored == assigned
    inside = [i for i, g in covering.items() if g >= 0]
    assert len(inside) > 3000
    assert all(assigned[i] == covering[i] for i in inside)

    spread = assign_everything(
        strips.engine, dask, settings=strips_settings, tables=["household"], chunk=500
    )
    again = spread.tables[0]
    assert again.result.changed == 0  # what the serial run stored is what the workers found
    np.testing.assert_array_equal(again.ids, households.ids)
    np.testing.assert_array_equal(again.grid, households.grid)
    np.testing.assert_array_equal(again.snapped, households.snapped)
    np.testing.assert_array_equal(again.distance_m, households.distance_m)
