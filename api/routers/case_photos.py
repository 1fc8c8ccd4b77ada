"""Photos of a case over HTTP: upload (multipart, part ``photo``), list, the photo and its
thumbnail. Thin: checking, stripping and storing are ``data.incidents.photos``.

Whoever sees the case sees its photos; whoever may handle cases adds them (a new report's
photo comes with the report form, ``api/routers/case_pages.py``). An upload that is not a
JPEG, PNG or WebP by its content, or is too big, is refused naming ``photo``; nothing stored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from api.case_viewer import case_viewer
from api.deps import SessionDep
from api.security import Principal, require
from api.state import app_state
from api.uploads import PhotoDep, multipart_body
from data.incidents import photos
from data.policy import Action
from geo.errors import InvalidInput

router = APIRouter(prefix="/cases", tags=["cases"])

Viewing = Annotated[Principal, Depends(require(Action.view_cases))]
Handling = Annotated[Principal, Depends(require(Action.handle_cases))]


def _with_urls(row: dict[str, Any]) -> dict[str, Any]:
    base = f"/cases/{row['case_id']}/photos/{row['id']}"
    return row | {"url": base, "thumbnail_url": f"{base}/thumbnail"}


@router.post(
    "/{case_id}/photos",
    status_code=201,
    summary="Add a photo (JPEG, PNG or WebP; its metadata, EXIF GPS included, is removed)",
    openapi_extra=multipart_body("photo"),
)
def upload(
    request: Request, principal: Handling, data: PhotoDep, session: SessionDep, case_id: int
) -> dict[str, Any]:
    if data is None:
        raise InvalidInput("required: a multipart/form-data part named 'photo'", field="photo")
    clean = photos.clean(data, max_bytes=app_state(request).settings.photo_max_bytes)
    row = photos.add(session, case_viewer(session, principal), case_id, clean, datetime.now(UTC))
    return _with_urls(row)


@router.get("/{case_id}/photos", summary="The photos of a case, oldest first")
def list_photos(session: SessionDep, principal: Viewing, case_id: int) -> dict[str, Any]:
    rows = photos.listing(session, case_viewer(session, principal), case_id)
    return {"photos": [_with_urls(r) for r in rows]}


def _image(
    session: SessionDep, principal: Principal, case_id: int, photo_id: int, *, thumb: bool
) -> Response:
    kind, body = photos.content(
        session, case_viewer(session, principal), case_id, photo_id, thumbnail=thumb
    )
    return Response(body, media_type=kind)


@router.get("/{case_id}/photos/{photo_id}", summary="A photo as stored (without metadata)")
def photo(session: SessionDep, principal: Viewing, case_id: int, photo_id: int) -> Response:
    return _image(session, principal, case_id, photo_id, thumb=False)


@router.get("/{case_id}/photos/{photo_id}/thumbnail", summary="A photo's thumbnail (320 px)")
def thumbnail(session: SessionDep, principal: Viewing, case_id: int, photo_id: int) -> Response:
    return _image(session, principal, case_id, photo_id, thumb=True)
