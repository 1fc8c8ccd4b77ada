"""The scanned consent form: type by content, size limit, images without metadata, kept in
the database, read only by the care staff of the elder's area, every read audited."""

from __future__ import annotations

import io
import json
import re
from datetime import date
from typing import Any

from fastapi.testclient import TestClient
from PIL import Image, PngImagePlugin
from sqlalchemy import Engine, text

from data.care.consent_scan import MAX_BYTES
from tests.care.conftest import HOME_CODE, count, enrol

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def _jpeg_with_gps() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {1: "N", 2: (44.0, 36.0, 0.0)}  # GPSInfo: where the photo was taken
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 200, 190)).save(out, "JPEG", exif=exif)
    return out.getvalue()


def _png_with_text() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "the guardian's name")
    out = io.BytesIO()
    Image.new("L", (40, 30), 255).save(out, "PNG", pnginfo=info)
    return out.getvalue()


def _put(
    client: TestClient, headers: dict[str, str], elder: dict[str, Any], data: bytes, name: str
) -> Any:
    consent_id = _consent_id(client, headers, elder)
    return client.put(
        f"/elders/{elder['id']}/consents/{consent_id}/scan",
        files={"scan": (name, data, "application/pdf")},  # the declared type is not believed
        headers=headers,
    )


def _consent_id(client: TestClient, headers: dict[str, str], elder: dict[str, Any]) -> int:
    """The elder's consent (the one enrolment recorded)."""
    with client.app.state.gridwork.engine.connect() as conn:  # type: ignore[attr-defined]
        return int(
            conn.execute(
                text("SELECT max(id) FROM consent WHERE elder_id = :e"), {"e": elder["id"]}
            ).scalar_one()
        )


def test_images_are_stored_without_metadata_and_the_type_is_read_from_the_content(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine
) -> None:
    headers = staff["care_staff"]
    elder = enrol(client, headers, "watch-scan-1")
    r = _put(client, headers, elder, _jpeg_with_gps(), "form.pdf")
    assert r.status_code == 200, r.text
    assert r.json()["content_type"] == "image/jpeg"
    stored = client.get(r.json()["url"], headers=headers)
    assert stored.status_code == 200
    assert stored.headers["content-type"] == "image/jpeg"
    assert stored.headers["content-disposition"].startswith("attachment")
    image = Image.open(io.BytesIO(stored.content))
    assert image.size == (64, 48)
    assert not image.getexif() and "exif" not in image.info
    assert b"PhoneMaker" not in stored.content

    r = _put(client, headers, elder, _png_with_text(), "form.png")  # replaces the first
    assert r.status_code == 200, r.text
    stored = client.get(r.json()["url"], headers=headers)
    assert stored.headers["content-type"] == "image/png"
    assert "Author" not in Image.open(io.BytesIO(stored.content)).info
    assert b"guardian" not in stored.content
    assert count(care, "SELECT count(*) FROM consent_scan") == 1  # in the database: the backup


def test_a_pdf_is_kept_and_anything_else_is_refused_naming_the_field(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine
) -> None:
    headers = staff["care_staff"]
    elder = enrol(client, headers, "watch-scan-2")
    r = _put(client, headers, elder, PDF, "form.pdf")
    assert r.status_code == 200, r.text
    assert client.get(r.json()["url"], headers=headers).content == PDF
    refused = {
        "an executable named .pdf": (b"MZ\x90\x00" + b"\x00" * 100, 422),
        "a PDF that runs a script": (PDF.replace(b"/Catalog", b"/Catalog /OpenAction 2 0 R"), 422),
        "a damaged JPEG": (b"\xff\xd8\xff\xe0" + b"\x00" * 50, 422),
        "too big": (b"%PDF-" + b"0" * MAX_BYTES, 413),
        "empty": (b"", 422),
    }
    for what, (data, status) in refused.items():
        r = _put(client, headers, elder, data, "form.pdf")
        assert r.status_code == status, (what, r.text)
        assert "scan" in r.text, what
    assert client.get(f"/elders/{elder['id']}/consents/1/scan", headers=headers).content == PDF


def test_only_care_staff_of_the_area_read_it_and_each_read_is_audited(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine
) -> None:
    elder = enrol(client, staff["care_staff"], "watch-scan-3")
    r = _put(client, staff["care_staff"], elder, PDF, "form.pdf")
    url = r.json()["url"]
    assert client.get(url, headers=staff["far_care"]).status_code == 404
    assert client.get(url, headers=staff["home_worker"]).status_code == 403
    assert client.get(url, headers=staff["planner"]).status_code == 403
    before = count(care, "SELECT coalesce(max(id), 0) FROM audit_log")
    why = {"reason": "checking the form"}
    for _ in range(2):
        assert client.get(url, params=why, headers=staff["care_staff"]).status_code == 200
    with care.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT actor, subject_type, subject_ids, reason FROM audit_log "
                "WHERE id > :b AND route LIKE '%/scan' ORDER BY id"
            ),
            {"b": before},
        ).all()
    assert [tuple(r) for r in rows] == [
        ("c-care", "elder_consent", [str(elder["id"])], "scanned consent form of consent "
         f"{_consent_id(client, staff['care_staff'], elder)}; why: checking the form"),
    ] * 2  # fmt: skip


def test_the_enrolment_form_takes_the_scan(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine
) -> None:
    form = {
        "display_name": "王秀英",
        "household_code": HOME_CODE,
        "device_id": "watch-scan-form",
        "datum": "gcj02",
        "consent_given_by": "本人及女儿",
        "consent_given_on": str(date(2026, 1, 5)),
        "consent_scope": "走失时定位",
    }
    files = {"scan": ("consent.jpg", _jpeg_with_gps(), "image/jpeg")}
    r = client.post("/app/elders/new", data=form, files=files, headers=staff["care_staff"])
    assert r.status_code == 200, r.text
    assert count(care, "SELECT count(*) FROM consent_scan WHERE content_type = 'image/jpeg'") == 1
    # Without a consent record, a scan is refused and nothing is enrolled.
    no_consent = {k: v for k, v in form.items() if not k.startswith("consent")}
    r = client.post(
        "/app/elders/new",
        data=no_consent | {"device_id": "watch-scan-none"},
        files=files,
        headers=staff["care_staff"],
    )
    assert r.status_code == 422
    assert count(care, "SELECT count(*) FROM device WHERE device_code = 'watch-scan-none'") == 0


# --- the console: a consent (and its scan) added on the elder's page -----------------------


def _console(
    client: TestClient,
    headers: dict[str, str],
    elder_id: int,
    data: dict[str, str],
    scan: bytes | None = None,
    language: str = "en",
) -> Any:
    # A browser sends an empty part without a name when no file was chosen.
    files = {"scan": ("", b"", "application/octet-stream")}
    if scan is not None:
        files = {"scan": ("form.pdf", scan, "application/pdf")}
    return client.post(
        f"/app/elders/{elder_id}/consent",
        data=data,
        files=files,
        headers={**headers, "Accept-Language": language},
        follow_redirects=False,
    )


def test_the_elder_page_adds_a_consent_with_its_scan_and_says_what_is_wrong_beside_the_field(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine
) -> None:
    headers = staff["care_staff"]
    elder = enrol(client, headers, "watch-scan-console", consent=False)
    page = client.get(f"/app/elders/{elder['id']}", headers={**headers, "Accept-Language": "en"})
    assert page.status_code == 200
    assert f'action="/app/elders/{elder["id"]}/consent"' in page.text
    consents = "SELECT count(*) FROM consent WHERE elder_id = :e"
    good = {
        "consent_given_by": "her son",
        "consent_given_on": "2026-02-01",
        "consent_scope": "locate her when she is lost",
    }

    # Nobody named: the reason beside "given by", what was typed kept, nothing stored.
    r = _console(client, headers, elder["id"], {**good, "consent_given_by": " "})
    assert r.status_code == 422
    assert 'id="consent_given_by-error"' in r.text and "Say who gave the consent." in r.text
    assert 'aria-describedby="consent_given_by-error"' in r.text
    assert "locate her when she is lost" in r.text
    # ... in the page's language.
    r = _console(client, headers, elder["id"], {**good, "consent_scope": ""}, language="zh-CN")
    assert r.status_code == 422
    assert 'id="consent_scope-error"' in r.text and "请填写同意的内容。" in r.text
    r = _console(client, headers, elder["id"], {**good, "consent_given_on": "2026-13-01"})
    assert r.status_code == 422 and 'id="consent_given_on-error"' in r.text
    r = _console(client, headers, elder["id"], {**good, "consent_given_on": "2099-01-01"})
    assert r.status_code == 422 and 'id="consent_given_on-error"' in r.text
    # Not a scan: refused beside the file, and the consent is not kept without it.
    r = _console(client, headers, elder["id"], good, scan=b"MZ\x90\x00 a program")
    assert r.status_code == 422 and 'id="scan-error"' in r.text
    # ... said in the page's language (it stood in English on a zh page).
    r = _console(client, headers, elder["id"], good, scan=b"MZ\x90\x00 a program", language="zh-CN")
    assert 'id="scan-error" role="alert">不是 PDF、JPEG 或 PNG 文件（按文件内容判断）<' in r.text
    photographed = io.BytesIO()
    Image.new("RGB", (300, 200), (200, 10, 10)).save(photographed, "JPEG")
    damaged = photographed.getvalue()[:600]  # cut off in sending
    r = _console(client, headers, elder["id"], good, scan=damaged, language="zh-CN")
    assert re.search(r'id="scan-error" role="alert">图片已损坏（[^<]+）<', r.text), r.text[-2000:]
    assert count(care, consents, e=elder["id"]) == 0

    start = count(care, "SELECT coalesce(max(id), 0) FROM audit_log")
    r = _console(client, headers, elder["id"], good, scan=PDF)
    assert r.status_code == 303
    assert r.headers["location"] == f"/app/elders/{elder['id']}?consent=saved"
    assert count(care, consents, e=elder["id"]) == 1
    consent_id = _consent_id(client, headers, elder)
    scan = client.get(f"/elders/{elder['id']}/consents/{consent_id}/scan", headers=headers)
    assert scan.status_code == 200 and scan.headers["content-type"] == "application/pdf"
    with care.connect() as conn:
        audited = conn.execute(
            text(
                "SELECT actor, subject_type, subject_ids, reason FROM audit_log WHERE id > :s "
                "AND route = :r"
            ),
            {"s": start, "r": f"/app/elders/{elder['id']}/consent"},
        ).all()
    assert [tuple(a)[:3] for a in audited] == [("c-care", "elder_consent", [str(elder["id"])])]
    assert "with a scanned form (application/pdf)" in audited[0][3]
    page = client.get(f"/app/elders/{elder['id']}", headers=headers)
    assert "her son" in page.text and f"/consents/{consent_id}/scan" in page.text


def test_the_elder_page_says_the_consent_was_saved_after_the_redirect(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine
) -> None:
    headers = {**staff["care_staff"], "Accept-Language": "en"}
    elder = enrol(client, headers, "watch-scan-saved", consent=False)
    said = '<p class="saved" role="status"><strong>Consent record saved.</strong></p>'
    good = {"consent_given_by": "her son", "consent_given_on": "2026-02-01", "consent_scope": "y"}
    # Refused, or the page simply opened: nothing was saved, so nothing says so.
    refused = _console(client, headers, elder["id"], {**good, "consent_given_by": " "})
    assert refused.status_code == 422 and said not in refused.text
    assert said not in client.get(f"/app/elders/{elder['id']}", headers=headers).text

    sent = _console(client, headers, elder["id"], good)
    assert sent.status_code == 303
    page = client.get(sent.headers["location"], headers=headers)
    assert page.status_code == 200 and said in page.text
    assert count(care, "SELECT count(*) FROM consent WHERE elder_id = :e", e=elder["id"]) == 1
    # Only the consent form's redirect says it, not any other value of the parameter.
    other = client.get(f"/app/elders/{elder['id']}?consent=maybe", headers=headers)
    assert said not in other.text


def test_only_staff_of_the_home_area_add_a_consent_from_the_console(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine
) -> None:
    elder = enrol(client, staff["care_staff"], "watch-scan-who", consent=False)
    good = {"consent_given_by": "x", "consent_given_on": "2026-02-01", "consent_scope": "y"}
    assert _console(client, staff["far_care"], elder["id"], good).status_code == 404
    assert _console(client, staff["home_worker"], elder["id"], good).status_code == 403
    page = client.get(f"/app/elders/{elder['id']}", headers=staff["home_worker"])
    assert page.status_code == 200 and '/consent"' not in page.text
    assert count(care, "SELECT count(*) FROM consent WHERE elder_id = :e", e=elder["id"]) == 0


def test_the_elder_page_says_the_safe_zone_was_saved_after_the_redirect(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine
) -> None:
    headers = {**staff["care_staff"], "Accept-Language": "en"}
    elder = enrol(client, headers, "watch-zone-saved", consent=True)
    said = '<p class="saved" role="status"><strong>Safe zone saved.</strong></p>'
    sent = client.post(
        f"/app/elders/{elder['id']}/zone",
        data={"kind": "home_grid", "buffer_m": "150"},
        headers=headers,
        follow_redirects=False,
    )
    assert sent.status_code == 303, sent.text
    page = client.get(sent.headers["location"], headers=headers)
    assert page.status_code == 200 and said in page.text
    assert "Consent record saved." not in page.text
    assert said not in client.get(f"/app/elders/{elder['id']}", headers=headers).text


def test_a_zone_whose_edges_cross_is_refused_saying_how_to_draw_it(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine
) -> None:
    """Corners clicked out of turn draw a bow tie: refused with shapely's words in English
    ("not a valid polygon: Self-intersection[…]") on a zh page; it says how to draw it now."""
    headers = {**staff["care_staff"], "Accept-Language": "zh-CN"}
    elder = enrol(client, headers, "watch-zone-bowtie", consent=True)
    with care.connect() as conn:
        x, y = conn.execute(
            text(
                "SELECT ST_X(h.geom), ST_Y(h.geom) FROM elder e "
                "JOIN household h ON h.id = e.household_id WHERE e.id = :e"
            ),
            {"e": elder["id"]},
        ).one()
    d = 0.002
    crossed = [[x - d, y - d], [x + d, y + d], [x + d, y - d], [x - d, y + d], [x - d, y - d]]
    sent = client.post(
        f"/app/elders/{elder['id']}/zone",
        data={
            "kind": "polygon",
            "geometry": json.dumps({"type": "Polygon", "coordinates": [crossed]}),
        },
        headers=headers,
        follow_redirects=False,
    )
    assert sent.status_code == 422, sent.text[-500:]
    assert re.search(
        r"区域形状无效（Self-intersection[^）]*）：请沿区域一圈依次点击各个角", sent.text
    )


def test_a_radius_too_small_is_refused_beside_the_radius(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine
) -> None:
    """The zone form said every refusal above the form, away from the box to correct."""
    headers = {**staff["care_staff"], "Accept-Language": "zh-CN"}
    elder = enrol(client, headers, "watch-zone-radius", consent=True)
    sent = client.post(
        f"/app/elders/{elder['id']}/zone",
        data={"kind": "circle", "radius_m": "10", "lon": "84.83", "lat": "45.61"},
        headers=headers,
        follow_redirects=False,
    )
    assert sent.status_code == 422
    box = re.search(r'<input id="radius_m"[^>]*>', sent.text)
    assert box and 'aria-describedby="radius_m-error"' in box.group(0), box
    assert (
        '<p class="field-error" id="radius_m-error" role="alert">圆的半径必须大于 20 米。</p>'
        in sent.text
    )
    assert 'id="gw-error"' not in sent.text
