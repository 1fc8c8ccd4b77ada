"""One uploaded file part of a multipart form: a case photo, a scanned consent form.

A request dependency: on a route that declares no form fields of its own it runs before
anything reads the body, so a body declaring more than the part's limit is refused with 413
before a byte of it is read; a chunked body without a length stops at the server's body
limit (``api.hardening.BodyLimit``) and its part is then held to the part's limit. What the
bytes are is decided later, by their content (``data.incidents.photos.clean``,
``data.care.consent_scan.clean``), never by the file name or the declared type.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from starlette.datastructures import UploadFile

from api.state import app_state
from data.care import consent_scan
from data.incidents import photos
from geo.errors import PayloadTooLarge

#: Room for the multipart framing and a form's other fields next to the file.
FORM_ROOM = 64 * 1024


def file_part(
    field: str, limit_of: Callable[[Request], int]
) -> Callable[[Request], Awaitable[bytes | None]]:
    """A dependency reading the bytes of the form's ``field`` part (None: no file chosen, or
    not a multipart body), refused as too big past ``limit_of(request)`` bytes."""

    async def read(request: Request) -> bytes | None:
        limit = limit_of(request)
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit + FORM_ROOM:
            raise PayloadTooLarge(f"too big: at most {limit:,} bytes", field=field)
        media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media != "multipart/form-data":
            return None
        form = await request.form(max_files=1, max_fields=20)
        part = form.get(field)
        if not isinstance(part, UploadFile) or (not part.filename and not part.size):
            return None  # a browser sends an empty part when no file was chosen
        data = await part.read(limit + 1)
        if len(data) > limit:
            raise PayloadTooLarge(f"too big: at most {limit:,} bytes", field=field)
        return data

    return read


#: A case photo, up to ``GRIDWORK_PHOTO_MAX_BYTES``.
PhotoDep = Annotated[
    bytes | None,
    Depends(file_part(photos.FIELD, lambda request: app_state(request).settings.photo_max_bytes)),
]
#: A scanned consent form, up to ``data.care.consent_scan.MAX_BYTES``.
ScanDep = Annotated[
    bytes | None, Depends(file_part(consent_scan.FIELD, lambda _: consent_scan.MAX_BYTES))
]


def multipart_body(field: str) -> dict[str, object]:
    """OpenAPI for a route whose body is one required file part: the dependency reads the
    form itself, so FastAPI cannot describe it (``openapi_extra=``)."""
    schema = {
        "type": "object",
        "required": [field],
        "properties": {field: {"type": "string", "format": "binary"}},
    }
    return {
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {"schema": schema}},
        }
    }
