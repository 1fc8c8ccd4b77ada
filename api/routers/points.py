"""Households, facilities and incidents: create, read, update, delete and bulk upload, each
answer carrying the row's assignment (grid, community, street, worker, snapped, distance).

Who may do what (a row outside the caller's area answers 404, as if it did not exist):

==============  ===============================  ==========================================
resource        read                             write
==============  ===============================  ==========================================
households      admin; grid workers (own grids);  admin; grid workers (own grids)
                care staff (their area)
facilities      every staff role (their area)    admin, planner, coordinator
incidents       every staff role (their area)    report: admin, coordinator, grid worker,
                                                 care staff; change: admin, coordinator, grid
                                                 worker; delete: admin
==============  ===============================  ==========================================

Planners and coordinators see households only as counts per grid
(``GET /grids/{code}/summary``); devices get 403 everywhere here. A grid worker's households
are those of the grids they work (``data.policy.WORKED_GRIDS_SQL``), whatever wider area
their account has for maps. Households and incidents (their texts) are personal data: every
answer that carries one (reads, and writes that echo it back) writes an audit row first, with
the optional ``reason``, and so does every removal of one. There is deliberately no
district-wide household list: households are listed per grid
(``GET /grids/{code}/households``).

A key (household code, facility or incident source id) stored outside the caller's area is
answered exactly like one that does not exist, by every route: 404 "no … in your area" for
reads, changes, deletes and creates, and the same words as an upload's reject (never an
update). Keys may not contain ``/`` (they could never be addressed in a path) or control
characters; uploads are held to the same limits as the JSON bodies, row by row.

A point is assigned when it is written, with the same index and rule as ``gridwork assign``;
writing a point outside one's own area is refused (403). Uploads (CSV with lon/lat columns,
or GeoJSON) are all-or-nothing unless ``allow_rejects``; the answer lists every row.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NamedTuple

import numpy as np
from fastapi import APIRouter, Depends, File, Query, Request, UploadFile, status
from fastapi import Path as PathParam
from pydantic import BaseModel, TypeAdapter, ValidationError
from sqlalchemy import text
from sqlalchemy.orm import Session

from api.deps import LimitDep, OffsetDep, ReadSessionDep, Reason, SessionDep, care_epsg
from api.grid_index import GridIndexDep, place_point
from api.schemas.points import (
    Facility,
    FacilityCreate,
    FacilityUpdate,
    GridHouseholds,
    Household,
    HouseholdCreate,
    HouseholdsUploaded,
    HouseholdUpdate,
    Incident,
    IncidentCreate,
    Incidents,
    IncidentUpdate,
    SourcesUploaded,
)
from api.security import Principal, audit_read, require
from data.access.queries import AreaScope
from data.assignment.points import (
    KINDS,
    PointKind,
    delete_point,
    existing_keys,
    get_point,
    household_scope,
    insert_point,
    keys_outside,
    list_points,
    missing,
    not_in_area,
    update_point,
)
from data.assignment.service import GridIndex, placement_columns
from data.care.service import follow_households
from data.district.grids import find_grid
from data.importing.importer import upsert
from data.importing.readers import Kind, read_layer
from data.models import IncidentStatus
from data.policy import Action
from geo.errors import GridworkError, ImportRejected, InvalidInput, RowReject

router = APIRouter(tags=["households, facilities, incidents"])


_UPLOAD_SUFFIXES = (".csv", ".geojson", ".json")
_MAX_UPLOAD_BYTES = 10 * 1024 * 1024


Upload = Annotated[UploadFile, File(description="CSV with lon/lat columns, or GeoJSON")]
AllowRejects = Annotated[bool, Query(description="store the good rows and report the rest")]
FileCrs = Annotated[
    int | None, Query(description="EPSG code for a file without one", ge=1, le=999_999)
]


def _who(action: Action) -> Any:
    return Depends(require(action))


# --- shared steps -----------------------------------------------------------------------------


def _scope(session: Session, principal: Principal, kind: PointKind) -> AreaScope:
    """Where the caller reads and writes rows of ``kind`` (households: ``household_scope``)."""
    if kind.table == "household":
        return household_scope(session, principal.scope, principal.role, principal.user_id)
    return principal.scope


def _location(body: BaseModel) -> tuple[float, float] | None:
    lon, lat = getattr(body, "lon", None), getattr(body, "lat", None)
    if (lon is None) != (lat is None):
        raise InvalidInput(
            "lon and lat must be given together", field="lon" if lon is None else "lat"
        )
    return None if lon is None or lat is None else (lon, lat)


def _fields(body: BaseModel, *, only_given: bool) -> dict[str, Any]:
    """The body's fields for storage: on create with their defaults, on update only those sent
    (an explicit null clears a field)."""
    values = body.model_dump(exclude_unset=only_given, exclude={"lon", "lat", "code", "source_id"})
    return {k: (v.value if hasattr(v, "value") else v) for k, v in values.items()}


def _visible(session: Session, kind: PointKind, key: str, scope: AreaScope) -> dict[str, Any]:
    row = get_point(session, kind, key, scope)
    if row is None:
        raise missing(kind, key)
    return row


def _audit(
    session: Session,
    request: Request,
    principal: Principal,
    kind: PointKind,
    keys: list[Any],
    reason: str | None,
) -> None:
    if kind.table in _PERSONAL:
        audit_read(
            session, request, principal, subject_type=kind.table, subject_ids=keys, reason=reason
        )


#: Tables whose rows are personal data: households, and incidents (their texts tell of people).
_PERSONAL = frozenset({"household", "incident"})


def _write(
    request: Request,
    session: Session,
    principal: Principal,
    index: GridIndex,
    kind: PointKind,
    key: str,
    body: BaseModel,
    *,
    create: bool,
) -> dict[str, Any]:
    """Store a new row (``create``) or the fields sent for an existing one, assigned to its
    grid where a location is given, and answer the stored row (audited, it echoes it back)."""
    scope = _scope(session, principal, kind)
    if create:
        location = _location(body)
        assert location is not None  # required fields of every *Create model
        insert_point(
            session,
            kind,
            key,
            _fields(body, only_given=False),
            lon=location[0],
            lat=location[1],
            placement=place_point(index, scope, *location),
            scope=scope,
        )
    else:
        _visible(session, kind, key, scope)
        location = _location(body)
        placement = place_point(index, scope, *location) if location else None
        update_point(
            session,
            kind,
            key,
            _fields(body, only_given=True),
            location=location,
            placement=placement,
        )
    if kind.table == "household" and location is not None:  # an elder's zone may follow
        follow_households(session, [key], epsg=care_epsg(request, session))
    _audit(session, request, principal, kind, [key], None)
    return _visible(session, kind, key, scope)


# --- the routes of one kind of point ---------------------------------------------------------


class _Op(NamedTuple):
    """Who may do one operation on a kind of point, and what the OpenAPI document calls it."""

    who: Action
    summary: str


@dataclass(frozen=True)
class _PointRoutes:
    """What the routes of households, facilities and incidents differ in: the models, the
    policy action and the words of each operation. The routes are written once, in
    :func:`_register`; the paths and operation ids follow from the kind."""

    kind: PointKind
    one: str  # one point of the kind, in the operation ids: create_household, read_household …
    row: type[BaseModel]  # the answer for one point
    create_body: type[BaseModel]
    update_body: type[BaseModel]
    uploaded: type[BaseModel]  # the answer to an upload
    create: _Op
    read: _Op  # a personal kind's reads (``_PERSONAL``) take a ``reason`` and are audited
    change: _Op
    remove: _Op
    upload: Action
    upload_doc: str  # the upload route's description


def _register(routes: _PointRoutes) -> None:
    """``POST /{kind}``, ``GET|PATCH|DELETE /{kind}/{key}`` and ``POST /{kind}/upload``.

    The handlers are the same for every kind. What is the kind's own in their signatures (the
    body's model, the policy dependency, the key's name in the path) is set on their
    annotations before FastAPI reads them: a type chosen at run time cannot be spelt in a
    ``def`` whose annotations are strings."""
    kind, one = routes.kind, routes.one
    item = f"/{kind.name}/{{{kind.key}}}"

    def create(
        request: Request,
        session: SessionDep,
        principal: Principal,
        index: GridIndexDep,
        body: BaseModel,
    ) -> dict[str, Any]:
        # Only an incident may come without its key (``IncidentCreate``): it is given one.
        key = getattr(body, kind.key) or f"api-{uuid.uuid4().hex[:16]}"
        return _write(request, session, principal, index, kind, key, body, create=True)

    def read(session: ReadSessionDep, principal: Principal, key: str) -> dict[str, Any]:
        return _visible(session, kind, key, _scope(session, principal, kind))

    def read_audited(
        request: Request, session: SessionDep, principal: Principal, key: str, reason: Reason = None
    ) -> dict[str, Any]:
        row = read(session, principal, key)
        _audit(session, request, principal, kind, [key], reason)
        return row

    def change(
        request: Request,
        session: SessionDep,
        principal: Principal,
        index: GridIndexDep,
        key: str,
        body: BaseModel,
    ) -> dict[str, Any]:
        return _write(request, session, principal, index, kind, key, body, create=False)

    def remove(request: Request, session: SessionDep, principal: Principal, key: str) -> None:
        read(session, principal, key)  # 404 outside the caller's area
        delete_point(session, kind, key)
        # A personal kind's removal is audited like its writes: who removed whose record.
        _audit(session, request, principal, kind, [key], None)

    def upload(
        request: Request,
        session: SessionDep,
        principal: Principal,
        index: GridIndexDep,
        file: Upload,
        allow_rejects: AllowRejects = False,
        crs: FileCrs = None,
    ) -> dict[str, Any]:
        return _upload(
            request, session, principal, index, kind, file, allow_rejects=allow_rejects, crs=crs
        )

    def add(
        method: str,
        path: str,
        endpoint: Callable[..., Any],
        op: _Op,
        *,
        name: str,
        body: type[BaseModel] = BaseModel,
        **route: Any,
    ) -> None:
        """Route ``endpoint`` with the kind's types on its parameters (those it lacks, unused)."""
        endpoint.__annotations__ = {
            **endpoint.__annotations__,
            "principal": Annotated[Principal, Depends(require(op.who))],
            "key": Annotated[str, PathParam(alias=kind.key)],
            "body": body,
        }
        router.add_api_route(
            path, endpoint, methods=[method], name=name, summary=op.summary, **route
        )

    row = routes.row
    add(
        "POST",
        f"/{kind.name}",
        create,
        routes.create,
        name=f"create_{one}",
        body=routes.create_body,
        response_model=row,
        status_code=status.HTTP_201_CREATED,
    )
    read_one = read_audited if kind.table in _PERSONAL else read
    add("GET", item, read_one, routes.read, name=f"read_{one}", response_model=row)
    add(
        "PATCH",
        item,
        change,
        routes.change,
        name=f"change_{one}",
        body=routes.update_body,
        response_model=row,
    )
    add(
        "DELETE",
        item,
        remove,
        routes.remove,
        name=f"remove_{one}",
        status_code=status.HTTP_204_NO_CONTENT,
    )
    add(
        "POST",
        f"/{kind.name}/upload",
        upload,
        _Op(routes.upload, f"Bulk upload of {kind.name} (CSV or GeoJSON)"),
        name=f"upload_{kind.name}",
        response_model=routes.uploaded,
        description=routes.upload_doc,
    )


_ROWS_AND_GRIDS = (
    "All-or-nothing unless ``allow_rejects``; the answer lists every row and its grid."
)

# --- households ---------------------------------------------------------------------------

HOUSEHOLDS = KINDS["households"]

_register(
    _PointRoutes(
        HOUSEHOLDS,
        "household",
        Household,
        HouseholdCreate,
        HouseholdUpdate,
        HouseholdsUploaded,
        create=_Op(
            Action.edit_households, "Register a household at a point; it is assigned to its grid"
        ),
        read=_Op(Action.read_households, "One household with its grid (audited)"),
        change=_Op(Action.edit_households, "Change a household; a move reassigns it"),
        remove=_Op(Action.edit_households, "Remove a household"),
        upload=Action.edit_households,
        upload_doc=_ROWS_AND_GRIDS,
    )
)


@router.get(
    "/grids/{code}/households",
    response_model=GridHouseholds,
    summary="The households of one grid (audited)",
)
def grid_households(
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, _who(Action.read_households)],
    code: str,
    reason: Reason = None,
    limit: LimitDep = 500,
    offset: OffsetDep = 0,
) -> dict[str, Any]:
    scope = _scope(session, principal, HOUSEHOLDS)
    grid = find_grid(session, code, scope)
    rows, total = list_points(
        session, HOUSEHOLDS, scope, grid_id=grid.id, limit=limit, offset=offset
    )
    _audit(session, request, principal, HOUSEHOLDS, [r["code"] for r in rows], reason)
    return {"grid": grid.code, "total": total, "households": rows}


# --- facilities ---------------------------------------------------------------------------

FACILITIES = KINDS["facilities"]

_register(
    _PointRoutes(
        FACILITIES,
        "facility",
        Facility,
        FacilityCreate,
        FacilityUpdate,
        SourcesUploaded,
        create=_Op(Action.edit_facilities, "Add a facility at a point"),
        read=_Op(Action.view_district, "One facility with its grid"),
        change=_Op(Action.edit_facilities, "Change a facility; a move reassigns it"),
        remove=_Op(Action.edit_facilities, "Remove a facility"),
        upload=Action.edit_facilities,
        upload_doc=_ROWS_AND_GRIDS,
    )
)

# --- incidents ----------------------------------------------------------------------------

INCIDENTS = KINDS["incidents"]

_register(
    _PointRoutes(
        INCIDENTS,
        "incident",
        Incident,
        IncidentCreate,
        IncidentUpdate,
        SourcesUploaded,
        create=_Op(Action.report_incidents, "Report an incident at a point"),
        read=_Op(Action.view_district, "One incident with its grid (audited)"),
        change=_Op(Action.handle_incidents, "Change an incident (status, place …)"),
        remove=_Op(Action.delete_incidents, "Remove an incident"),
        upload=Action.upload_incidents,
        upload_doc="All-or-nothing unless ``allow_rejects``; a row without a location is a reject.",
    )
)


@router.get(
    "/incidents",
    response_model=Incidents,
    summary="Incidents of my area, by status and grid (audited)",
)
def list_incidents(
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, _who(Action.view_district)],
    status_: Annotated[IncidentStatus | None, Query(alias="status")] = None,
    grid: Annotated[str | None, Query(max_length=64)] = None,
    limit: LimitDep = 100,
    offset: OffsetDep = 0,
    reason: Reason = None,
) -> dict[str, Any]:
    grid_id = find_grid(session, grid, principal.scope).id if grid else None
    rows, total = list_points(
        session,
        INCIDENTS,
        principal.scope,
        grid_id=grid_id,
        status=status_.value if status_ else None,
        limit=limit,
        offset=offset,
    )
    _audit(session, request, principal, INCIDENTS, [r["source_id"] for r in rows], reason)
    return {"total": total, "incidents": rows}


# --- bulk upload ----------------------------------------------------------------------------


def _read_upload(upload: UploadFile, kind: Kind, crs: int | None) -> Any:
    name = Path(upload.filename or "").name
    if not name.lower().endswith(_UPLOAD_SUFFIXES):
        raise InvalidInput(
            f"'{name}' is not a CSV or GeoJSON file (.csv, .geojson, .json)", field="file"
        )
    content = upload.file.read(_MAX_UPLOAD_BYTES + 1)
    if len(content) > _MAX_UPLOAD_BYTES:
        raise InvalidInput(f"larger than {_MAX_UPLOAD_BYTES:,} bytes", field="file")
    with tempfile.TemporaryDirectory(prefix="gridwork-upload-") as folder:
        path = Path(folder) / ("upload" + Path(name).suffix.lower())
        path.write_bytes(content)
        try:
            return read_layer(path, kind=kind, crs=crs)
        except GridworkError:
            raise
        except Exception as exc:  # a file GDAL cannot make sense of is the caller's problem
            raise InvalidInput(f"cannot read the file: {exc}", field="file") from exc


def _upload(
    request: Request,
    session: Session,
    principal: Principal,
    index: GridIndex,
    kind: PointKind,
    upload: UploadFile,
    *,
    allow_rejects: bool,
    crs: int | None,
) -> dict[str, Any]:
    result = _read_upload(upload, kind.name, crs)  # type: ignore[arg-type]
    frame = result.frame
    key = kind.key
    if key not in frame.columns:
        raise InvalidInput(f"the file has no '{key}' column", field="file")
    if "_row" not in frame.columns:
        frame = frame.assign(_row=np.arange(1, len(frame) + 1))
    scope = _scope(session, principal, kind)
    rejects: list[RowReject] = list(result.rejects) + _limit_rejects(kind, frame)
    if len(frame) and not scope.unrestricted:
        placed = index.assign(frame.geometry.x.to_numpy(), frame.geometry.y.to_numpy())
        allowed = scope.grid_ids or frozenset()
        grid_ids = np.append(index.grid_id, -1)[placed.area]
        rejects += [
            RowReject(int(row), "the point lies outside your area", str(k))
            for row, k, g in zip(frame["_row"], frame[key], grid_ids, strict=True)
            if int(g) not in allowed
        ]
        # A key stored outside the area is answered like a missing one, and never updated.
        elsewhere = keys_outside(session, kind, [str(k) for k in frame[key]], scope)
        rejects += [
            RowReject(int(row), not_in_area(kind, str(k)), str(k))
            for row, k in zip(frame["_row"], frame[key], strict=True)
            if str(k) in elsewhere
        ]
    bad = {r.row for r in rejects}
    frame = frame[~frame["_row"].isin(bad)]
    rejects.sort(key=lambda r: r.row)
    if rejects and not allow_rejects:
        raise ImportRejected(Path(upload.filename or "upload").name, rejects)
    keys = [str(k) for k in frame[key]]
    before = existing_keys(session, kind, keys)
    # Each row is written once, with its grid (the index's answer on the very coordinates
    # stored), instead of inserted and then updated by assign_keys.
    report = upsert(
        session,
        kind.name,
        frame.assign(**placement_columns(index, frame.geometry.x, frame.geometry.y)),
        source=Path(upload.filename or "upload").name,
        allow_rejects=allow_rejects,
        placed=True,
        name_updated=True,
    )
    rejects += report.rejects
    rejected_rows = {r.row for r in rejects}
    stored = [k for k, r in zip(keys, frame["_row"], strict=True) if int(r) not in rejected_rows]
    assigned = _assignments(session, kind, stored)
    lines = [
        {
            "row": int(r),
            kind.key: k,
            "status": _status(k, before, report.updated_keys or frozenset()),
            **assigned[k],
        }
        for k, r in zip(keys, frame["_row"], strict=True)
        if int(r) not in rejected_rows
    ]
    _audit(session, request, principal, kind, stored, None)
    return {
        "inserted": sum(1 for line in lines if line["status"] == "inserted"),
        "updated": sum(1 for line in lines if line["status"] == "updated"),
        "unchanged": sum(1 for line in lines if line["status"] == "unchanged"),
        "rejected": len({r.row for r in rejects}),  # rows; a row may have two reasons
        "rows": lines,
        "rejects": [{"row": r.row, kind.key: r.source_id, "reason": r.reason} for r in rejects],
    }


def _status(key: str, before: Collection[str], updated: Collection[str]) -> str:
    """An uploaded row's fate: new, stored and changed, or stored as it was (not written)."""
    if key not in before:
        return "inserted"
    return "updated" if key in updated else "unchanged"


def _field_check(model: type[BaseModel], name: str) -> TypeAdapter[Any]:
    """The JSON body's rule for one field (type, range, length, pattern), for file rows."""
    info = model.model_fields[name]
    annotation: Any = info.annotation
    if info.metadata:
        annotation = Annotated[(annotation, *info.metadata)]
    return TypeAdapter(annotation)


#: Per kind: the upload frame's column → (the JSON field it is held to, its rule).
_UPLOAD_LIMITS: dict[str, dict[str, tuple[str, TypeAdapter[Any]]]] = {
    "households": {
        "code": ("code", _field_check(HouseholdCreate, "code")),
        "size": ("size", _field_check(HouseholdCreate, "size")),
        "building_source_id": ("building", _field_check(HouseholdCreate, "building")),
    },
    "facilities": {
        "source_id": ("source_id", _field_check(FacilityCreate, "source_id")),
        "kind": ("kind", _field_check(FacilityCreate, "kind")),
        "name": ("name", _field_check(FacilityCreate, "name")),
        "capacity": ("capacity", _field_check(FacilityCreate, "capacity")),
    },
    "incidents": {
        "source_id": ("source_id", _field_check(IncidentCreate, "source_id")),
        "category": ("category", _field_check(IncidentCreate, "category")),
        "summary": ("summary", _field_check(IncidentCreate, "summary")),
    },
}


def _limit_rejects(kind: PointKind, frame: Any) -> list[RowReject]:
    """One reject per value a JSON body could not carry either, naming row, field and limit."""
    rejects: list[RowReject] = []
    for column, (field, check) in _UPLOAD_LIMITS[kind.name].items():
        if column not in frame.columns:
            continue
        for row, value, k in zip(frame["_row"], frame[column], frame[kind.key], strict=True):
            if value is None or (isinstance(value, float) and np.isnan(value)):
                continue
            try:
                check.validate_python(value)
            except ValidationError as exc:
                rejects.append(RowReject(int(row), f"{field}: {_limit_text(exc)}", str(k)))
    return rejects


def _limit_text(exc: ValidationError) -> str:
    error = exc.errors()[0]
    if error["type"] == "value_error":  # the domain's sentence (a key, geo.assignment.keys)
        return str(error["ctx"]["error"])
    return str(error["msg"])


def _assignments(session: Session, kind: PointKind, keys: list[str]) -> dict[str, dict[str, Any]]:
    rows = session.execute(
        text(
            f"SELECT t.{kind.key}, g.code, t.snapped, t.assign_distance_m FROM {kind.table} t "  # noqa: S608
            f"LEFT JOIN grid g ON g.id = t.grid_id WHERE t.{kind.key} = ANY(:keys)"
        ),
        {"keys": keys},
    ).all()
    return {
        str(k): {
            "grid": grid,
            "snapped": bool(snapped),
            "distance_m": None if d is None else round(float(d), 3),
        }
        for k, grid, snapped, d in rows
    }
