"""The scanned consent form: checked by what it is, images stripped to their pixels, kept in
the database beside its consent (so a backup holds it), read only by the care staff of the
elder's home area.

A scan of a signed form is personal: it names the elder and the guardian, and a phone photo
of it carries EXIF (where and when it was taken, the phone). So the type is decided by the
content, never by the file name or the declared type: a PDF (``%PDF-`` … ``%%EOF``), a JPEG or
a PNG; an image is decoded and encoded again from its pixels alone (no EXIF, XMP, ICC or PNG
text), a PDF is kept as uploaded but refused if it holds scripts, launch actions or attached
files. A size and a pixel limit stop what would decode into a huge image.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import text

from data.access.queries import AreaScope, Db
from data.care import queries as q
from data.policy import Action
from geo.errors import InvalidInput, NotFound, PayloadTooLarge

FIELD = "scan"
MAX_BYTES = 5 * 1024 * 1024  # a few pages scanned at 300 dpi
MAX_PIXELS = 40_000_000
MAX_SIDE = 3508  # an A4 page at 300 dpi; larger scans are scaled down
_IMAGES = {"JPEG": "image/jpeg", "PNG": "image/png"}
# What a consent form has no business holding: scripts, actions run on opening, attachments.
_PDF_ACTIVE = re.compile(rb"/(?:JavaScript|JS|Launch|EmbeddedFile|OpenAction|AA|RichMedia)\b")


@dataclass(frozen=True)
class CleanScan:
    content_type: str
    original_bytes: int
    content: bytes


def _pdf(data: bytes) -> CleanScan:
    if b"%%EOF" not in data[-2048:]:
        raise InvalidInput("a damaged PDF (no end of file marker)", field=FIELD)
    if _PDF_ACTIVE.search(data):
        raise InvalidInput("a PDF with scripts, actions or attached files", field=FIELD)
    return CleanScan("application/pdf", len(data), data)


def _image(data: bytes) -> CleanScan:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=list(_IMAGES))
            if image.width * image.height > MAX_PIXELS:
                raise PayloadTooLarge.said("too_many_pixels", pixels=f"{MAX_PIXELS:,}", field=FIELD)
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PayloadTooLarge.said(
            "too_many_pixels", pixels=f"{MAX_PIXELS:,}", field=FIELD
        ) from exc
    except UnidentifiedImageError:
        raise InvalidInput("not a PDF, JPEG or PNG", field=FIELD) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise InvalidInput.said("damaged_image", why=str(exc)[:200], field=FIELD) from exc
    kind = str(image.format)
    try:
        upright = ImageOps.exif_transpose(image) or image
    except (OSError, ValueError, SyntaxError):
        upright = image
    mode = "L" if upright.mode in {"1", "L", "LA", "I;16"} else "RGB"
    upright = upright.convert(mode)
    if max(upright.size) > MAX_SIDE:
        upright.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    pixels = Image.frombytes(upright.mode, upright.size, upright.tobytes())  # nothing else
    out = io.BytesIO()
    if kind == "JPEG":
        pixels.save(out, "JPEG", quality=85, optimize=True)
    else:
        pixels.save(out, "PNG", optimize=True)
    return CleanScan(_IMAGES[kind], len(data), out.getvalue())


def clean(data: bytes, *, max_bytes: int = MAX_BYTES) -> CleanScan:
    """Check an uploaded scan and make what is stored; refuse (naming ``scan``) anything
    empty, too big, of another type, damaged, or a PDF that could run something."""
    if not data:
        raise InvalidInput("empty file", field=FIELD)
    if len(data) > max_bytes:
        raise PayloadTooLarge.said("too_big", bytes=f"{max_bytes:,}", field=FIELD)
    if data.startswith(b"%PDF-"):
        return _pdf(data)
    if data.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")):
        return _image(data)
    raise InvalidInput("not a PDF, JPEG or PNG (judged by its content)", field=FIELD)


def _consent_of(db: Db, elder_id: int, consent_id: int, scope: AreaScope) -> None:
    """404 unless the consent is this elder's and the caller is care staff of their home
    area (an open alert elsewhere does not open the consent record)."""
    q.elder_record(db, elder_id, scope, to=Action.enrol_elders)
    found = db.execute(
        text("SELECT 1 FROM consent WHERE id = :c AND elder_id = :e"),
        {"c": consent_id, "e": elder_id},
    ).first()
    if found is None:
        raise NotFound(f"no consent {consent_id} of elder {elder_id}", field="consent_id")


def store(
    db: Db, elder_id: int, consent_id: int, scan: CleanScan, *, scope: AreaScope, by: str
) -> dict[str, Any]:
    """Keep (or replace) the scan of one consent; what was stored, without its bytes."""
    _consent_of(db, elder_id, consent_id, scope)
    row = (
        db.execute(
            text(
                """
                INSERT INTO consent_scan (consent_id, content_type, original_bytes, content,
                                          uploaded_by)
                VALUES (:c, :t, :n, :b, :by)
                ON CONFLICT (consent_id) DO UPDATE SET content_type = EXCLUDED.content_type,
                    original_bytes = EXCLUDED.original_bytes, content = EXCLUDED.content,
                    uploaded_by = EXCLUDED.uploaded_by, uploaded_at = now()
                RETURNING consent_id, content_type, original_bytes,
                          octet_length(content) AS bytes, uploaded_at, uploaded_by
                """
            ),
            {
                "c": consent_id,
                "t": scan.content_type,
                "n": scan.original_bytes,
                "b": scan.content,
                "by": by,
            },
        )
        .mappings()
        .one()
    )
    return dict(row)


def read(db: Db, elder_id: int, consent_id: int, *, scope: AreaScope) -> tuple[str, bytes]:
    """The scan's type and bytes, for care staff of the elder's home area."""
    _consent_of(db, elder_id, consent_id, scope)
    row = db.execute(
        text("SELECT content_type, content FROM consent_scan WHERE consent_id = :c"),
        {"c": consent_id},
    ).first()
    if row is None:
        raise NotFound(f"consent {consent_id} has no scanned form", field="consent_id")
    return str(row[0]), bytes(row[1])


def scanned(db: Db, consent_ids: list[int]) -> set[int]:
    """Which of these consents have a scan (for the elder's page)."""
    rows = db.execute(
        text("SELECT consent_id FROM consent_scan WHERE consent_id = ANY(:ids)"),
        {"ids": consent_ids},
    )
    return {int(r[0]) for r in rows}
