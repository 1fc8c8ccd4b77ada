"""Photo files for the case tests: a JPEG that carries a home's GPS position and a camera's
serial in its EXIF, and the check that a stored or served photo carries none of it."""

from __future__ import annotations

import io

from PIL import Image

GPS_LAT = (41.0, 8.0, 47.25)  # where the "reporter lives": must not survive
MAKER = "Acme Camera Serial 0042"


def jpeg_with_gps(size: tuple[int, int] = (800, 600), orientation: int = 6) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation  # rotate 90° on display
    exif[0x010F] = MAKER
    exif[0x8825] = {1: "N", 2: GPS_LAT, 3: "W", 4: (8.0, 36.0, 5.5)}
    out = io.BytesIO()
    Image.new("RGB", size, (180, 40, 40)).save(out, "JPEG", exif=exif.tobytes())
    data = out.getvalue()
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(0x8825)[2] == GPS_LAT  # really there
    return data


def no_metadata(blob: bytes) -> None:
    image = Image.open(io.BytesIO(blob))
    assert dict(image.getexif()) == {}
    assert not image.getexif().get_ifd(0x8825)
    assert b"Exif" not in blob and b"GPS" not in blob and MAKER.encode() not in blob
    assert not {"exif", "icc_profile", "xmp", "comment"} & set(image.info)
