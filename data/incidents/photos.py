"""Photos of a case: checked by what they are, stripped of everything but their pixels, kept
in the database (so a backup holds them) with a thumbnail.

A photo's EXIF can carry the GPS position where it was taken, which for a resident's report
is often their home; camera serials and owner names travel the same way. So no uploaded file
is ever stored as it came: its pixels are decoded (Pillow), turned upright by the EXIF
orientation, copied into a fresh image that carries no metadata at all (EXIF, XMP, ICC, PNG
text) and encoded again. The type is decided by the content, never by the file name or the
declared type; only JPEG, PNG and WebP are accepted, and a size and pixel limit stop a small
file that decodes into a huge image.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import MappingResult, text

from data.access.queries import Db
from data.incidents import queries as q
from data.incidents.queries import Viewer
from geo.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge

#: Pillow format → the content type stored and served.
TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
#: The stored type → the file name extension a photo's address ends with.
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}
MAX_PIXELS = 40_000_000  # a 40-megapixel camera; more is a decompression bomb, not a photo
MAX_SIDE = 4096  # larger photos are scaled down: enough to read a sign or a meter
THUMB_SIDE = 320
PER_CASE = 20
FIELD = "photo"


@dataclass(frozen=True)
class CleanPhoto:
    """A photo as stored: re-encoded without metadata, and its thumbnail (same type)."""

    content_type: str
    width: int
    height: int
    original_bytes: int
    image: bytes
    thumbnail: bytes


def _open(data: bytes) -> Image.Image:
    """The decoded image, or why not: not an image, an unsupported type, too many pixels."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=list(TYPES))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PayloadTooLarge.said(
            "too_many_pixels", pixels=f"{MAX_PIXELS:,}", field=FIELD
        ) from exc
    except UnidentifiedImageError:
        raise _unsupported(data) from None
    except (OSError, ValueError, SyntaxError) as exc:  # a header that starts right, then breaks
        raise InvalidInput.said("damaged_image", why=str(exc)[:200], field=FIELD) from exc
    if image.width * image.height > MAX_PIXELS:
        raise PayloadTooLarge.said("too_many_pixels", pixels=f"{MAX_PIXELS:,}", field=FIELD)
    try:
        image.load()
    except (OSError, ValueError, SyntaxError) as exc:
        why = f"{image.format}: {exc}"[:200]
        raise InvalidInput.said("damaged_image", why=why, field=FIELD) from exc
    return image


def _unsupported(data: bytes) -> InvalidInput:
    """The refusal of a file that is not JPEG, PNG or WebP, naming its type if it is an
    image at all (read from its header only: nothing else is decoded)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kind = Image.open(io.BytesIO(data)).format
    except Exception:  # any failure to identify it means: not an image
        kind = None
    if kind:
        return InvalidInput.said("unsupported_image", kind=kind, field=FIELD)
    return InvalidInput.said("not_an_image", field=FIELD)


def _pixels_only(image: Image.Image, kind: str) -> Image.Image:
    """A fresh image of the same pixels, upright, carrying no metadata at all."""
    try:
        upright = ImageOps.exif_transpose(image) or image
    except (OSError, ValueError, SyntaxError):  # unreadable EXIF: keep the pixels as they are
        upright = image
    if kind == "JPEG":
        target = "L" if upright.mode == "L" else "RGB"
    elif upright.mode in {"RGB", "RGBA", "L", "LA"}:
        target = upright.mode
    else:  # palette, CMYK, 16-bit…: keep transparency if there is any
        alpha = "A" in upright.getbands() or "transparency" in upright.info
        target = "RGBA" if alpha else "RGB"
    if upright.mode != target:
        upright = upright.convert(target)
    if max(upright.size) > MAX_SIDE:
        upright = upright.copy()
        upright.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    return Image.frombytes(upright.mode, upright.size, upright.tobytes())


def _encode(image: Image.Image, kind: str) -> bytes:
    out = io.BytesIO()
    if kind == "JPEG":
        image.save(out, "JPEG", quality=85, optimize=True)
    elif kind == "WEBP":
        image.save(out, "WEBP", quality=85, method=4)
    else:
        image.save(out, "PNG", optimize=True)
    return out.getvalue()


def clean(data: bytes, *, max_bytes: int) -> CleanPhoto:
    """Check an uploaded file and re-encode it without metadata; refuse (naming ``photo``)
    anything that is empty, too big, not an image, or of another type."""
    if not data:
        raise InvalidInput("empty file", field=FIELD)
    if len(data) > max_bytes:
        raise PayloadTooLarge.said("too_big", bytes=f"{max_bytes:,}", field=FIELD)
    image = _open(data)
    kind = str(image.format)
    pixels = _pixels_only(image, kind)
    thumb = pixels.copy()
    thumb.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.LANCZOS)
    return CleanPhoto(
        content_type=TYPES[kind],
        width=pixels.width,
        height=pixels.height,
        original_bytes=len(data),
        image=_encode(pixels, kind),
        thumbnail=_encode(thumb, kind),
    )


# --- storing and reading ---------------------------------------------------------------------

PHOTO_COLUMNS = (
    "p.id, p.case_id, p.content_type, p.width, p.height, p.original_bytes, "
    "octet_length(p.image) AS bytes, p.created_at, p.uploaded_by"
)


def add(db: Db, who: Viewer, case_id: int, photo: CleanPhoto, now: datetime) -> dict[str, Any]:
    """Store a cleaned photo on a case the caller sees, with its history entry."""
    q.case(db, case_id, who, lock=True)
    count = db.execute(
        text("SELECT count(*) FROM case_photo WHERE case_id = :id"), {"id": case_id}
    ).scalar_one()
    if count >= PER_CASE:
        raise Conflict.said("photos_full", most=PER_CASE, field=FIELD)
    photo_id = db.execute(
        text(
            "INSERT INTO case_photo (case_id, content_type, width, height, original_bytes, "
            "image, thumbnail, created_at, uploaded_by) VALUES (:case_id, :type, :w, :h, "
            ":size, :image, :thumb, :now, :who) RETURNING id"
        ),
        {
            "case_id": case_id,
            "type": photo.content_type,
            "w": photo.width,
            "h": photo.height,
            "size": photo.original_bytes,
            "image": photo.image,
            "thumb": photo.thumbnail,
            "now": now,
            "who": who.name,
        },
    ).scalar_one()
    q.add_event(db, case_id, at=now, actor=who.name, kind="photo", note=f"photo {photo_id}")
    return listing(db, who, case_id, photo_id=int(photo_id))[0]


def _rows(db: Db, columns: str, case_id: int, photo_id: int | None) -> MappingResult:
    """``columns`` of a case's photos (or of one), oldest first: every read of photos."""
    return db.execute(
        text(
            f"SELECT {columns} FROM case_photo p WHERE p.case_id = :id "  # noqa: S608
            "AND (CAST(:pid AS integer) IS NULL OR p.id = :pid) ORDER BY p.id"
        ),
        {"id": case_id, "pid": photo_id},
    ).mappings()


def listing(
    db: Db, who: Viewer, case_id: int, *, photo_id: int | None = None
) -> list[dict[str, Any]]:
    """The photos of a case the caller sees (without their bytes), oldest first."""
    q.case(db, case_id, who)
    return [dict(r) for r in _rows(db, PHOTO_COLUMNS, case_id, photo_id)]


def content(
    db: Db, who: Viewer, case_id: int, photo_id: int, *, thumbnail: bool
) -> tuple[str, bytes]:
    """A photo's type and bytes (or its thumbnail's), if the caller sees its case."""
    q.case(db, case_id, who)
    return stored(db, case_id, photo_id, thumbnail=thumbnail)


def stored(db: Db, case_id: int, photo_id: int, *, thumbnail: bool = False) -> tuple[str, bytes]:
    """A photo's type and bytes as stored (no metadata), once the caller has decided who
    may see it: :func:`content` for staff, ``open311.media`` for a request's readers."""
    column = "p.thumbnail" if thumbnail else "p.image"
    row = _rows(db, f"p.content_type, {column} AS bytes", case_id, photo_id).first()
    if row is None:
        raise NotFound(f"no photo {photo_id} on case {case_id}", field="photo_id")
    return str(row["content_type"]), bytes(row["bytes"])
