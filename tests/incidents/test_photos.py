"""Case photos on real PostGIS: the type is read from the content, every piece of metadata
(EXIF GPS first) is gone from the stored photo and its thumbnail, too-big and non-image
uploads are refused naming ``photo`` with nothing stored, only those who see the case see its
photos, the pages upload and show them, and a photo survives backup → restore."""

from __future__ import annotations

import io
import random
import struct
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import Engine, text

from data.access.queries import AreaScope
from data.backup import backup, restore
from data.db import make_engine, transaction
from data.incidents import photos, service
from data.settings import Settings
from tests.factory import database, make_app, sign_in
from tests.incidents.conftest import PEOPLE, inside
from tests.incidents.photo_files import MAKER, jpeg_with_gps, no_metadata

Auth = dict[str, dict[str, str]]
HTML = {"Accept": "text/html", "Accept-Language": "en"}


def _image(kind: str, size: tuple[int, int] = (64, 48), mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, (10, 120, 10) if mode == "RGB" else 0).save(out, kind)
    return out.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares a huge image in a few bytes (a decompression bomb's header)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _case(client: TestClient, auth: Auth, engine: Engine, who: str = "worker") -> int:
    lon, lat = inside(engine, "131208-G01")
    body = {"category": "leaking_pipe", "lon": lon, "lat": lat, "description": "pipe burst"}
    r = client.post("/cases", json=body, headers=auth[who])
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _upload(
    client: TestClient, headers: dict[str, str], case_id: int, data: bytes, name: str, ctype: str
) -> Any:
    return client.post(
        f"/cases/{case_id}/photos", files={"photo": (name, data, ctype)}, headers=headers
    )


def _stored(engine: Engine, case_id: int) -> list[tuple[str, bytes, bytes]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT content_type, image, thumbnail FROM case_photo WHERE case_id = :c "
                "ORDER BY id"
            ),
            {"c": case_id},
        ).all()
    return [(r[0], bytes(r[1]), bytes(r[2])) for r in rows]


def test_gps_exif_is_gone_from_the_photo_and_its_thumbnail(
    client: TestClient, auth: Auth, cases_engine: Engine
) -> None:
    cid = _case(client, auth, cases_engine)
    original = jpeg_with_gps()
    r = _upload(client, auth["worker"], cid, original, "IMG_0001.jpg", "image/jpeg")
    assert r.status_code == 201, r.text
    meta = r.json()
    assert meta["content_type"] == "image/jpeg" and meta["original_bytes"] == len(original)
    assert (meta["width"], meta["height"]) == (600, 800)  # turned upright, then stripped
    [(kind, image, thumb)] = _stored(cases_engine, cid)
    assert kind == "image/jpeg"
    for blob in (image, thumb):
        no_metadata(blob)
    assert max(Image.open(io.BytesIO(thumb)).size) == photos.THUMB_SIDE
    served = client.get(meta["url"], headers=auth["worker"])
    assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
    assert served.content == image
    small = client.get(meta["thumbnail_url"], headers=auth["worker"])
    assert small.status_code == 200 and small.content == thumb
    history = client.get(f"/cases/{cid}", headers=auth["worker"]).json()["history"]
    assert [h["kind"] for h in history][-1] == "photo"


def test_png_and_webp_lose_their_metadata_too(
    client: TestClient, auth: Auth, cases_engine: Engine
) -> None:
    from PIL import PngImagePlugin

    cid = _case(client, auth, cases_engine)
    exif = Image.Exif()
    exif[0x010F] = MAKER
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", MAKER)
    png = io.BytesIO()
    Image.new("RGBA", (50, 40), (1, 2, 3, 100)).save(png, "PNG", pnginfo=info, exif=exif.tobytes())
    webp = io.BytesIO()
    Image.new("RGB", (50, 40)).save(webp, "WEBP", exif=exif.tobytes())
    for data, kind in ((png.getvalue(), "image/png"), (webp.getvalue(), "image/webp")):
        assert MAKER.encode() in data
        r = _upload(client, auth["worker"], cid, data, "x.bin", "application/octet-stream")
        assert r.status_code == 201, r.text
        assert r.json()["content_type"] == kind
    for _kind, image, thumb in _stored(cases_engine, cid):
        for blob in (image, thumb):
            no_metadata(blob)
    assert Image.open(io.BytesIO(_stored(cases_engine, cid)[0][1])).mode == "RGBA"


def test_the_type_is_read_from_the_content_not_the_name(
    client: TestClient, auth: Auth, cases_engine: Engine
) -> None:
    cid = _case(client, auth, cases_engine)
    r = _upload(client, auth["worker"], cid, _image("PNG"), "photo.jpg", "image/jpeg")
    assert r.status_code == 201 and r.json()["content_type"] == "image/png"
    refused = {
        "GIF": (_image("GIF", mode="L"), "a.png", "image/png", "unsupported type GIF"),
        "BMP": (_image("BMP"), "a.jpg", "image/jpeg", "unsupported type BMP"),
        "text": (b"this is not a picture at all", "a.jpg", "image/jpeg", "not an image"),
        "truncated": (jpeg_with_gps()[:2000], "a.jpg", "image/jpeg", "damaged"),
        "empty": (b"", "a.jpg", "image/jpeg", "empty"),
    }
    for why, (data, name, ctype, says) in refused.items():
        r = _upload(client, auth["worker"], cid, data, name, ctype)
        assert r.status_code == 422, (why, r.text)
        assert r.json()["field"] == "photo" and says in r.json()["detail"], (why, r.text)
    assert len(_stored(cases_engine, cid)) == 1  # only the PNG
    r = client.post(f"/cases/{cid}/photos", data={"other": "x"}, headers=auth["worker"])
    assert r.status_code == 422 and r.json()["field"] == "photo"


@pytest.fixture(scope="module")
def small_limit(cases_engine: Engine) -> Iterator[tuple[TestClient, dict[str, str]]]:
    app: FastAPI = make_app(cases_engine, care_tick_seconds=0, photo_max_bytes=20_000)
    with TestClient(app) as c:
        yield c, sign_in(c, PEOPLE["worker"].username)


def test_too_big_is_refused_and_nothing_stored(
    small_limit: tuple[TestClient, dict[str, str]],
    auth: Auth,
    cases_engine: Engine,
    client: TestClient,
) -> None:
    small, worker = small_limit
    cid = _case(client, auth, cases_engine)
    noisy = Image.frombytes("RGB", (100, 100), random.Random(7).randbytes(30_000))  # no compressing
    out = io.BytesIO()
    noisy.save(out, "PNG")
    data = out.getvalue()
    assert 20_000 < len(data) < 20_000 + 60_000  # over the photo limit, under the form's room
    r = _upload(small, worker, cid, data, "big.png", "image/png")
    assert r.status_code == 413 and r.json()["field"] == "photo"
    assert "too big" in r.json()["detail"]
    # A body declaring far more is refused before it is read: not even parsed as multipart.
    r = small.post(
        f"/cases/{cid}/photos",
        content=b"x" * 200_000,
        headers=worker | {"Content-Type": "multipart/form-data; boundary=nothing"},
    )
    assert r.status_code == 413 and r.json()["field"] == "photo", r.text
    # A few bytes declaring a 100-megapixel image: refused before decoding.
    r = _upload(small, worker, cid, _png_header_only(10_000, 10_000), "bomb.png", "image/png")
    assert r.status_code == 413 and "pixels" in r.json()["detail"], r.text
    assert _stored(cases_engine, cid) == []
    # Who may not upload is told so before the body matters.
    r = small.post(f"/cases/{cid}/photos", content=b"x" * 200_000)
    assert r.status_code == 401


def test_photos_are_seen_by_whoever_sees_the_case(
    client: TestClient, auth: Auth, cases_engine: Engine
) -> None:
    cid = _case(client, auth, cases_engine)
    r = _upload(client, auth["worker"], cid, _image("JPEG"), "a.jpg", "image/jpeg")
    assert r.status_code == 201
    url = r.json()["url"]
    for who in ("community", "care", "admin"):
        assert (
            client.get(f"/cases/{cid}/photos", headers=auth[who]).json()["photos"][0]["url"] == url
        )
        assert client.get(url, headers=auth[who]).status_code == 200
    for who in ("other_worker", "water"):  # another parish; a department not handed the case
        assert client.get(f"/cases/{cid}/photos", headers=auth[who]).status_code == 404
        assert client.get(url, headers=auth[who]).status_code == 404
        assert client.get(url + "/thumbnail", headers=auth[who]).status_code == 404
    r = _upload(client, auth["planner"], cid, _image("JPEG"), "a.jpg", "image/jpeg")
    assert r.status_code == 403
    r = _upload(client, auth["other_worker"], cid, _image("JPEG"), "a.jpg", "image/jpeg")
    assert r.status_code == 404
    assert client.get(f"/cases/{cid}/photos/999999", headers=auth["worker"]).status_code == 404
    assert len(_stored(cases_engine, cid)) == 1


def test_the_pages_upload_and_show_photos(
    client: TestClient, auth: Auth, cases_engine: Engine
) -> None:
    lon, lat = inside(cases_engine, "131208-G01")
    form = {
        "category": "rubbish",
        "description": "bags by the door",
        "lon": str(lon),
        "lat": str(lat),
    }
    r = client.post(
        "/app/incidents/new",
        data=form,
        files={"photo": ("p.jpg", jpeg_with_gps(), "image/jpeg")},
        headers=auth["worker"] | HTML,
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    cid = int(r.headers["location"].rsplit("/", 1)[1])
    assert len(_stored(cases_engine, cid)) == 1
    r = client.post(
        f"/app/incidents/{cid}/photos",
        files={"photo": ("q.webp", _image("WEBP"), "image/webp")},
        headers=auth["worker"] | HTML,
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = client.get(f"/app/incidents/{cid}", headers=auth["worker"] | HTML).text
    listed = client.get(f"/cases/{cid}/photos", headers=auth["worker"]).json()["photos"]
    assert len(listed) == 2
    for p in listed:
        assert f'href="{p["url"]}"' in page and f'src="{p["thumbnail_url"]}"' in page
    assert 'enctype="multipart/form-data"' in page and "Photo added" in page
    # The form without a photo still works; with a bad one nothing at all is stored.
    with cases_engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM incident_case")).scalar_one()
    r = client.post(
        "/app/incidents/new",
        data=form,
        files={"photo": ("p.jpg", b"GIF89a not really", "image/jpeg")},
        headers=auth["worker"] | HTML,
    )
    assert r.status_code == 422 and "photo" in r.text
    # Each refusal said beside the photo in the page's language (they were English on a zh
    # page): no image, another type, more pixels than a camera takes.
    refused = [
        ("p.heic", b"not a picture at all", 422, "不是图片：只支持 JPEG、PNG 或 WebP"),
        ("p.gif", _image("GIF", mode="L"), 422, "不支持的图片格式 GIF：只支持 JPEG、PNG 或 WebP"),
        (
            "bomb.png",
            _png_header_only(10_000, 10_000),
            413,
            "超过 40,000,000 像素：请把图片缩小后再上传",
        ),
    ]
    for name, data, status, said in refused:
        r = client.post(
            "/app/incidents/new",
            data=form,
            files={"photo": (name, data, "image/png")},
            headers=auth["worker"] | HTML | {"Accept-Language": "zh-CN"},
        )
        assert r.status_code == status, (name, r.text[-300:])
        assert f'id="photo-error" role="alert">{said}<' in r.text, name
    r = client.post(
        "/app/incidents/new",
        data=form,
        files={"photo": ("", b"", "application/octet-stream")},  # no file chosen
        headers=auth["worker"] | HTML,
        follow_redirects=False,
    )
    assert r.status_code == 303
    with cases_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM incident_case")).scalar_one() == before + 1
    form_page = client.get("/app/incidents/new", headers=auth["worker"] | HTML).text
    assert 'enctype="multipart/form-data"' in form_page and 'name="photo"' in form_page


@pytest.mark.timeout(120)
def test_a_photo_survives_backup_and_restore(server_url: str, tmp_path: Path) -> None:
    url = database(server_url, "gridwork_test_photo_backup", "porto_grids")
    engine = make_engine(url)
    settings = Settings(database_url=url)
    try:
        now = datetime.now(UTC)
        lon, lat = inside(engine, "131208-G01")
        with transaction(engine) as session:
            who = service.viewer(session, AreaScope.everywhere(), None, "t-admin")
            cid = service.report_case(
                session,
                actor="t-admin",
                category="rubbish",
                lon=lon,
                lat=lat,
                description="bags",
                now=now,
            )["id"]
            photos.add(session, who, cid, photos.clean(jpeg_with_gps(), max_bytes=10**7), now)
        [stored] = _stored(engine, cid)
        archive = backup(settings, tmp_path / "state.dump")
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM incident WHERE id = :c"), {"c": cid})  # cascades
        assert _stored(engine, cid) == []
        engine.dispose()
        restore(settings, archive)
        assert _stored(engine, cid) == [stored]
    finally:
        engine.dispose()


def test_a_full_case_refuses_one_photo_more_saying_so_in_the_pages_language(
    client: TestClient, auth: Auth, cases_engine: Engine
) -> None:
    """A case keeps at most 20 photos; the 21st from the case page was refused in English."""
    cid = _case(client, auth, cases_engine)
    photo = _image("JPEG")
    for _ in range(20):
        assert _upload(client, auth["worker"], cid, photo, "p.jpg", "image/jpeg").status_code == 201
    r = _upload(client, auth["worker"], cid, photo, "p.jpg", "image/jpeg")
    assert r.status_code == 409 and r.json()["detail"] == "photo: a case holds at most 20 photos"
    r = client.post(
        f"/app/incidents/{cid}/photos",
        files={"photo": ("p.jpg", photo, "image/jpeg")},
        headers=auth["worker"] | HTML | {"Accept-Language": "zh-CN"},
    )
    assert r.status_code == 409 and "一个事件最多保存 20 张照片" in r.text
    assert len(_stored(cases_engine, cid)) == 20
