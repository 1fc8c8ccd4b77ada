"""Request dependencies: the database session and range-checked query parameters."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, FastAPI, Query, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from api.security import Principal, require
from api.state import app_state
from data.coverage.service import NetworkCache
from data.crs import metric_epsg, require_epsg
from data.policy import Action
from geo.errors import InvalidInput


def get_engine(request: Request) -> Engine:
    return app_state(request).engine


def get_session(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Session]:
    """A session per request, one transaction: an error rolls back everything it wrote.

    It commits *before* the response is sent (``scope="function"``), so an audit row that
    cannot be written stops the answer instead of being lost after the data went out.
    """
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def get_read_session(request: Request) -> Iterator[Session]:
    """The session of a route that reads only what is not personal (grids, layers, maps,
    coverage): on the standby of ``GRIDWORK_READ_DATABASE_URL`` while it is up and close
    behind, else on the primary, read-only either way (:mod:`data.replica`); with no
    standby, exactly :func:`get_session`. Never for a route that writes, nor for an audited
    read: its audit row belongs in the same transaction on the primary."""
    state = app_state(request)
    if state.reads is None:
        yield from get_session(state.engine)
        return
    with state.reads.session() as session:
        yield session


# The one switch between primary and standby: a route reads the standby iff it takes this.
ReadSessionDep = Annotated[Session, Depends(get_read_session, scope="function")]

BBox = tuple[float, float, float, float]


def parse_bbox(value: str, *, field: str = "bbox") -> BBox:
    """``minlon,minlat,maxlon,maxlat`` in WGS-84, refusing swapped or out-of-range values."""
    parts = value.split(",")
    if len(parts) != 4:
        raise InvalidInput("expected four numbers: minlon,minlat,maxlon,maxlat", field=field)
    try:
        minx, miny, maxx, maxy = (float(p) for p in parts)
    except ValueError as exc:
        raise InvalidInput("not a number in 'minlon,minlat,maxlon,maxlat'", field=field) from exc
    if not all(math.isfinite(v) for v in (minx, miny, maxx, maxy)):
        raise InvalidInput("values must be finite numbers", field=field)
    if not (-180 <= minx <= 180 and -180 <= maxx <= 180):
        raise InvalidInput("longitude outside -180..180", field=field)
    if not (-90 <= miny <= 90 and -90 <= maxy <= 90):
        raise InvalidInput("latitude outside -90..90 (are lon and lat swapped?)", field=field)
    if minx > maxx or miny > maxy:
        raise InvalidInput("min is greater than max", field=field)
    return minx, miny, maxx, maxy


def bbox_query(
    bbox: Annotated[
        str | None,
        Query(description="minlon,minlat,maxlon,maxlat (WGS-84)", max_length=200),
    ] = None,
) -> BBox | None:
    return None if bbox is None else parse_bbox(bbox)


BBoxDep = Annotated[BBox | None, Depends(bbox_query)]
LimitDep = Annotated[int, Query(ge=1, le=10_000, description="page size")]
OffsetDep = Annotated[int, Query(ge=0, le=10_000_000, description="features to skip")]
Reason = Annotated[
    str | None, Query(max_length=500, description="why personal data is read (audited)")
]


def network_cache(request: Request) -> NetworkCache:
    """The app's road-graph cache."""
    return app_state(request).network_cache


def care_epsg(request: Request, session: Session) -> int:
    """The deployment's metric CRS, looked up once per app (it never changes once chosen)."""
    return app_epsg(request.app, session)


def app_epsg(app: FastAPI, session: Session) -> int:
    """:func:`care_epsg` for code that holds the app rather than a request (start-up)."""
    state = app_state(app)
    if state.care_epsg is None:
        state.care_epsg = require_epsg(metric_epsg(session, state.settings.metric_epsg))
    return state.care_epsg


# --- the callers most routes name: a policy gate each (``data.policy``), one name across routers

#: Any member of staff, in their area: the district's layers, grids, plans and maps (no device).
Viewer = Annotated[Principal, Depends(require(Action.view_district))]
#: Who may plan grids: draft, edit and publish plans, change a grid's shape.
Planner = Annotated[Principal, Depends(require(Action.plan_grids))]
