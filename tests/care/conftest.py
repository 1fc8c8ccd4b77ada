"""The synthetic district at Karamay (in China, so GCJ-02/BD-09 apply), staff and a home.

A database of its own (``gridwork_test_care_<pid>``, dropped at the end) holding the
district's streets, communities, workers, grids, facilities and roads, imported with the real
importer; one household is added as the elders' home. Elder tables are emptied before each
test that asks for ``care``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from data.care.queries import make_position_partitions, position_partitions
from data.db import make_engine, transaction
from data.importing.loading import import_file
from data.models import Role, ScopeLevel
from data.settings import Settings
from geo.assignment.index import AreaIndex
from tests.factory import PASSWORD, Account, add_accounts, app_settings, count, database, sign_in

__all__ = ["PASSWORD"]
EPSG = 32645  # UTM 45N, the district's metric CRS
HOME_GRID = "S01-C01-G05"
OTHER_STREET_COMMUNITY = "S03-C17"
HOME_CODE = "H-CARE-1"


@dataclass(frozen=True)
class District:
    grids: gpd.GeoDataFrame  # code, worker_code, community_code, geometry (WGS-84)
    index: AreaIndex  # the grids, for the lowest-code rule in metres
    home_lon: float
    home_lat: float

    def grid_codes(self, lon: Any, lat: Any) -> list[str | None]:
        """Where geo.assignment.index puts WGS-84 points: what the database must agree with."""
        points = gpd.GeoSeries(gpd.points_from_xy(lon, lat), crs=4326).to_crs(EPSG)
        result = self.index.assign_points(points.x.to_numpy(), points.y.to_numpy(), snap_m=0)
        return list(result.code)

    def worker_of(self, grid_code: str | None) -> str:
        return str(self.grids.set_index("code").loc[grid_code, "worker_code"])


@pytest.fixture(scope="session")
def district(synthetic_district_path: Path) -> District:
    grids = gpd.read_file(synthetic_district_path, layer="grids")
    index = AreaIndex.from_wgs84(grids, epsg=EPSG)
    home = grids.set_index("code").loc[HOME_GRID, "geometry"].representative_point()
    return District(grids, index, float(home.x), float(home.y))


STAFF: dict[str, Account] = {
    "admin": Account("c-admin", Role.admin),
    "care_staff": Account("c-care", Role.care_staff, ((ScopeLevel.street, "S01"),)),
    "far_care": Account(
        "c-far-care", Role.care_staff, ((ScopeLevel.community, OTHER_STREET_COMMUNITY),)
    ),
    "home_worker": Account("c-home-worker", Role.grid_worker, ((ScopeLevel.grid, HOME_GRID),)),
    "planner": Account("c-planner", Role.planner, ((ScopeLevel.street, "S01"),)),
}


@pytest.fixture(scope="session")
def care_url(server_url: str, synthetic_district_path: Path, district: District) -> str:
    """A database per test session (named by pid), so parallel runs never drop each other's."""
    url = database(server_url, "gridwork_test_care")
    engine = make_engine(url)
    try:
        for kind in ("streets", "communities", "workers", "grids", "facilities", "roads"):
            import_file(engine, kind, synthetic_district_path, layer=kind)
        with transaction(engine) as session:
            session.execute(
                text(
                    "INSERT INTO household (code, size, lives_alone, age_band, estimated, geom) "
                    "VALUES (:c, 1, true, '80+', false, ST_SetSRID(ST_MakePoint(:x, :y), 4326))"
                ),
                {"c": HOME_CODE, "x": district.home_lon, "y": district.home_lat},
            )
        add_accounts(engine, STAFF.values())
    finally:
        engine.dispose()
    return url


@pytest.fixture(scope="session")
def care_engine(care_url: str) -> Iterator[Engine]:
    engine = make_engine(care_url)
    yield engine
    engine.dispose()


def care_settings(url: str, **overrides: Any) -> Settings:
    """:func:`tests.factory.app_settings`, devices not rate-limited, no background ticks."""
    values: dict[str, Any] = {"ingest_per_minute": 100_000, "care_tick_seconds": 0}
    values.update(overrides)
    return app_settings(url, **values)


@pytest.fixture(scope="session")
def care_app(care_engine: Engine, care_url: str) -> FastAPI:
    return create_app(care_settings(care_url), engine=care_engine)


@pytest.fixture(scope="session")
def client(care_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(care_app) as c:
        yield c


@pytest.fixture(scope="session")
def staff(client: TestClient) -> dict[str, dict[str, str]]:
    return {who: sign_in(client, account.username) for who, account in STAFF.items()}


ELDER_TABLES = "webhook_outbox, alert_recipient, alert, position, zone_state, safe_zone, device, "
ELDER_TABLES += "consent, elder"


@pytest.fixture
def care(care_engine: Engine) -> Engine:
    """No elder, device, position or alert left from an earlier test."""
    with care_engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {ELDER_TABLES} RESTART IDENTITY CASCADE"))
        conn.execute(text("DELETE FROM api_key WHERE name LIKE 'device:%'"))
    return care_engine


CONSENT = {
    "given_by": "the elder and her daughter",
    "given_on": str(date(2026, 1, 5)),
    "scope": "locate her when she is lost; alert the grid worker",
}


def enrol(
    client: TestClient,
    headers: dict[str, str],
    device_id: str,
    *,
    datum: str = "wgs84",
    consent: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "display_name": f"Elder of {device_id}",
        "household_code": HOME_CODE,
        "emergency_contact": "daughter +86 990 000 9999",
        "device": {"device_id": device_id, "datum": datum},
        **extra,
    }
    if consent:
        body["consent"] = CONSENT
    r = client.post("/elders", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


def osmand(
    client: TestClient,
    key: str,
    device_id: str,
    lon: float,
    lat: float,
    when: datetime,
    **extra: Any,
) -> Any:
    params = {
        "id": device_id,
        "lat": repr(lat),
        "lon": repr(lon),
        "timestamp": str(int(when.astimezone(UTC).timestamp())),
        "key": key,
    }
    params.update({k: str(v) for k, v in extra.items()})
    return client.get("/ingest/osmand", params=params)


def wait_until_blocked(engine: Engine, pending: Future[Any], *, within_s: float = 10.0) -> None:
    """Until some session of ``engine``'s database waits for a row lock (the request in
    ``pending`` reached it); fails if the request finished instead."""
    deadline = time.monotonic() + within_s
    while not count(
        engine,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock'",
    ):
        assert not pending.done(), "it did not wait: " + str(pending.result())
        assert time.monotonic() < deadline, "nothing ever waited for the lock"
        time.sleep(0.01)


def day_partitions(engine: Engine, days_back: int) -> set[str]:
    """Make ``position``'s day partitions from ``days_back`` days ago to today and name them.

    A database migrated today has day partitions only from its migration's day on, so a fix of
    last week lands in the default partition; a test about which days a read touches needs
    the days to exist first, or "the older days are not read" holds for want of them."""
    today = datetime.now(UTC).date()
    with transaction(engine) as session:
        made = make_position_partitions(
            session, first_day=date.fromordinal(today.toordinal() - days_back), last_day=today
        )
        assert made is not None, "the position table was busy: no partitions made"
        return set(position_partitions(session))
