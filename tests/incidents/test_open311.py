"""Open311 GeoReport v2 on real PostGIS, as clients written against the specification use it:
discovery and services, a request posted (form-encoded) and routed like any report, its
status read back in JSON and XML, tokens; every bad input refused with the standard's error
list naming the field, nothing stored; the listing closed unless the deployment opens it; a
reporter's contact only for the handlers of the area, each read audited. At the end a
maintained client library (georeport, PyPI) reads a live server.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any
from xml.etree import ElementTree as ET

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from georeport import GeoReport
from PIL import Image
from sqlalchemy import Engine, text

from data.access.queries import create_api_key
from data.db import make_engine, transaction
from data.district.workers import link_worker_account
from data.models import Role
from tests.factory import add_accounts, database, make_app, sign_in
from tests.gridded import live_server, strips_database
from tests.incidents.conftest import PEOPLE, inside
from tests.incidents.photo_files import jpeg_with_gps, no_metadata

V2 = "/open311/v2"
GRID = "131208-G01"  # its worker is c-worker; community 131208, street PORTO-CH
#: Keys a district would hand out, each bound to an account (and so to its area and role).
KEYS = {
    "community": ("c-community", Role.coordinator),  # handles cases in community 131208
    "other_worker": ("c-worker2", Role.grid_worker),  # a handler of another parish
    "planner": ("c-planner", Role.planner),  # sees cases of PORTO-CH, does not handle them
    "care": ("c-care", Role.device),  # a watch's key of the care staff: sends positions only
}


@pytest.fixture(scope="module")
def engine(server_url: str) -> Iterator[Engine]:
    """Porto with test grids and the people of the case flow, in a database of this module."""
    engine = make_engine(database(server_url, "gridwork_test_open311", "porto_grids"))
    add_accounts(engine, PEOPLE.values())
    with transaction(engine) as session:
        link_worker_account(session, "W-131208-G01", "c-worker")
        link_worker_account(session, "W-131213-G01", "c-worker2")
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def keys(engine: Engine) -> dict[str, str]:
    with transaction(engine) as session:
        return {
            who: create_api_key(session, f"o311-{who}", role, user)
            for who, (user, role) in KEYS.items()
        }


def _client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


@pytest.fixture(scope="module")
def client(engine: Engine) -> Iterator[TestClient]:
    """The app as deployed by default: the listing closed."""
    yield from _client(make_app(engine, care_tick_seconds=0))


@pytest.fixture(scope="module")
def public(engine: Engine) -> Iterator[TestClient]:
    """The same store, served by a deployment that opened the listing."""
    yield from _client(make_app(engine, care_tick_seconds=0, open311_public_listing=True))


def _form(engine: Engine, key: str, **extra: str) -> dict[str, str]:
    lon, lat = inside(engine, GRID)
    form = {
        "api_key": key,
        "jurisdiction_id": "porto",
        "service_code": "leaking_pipe",
        "lat": f"{lat:.7f}",
        "long": f"{lon:.7f}",
        "description": "Water running across the pavement",
        "first_name": "Ana",
        "last_name": "Silva",
        "email": "ana@example.org",
        "phone": "+351 900 000 000",
        "media_url": "https://photos.example.org/leak.jpg",
    }
    return form | extra


def _xml(text_: str) -> ET.Element:
    return ET.fromstring(text_.encode())


def _count(engine: Engine, table: str = "incident_case") -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def _reporter_reads(engine: Engine, case_id: int) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM audit_log WHERE subject_type = 'case_reporter' "
                    "AND CAST(:id AS text) = ANY(subject_ids) AND route LIKE '/open311/%'"
                ),
                {"id": case_id},
            ).scalar_one()
        )


def _post(client: TestClient, engine: Engine, key: str, fmt: str = "json", **extra: str) -> Any:
    return client.post(f"{V2}/requests.{fmt}", data=_form(engine, key, **extra))


# --- discovery and services ------------------------------------------------------------------


def test_discovery_names_the_endpoint_and_both_formats(client: TestClient) -> None:
    body = client.get(f"{V2}/discovery.json").json()
    (endpoint,) = body["endpoints"]
    assert endpoint["url"].endswith("/open311/v2")
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert set(endpoint["formats"]) == {"text/xml", "application/json"}
    doc = _xml(client.get(f"{V2}/discovery.xml").text)
    assert doc.tag == "discovery"
    assert [f.text for f in doc.iter("format")] == endpoint["formats"]


def test_services_are_the_catalogue_in_json_and_xml(client: TestClient) -> None:
    r = client.get(f"{V2}/services.json", headers={"Accept-Language": "en"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    services = {s["service_code"]: s for s in r.json()}
    assert {"street_light", "leaking_pipe", "fire_access", "rubbish"} <= set(services)
    pipe = services["leaking_pipe"]
    assert pipe["service_name"] == "Leaking pipe"
    assert pipe["metadata"] is False
    assert pipe["type"] == "realtime"
    assert pipe["group"] == "Water supply"
    assert "管道漏水" in pipe["keywords"]
    zh = client.get(f"{V2}/services.json", headers={"Accept-Language": "zh-CN"}).json()
    assert {s["service_code"]: s["service_name"] for s in zh}["leaking_pipe"] == "管道漏水"

    x = client.get(f"{V2}/services.xml", headers={"Accept-Language": "en"})
    assert x.headers["content-type"].startswith("text/xml")
    doc = _xml(x.text)
    assert doc.tag == "services"
    rows = {s.findtext("service_code"): s for s in doc.findall("service")}
    assert set(rows) == set(services)
    assert rows["leaking_pipe"].findtext("metadata") == "false"
    assert rows["leaking_pipe"].findtext("service_name") == "Leaking pipe"


def test_service_definition_and_an_unknown_service(client: TestClient) -> None:
    assert client.get(f"{V2}/services/leaking_pipe.json").json() == {
        "service_code": "leaking_pipe",
        "attributes": [],
    }
    doc = _xml(client.get(f"{V2}/services/leaking_pipe.xml").text)
    assert doc.tag == "service_definition"
    assert doc.findtext("service_code") == "leaking_pipe"
    r = client.get(f"{V2}/services/moon_landing.json")
    assert r.status_code == 404
    assert r.json()[0]["code"] == 404
    assert r.json()[0]["description"].startswith("service_code:")
    x = client.get(f"{V2}/services/moon_landing.xml")
    assert x.status_code == 404
    assert _xml(x.text).find("error/description").text.startswith("service_code:")  # type: ignore[union-attr]
    assert client.get(f"{V2}/services.csv").status_code == 404


# --- posting and reading back ----------------------------------------------------------------


def test_a_posted_request_is_a_routed_case_read_back_in_json_and_xml(
    client: TestClient, engine: Engine, keys: dict[str, str]
) -> None:
    r = _post(client, engine, keys["community"])
    assert r.status_code == 201, r.text
    (posted,) = r.json()
    case_id = int(posted["service_request_id"])
    assert "expected by" in posted["service_notice"] or "预计" in posted["service_notice"]
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT c.source, c.client, u.username, g.code, c.reporter_name, "
                "c.reporter_contact FROM incident_case c JOIN incident t ON t.id = c.id "
                "JOIN grid g ON g.id = t.grid_id LEFT JOIN app_user u ON u.id = c.assignee_id "
                "WHERE c.id = :id"
            ),
            {"id": case_id},
        ).one()
    # routed as every report is: to the worker of the grid the point lies in
    assert tuple(row) == (
        "open311",
        "key:o311-community",
        "c-worker",
        GRID,
        "Ana Silva",
        "ana@example.org, +351 900 000 000",
    )

    reads = _reporter_reads(engine, case_id)
    headers = {"X-API-Key": keys["community"], "Accept-Language": "en"}
    (got,) = client.get(f"{V2}/requests/{case_id}.json", headers=headers).json()
    assert got["status"] == "open"
    assert got["service_code"] == "leaking_pipe"
    assert got["service_name"] == "Leaking pipe"
    assert got["media_url"] == "https://photos.example.org/leak.jpg"
    assert got["description"] == "Water running across the pavement"
    assert got["agency_responsible"] == f"Grid {GRID}"
    assert got["requested_datetime"].endswith("+08:00")  # ISO 8601 with the offset
    assert got["expected_datetime"] > got["requested_datetime"]
    assert got["reporter_contact"] == "ana@example.org, +351 900 000 000"
    assert _reporter_reads(engine, case_id) == reads + 1

    # the worker resolves it in gridwork; the reporter's app reads "closed" and the note
    worker = sign_in(client, "c-worker")
    note = {"note": "valve replaced, road dry"}
    assert client.post(f"/cases/{case_id}/resolve", json=note, headers=worker).status_code == 200
    doc = _xml(
        client.get(f"{V2}/requests/{case_id}.xml", params={"api_key": keys["community"]}).text
    )
    assert doc.tag == "service_requests"
    request = doc.find("request")
    assert request is not None
    assert request.findtext("service_request_id") == str(case_id)
    assert request.findtext("status") == "closed"
    assert request.findtext("status_notes") == "valve replaced, road dry"
    assert request.findtext("expected_datetime") == ""
    assert float(request.findtext("lat") or 0) == pytest.approx(float(_form(engine, "")["lat"]))

    # the token given at posting leads back to the request, in both formats
    tok = client.get(f"{V2}/tokens/{posted['token']}.json").json()
    assert tok == [{"service_request_id": str(case_id), "token": posted["token"]}]
    doc = _xml(client.get(f"{V2}/tokens/{posted['token']}.xml").text)
    assert doc.findtext("request/service_request_id") == str(case_id)
    forged = posted["token"][:-1] + ("0" if posted["token"][-1] != "0" else "1")
    assert client.get(f"{V2}/tokens/{forged}.json").status_code == 404


def test_a_request_posted_for_xml_answers_xml(
    client: TestClient, engine: Engine, keys: dict[str, str]
) -> None:
    r = _post(client, engine, keys["community"], "xml", service_code="street_light")
    assert r.status_code == 201, r.text
    doc = _xml(r.text)
    assert doc.tag == "service_requests"
    case_id = doc.findtext("request/service_request_id")
    assert case_id and case_id.isdigit()
    assert doc.findtext("request/token", "").startswith(f"{case_id}-")
    assert doc.find("request/account_id") is not None


def test_a_photo_posted_with_the_request_is_stored_without_its_metadata(
    client: TestClient, public: TestClient, engine: Engine, keys: dict[str, str]
) -> None:
    """… and its ``media_url`` (JSON and XML) is an absolute address that serves the stripped
    photo to whoever reads the request: the key's area, or anyone with a public listing."""
    form = _form(engine, keys["community"])
    r = client.post(
        f"{V2}/requests.json",
        data=form,
        files={"media": ("leak.jpg", jpeg_with_gps((64, 48), orientation=1), "image/jpeg")},
    )
    assert r.status_code == 201, r.text
    case_id = int(r.json()[0]["service_request_id"])
    with engine.connect() as conn:
        stored = conn.execute(
            text("SELECT id, content_type, width, image FROM case_photo WHERE case_id = :id"),
            {"id": case_id},
        ).all()
    [(photo_id, kind, width, image)] = stored
    assert (kind, width) == ("image/jpeg", 64)

    key = {"X-API-Key": keys["community"]}
    (got,) = client.get(f"{V2}/requests/{case_id}.json", headers=key).json()
    url = f"http://testserver{V2}/requests/{case_id}/media/{photo_id}.jpg"
    assert got["media_url"] == url  # ours, not the form's photos.example.org link
    doc = _xml(client.get(f"{V2}/requests/{case_id}.xml", headers=key).text)
    assert doc.findtext("request/media_url") == url
    listed = client.get(f"{V2}/requests.json", headers=key).json()
    assert {x["media_url"] for x in listed if x["service_request_id"] == str(case_id)} == {url}

    served = client.get(url, headers=key)
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/jpeg"
    assert served.content == bytes(image)
    no_metadata(served.content)
    assert client.get(url, params={"api_key": keys["community"]}).status_code == 200
    # not to a caller who may not read the request
    assert client.get(url).status_code == 403  # the listing is closed: a key is needed
    assert client.get(url, headers={"X-API-Key": "gw_wrong"}).status_code == 403
    assert client.get(url, headers={"X-API-Key": keys["care"]}).status_code == 403
    other = client.get(url, headers={"X-API-Key": keys["other_worker"]})
    assert other.status_code == 404  # another parish's request does not exist for them
    assert other.json()[0]["description"].startswith("photo_id:")
    # only that photo, under its own name: not another of the case's, not another type
    for wrong in (
        f"{V2}/requests/{case_id}/media/{photo_id + 1}.jpg",
        f"{V2}/requests/{case_id}/media/{photo_id}.png",
        f"{V2}/requests/{case_id + 1}/media/{photo_id}.jpg",
        f"{V2}/requests/x/media/{photo_id}.jpg",
    ):
        assert client.get(wrong, headers=key).status_code == 404, wrong
    # a deployment with a public listing shows it to anyone, as it shows the request
    (seen,) = public.get(f"{V2}/requests/{case_id}.json").json()
    assert seen["media_url"] == url
    assert public.get(url).content == bytes(image)


@pytest.mark.parametrize(
    ("what", "content", "status"),
    [("not an image", b"%PDF-1.4 not a photo", 400), ("too big", b"\xff" * 3000, 413)],
)
def test_a_photo_that_is_not_an_image_or_too_big_is_refused_and_nothing_stored(
    engine: Engine, keys: dict[str, str], what: str, content: bytes, status: int
) -> None:
    with TestClient(make_app(engine, care_tick_seconds=0, photo_max_bytes=2048)) as small:
        before = (_count(engine), _count(engine, "case_photo"))
        r = small.post(
            f"{V2}/requests.json",
            data=_form(engine, keys["community"]),
            files={"media": ("x.jpg", content, "image/jpeg")},
        )
        assert r.status_code == status, r.text
        assert r.json()[0]["description"].startswith("media:")
        assert (_count(engine), _count(engine, "case_photo")) == before


# --- bad input -------------------------------------------------------------------------------

BAD: list[tuple[str, dict[str, str], int, str]] = [
    ("unknown service", {"service_code": "moon_landing"}, 400, "service_code"),
    ("no service", {"service_code": ""}, 400, "service_code"),
    ("outside every grid", {"lat": "40.0", "long": "-3.7"}, 400, "long"),
    ("lat and long swapped", {"swap": "yes"}, 400, "lat"),
    ("lat out of range", {"lat": "95.5"}, 400, "lat"),
    ("long out of range", {"long": "-181"}, 400, "long"),
    ("lat not a number", {"lat": "forty-one"}, 400, "lat"),
    ("lat without long", {"long": ""}, 400, "long"),
    ("no location", {"lat": "", "long": ""}, 400, "lat"),
    ("an address alone", {"lat": "", "long": "", "address_string": "Rua Nova 1"}, 400,
     "address_string"),
    ("an unknown building", {"lat": "", "long": "", "address_id": "way/0"}, 400, "address_id"),
    ("a bad email", {"email": "ana at home"}, 400, "email"),
    ("a media_url that is no web address", {"media_url": "javascript:alert(1)"}, 400,
     "media_url"),
    ("an attribute no service has", {"attribute[colour]": "red"}, 400, "attribute[colour]"),
    ("a description too long", {"description": "x" * 4001}, 400, "description"),
    ("no key", {"api_key": ""}, 403, "api_key"),
    ("a wrong key", {"api_key": "gw_not-a-key"}, 403, "api_key"),
    ("a key that only sends positions", {"api_key": "care"}, 403, "api_key"),
    ("a point outside the key's area", {"api_key": "other_worker"}, 403, "long"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "change", "status", "field"), BAD, ids=[b[0] for b in BAD])
@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_bad_input_is_refused_naming_the_field_and_nothing_is_stored(
    client: TestClient,
    engine: Engine,
    keys: dict[str, str],
    what: str,
    change: dict[str, str],
    status: int,
    field: str,
    fmt: str,
) -> None:
    form = _form(engine, keys["community"])
    change = dict(change)
    if change.pop("swap", None):
        form["lat"], form["long"] = form["long"], form["lat"]
    if change.get("api_key") in keys:
        change["api_key"] = keys[change["api_key"]]
    form |= change
    before = (_count(engine), _count(engine, "case_event"))
    r = client.post(f"{V2}/requests.{fmt}", data={k: v for k, v in form.items() if v != ""})
    assert r.status_code == status, r.text
    if fmt == "json":
        (error,) = r.json()
    else:
        doc = _xml(r.text)
        assert doc.tag == "errors"
        error = {e.tag: e.text for e in doc.find("error")}  # type: ignore[union-attr]
    assert int(error["code"]) == status
    assert error["description"].startswith(f"{field}:"), error
    assert (_count(engine), _count(engine, "case_event")) == before


def test_a_request_by_building_id_lands_in_that_buildings_grid(
    client: TestClient, engine: Engine, keys: dict[str, str]
) -> None:
    with engine.connect() as conn:
        building, grid = conn.execute(
            text(
                "SELECT b.source_id, g.code FROM building b JOIN grid g ON "
                "g.id = grid_covering(ST_PointOnSurface(b.geom)) WHERE g.code = :g LIMIT 1"
            ),
            {"g": GRID},
        ).one()
    form = _form(engine, keys["community"], address_id=building, address_string="Rua X 1")
    del form["lat"], form["long"]
    r = client.post(f"{V2}/requests.json", data=form)
    assert r.status_code == 201, r.text
    case_id = r.json()[0]["service_request_id"]
    (got,) = client.get(
        f"{V2}/requests/{case_id}.json", headers={"X-API-Key": keys["community"]}
    ).json()
    assert (got["address_id"], got["address"]) == (building, "Rua X 1")
    with engine.connect() as conn:
        assert (
            conn.execute(
                text(
                    "SELECT g.code FROM incident t JOIN grid g ON g.id = t.grid_id WHERE t.id = :i"
                ),
                {"i": int(case_id)},
            ).scalar_one()
            == grid
        )


# --- who reads requests ----------------------------------------------------------------------


def _posted(client: TestClient, engine: Engine, keys: dict[str, str]) -> int:
    r = _post(client, engine, keys["community"])
    assert r.status_code == 201, r.text
    return int(r.json()[0]["service_request_id"])


def test_the_listing_is_closed_by_default(
    client: TestClient, engine: Engine, keys: dict[str, str]
) -> None:
    case_id = _posted(client, engine, keys)
    for path in (f"{V2}/requests.json", f"{V2}/requests/{case_id}.json"):
        r = client.get(path)
        assert r.status_code == 403
        assert r.json()[0]["description"].startswith("api_key:")
    x = client.get(f"{V2}/requests.xml")
    assert x.status_code == 403
    assert _xml(x.text).findtext("error/description", "").startswith("api_key:")
    wrong = client.get(f"{V2}/requests.json", params={"api_key": "gw_wrong"})
    assert wrong.status_code == 403
    # with a key, the requests of the key's area
    mine = client.get(f"{V2}/requests.json", headers={"X-API-Key": keys["community"]}).json()
    assert str(case_id) in {r["service_request_id"] for r in mine}


def test_a_public_listing_shows_requests_but_never_a_contact(
    public: TestClient, client: TestClient, engine: Engine, keys: dict[str, str]
) -> None:
    case_id = _posted(client, engine, keys)
    audits = _count(engine, "audit_log")
    listed = public.get(f"{V2}/requests.json").json()
    ours = [r for r in listed if r["service_request_id"] == str(case_id)]
    assert len(ours) == 1
    assert "reporter_contact" not in ours[0]
    assert "ana@example.org" not in public.get(f"{V2}/requests.xml").text
    (one,) = public.get(f"{V2}/requests/{case_id}.json").json()
    assert one["status"] == "open"
    assert "reporter_name" not in one
    assert _count(engine, "audit_log") == audits  # nothing personal read, nothing audited
    assert public.get(f"{V2}/requests.json", params={"api_key": "gw_wrong"}).status_code == 403


def test_a_reporters_contact_is_for_the_handlers_of_the_area_only(
    client: TestClient, engine: Engine, keys: dict[str, str]
) -> None:
    case_id = _posted(client, engine, keys)
    path = f"{V2}/requests/{case_id}.json"
    reads = _reporter_reads(engine, case_id)
    # a handler of another parish: the request is not theirs to see at all
    r = client.get(path, headers={"X-API-Key": keys["other_worker"]})
    assert r.status_code == 404
    assert r.json()[0]["description"].startswith("service_request_id:")
    listed = client.get(f"{V2}/requests.json", headers={"X-API-Key": keys["other_worker"]})
    assert str(case_id) not in {r["service_request_id"] for r in listed.json()}
    # a planner of the street sees the request, not who reported it
    (planner,) = client.get(path, headers={"X-API-Key": keys["planner"]}).json()
    assert "reporter_contact" not in planner
    assert _reporter_reads(engine, case_id) == reads
    # the community's handler sees it, and each read is audited
    for n in (1, 2):
        (got,) = client.get(path, headers={"X-API-Key": keys["community"]}).json()
        assert got["reporter_name"] == "Ana Silva"
        assert _reporter_reads(engine, case_id) == reads + n
    # a key that only sends positions reads nothing
    assert client.get(path, headers={"X-API-Key": keys["care"]}).status_code == 403


def test_the_standard_filters(client: TestClient, engine: Engine, keys: dict[str, str]) -> None:
    headers = {"X-API-Key": keys["community"]}
    a = _posted(client, engine, keys)
    b = int(_post(client, engine, keys["community"], service_code="rubbish").json()[0][
        "service_request_id"])  # fmt: skip

    def ids(**params: str) -> set[int]:
        r = client.get(f"{V2}/requests.json", params=params, headers=headers)
        assert r.status_code == 200, r.text
        return {int(x["service_request_id"]) for x in r.json()}

    assert ids(service_request_id=f"{a},{b}") == {a, b}
    assert b in ids(service_code="rubbish")
    assert a not in ids(service_code="rubbish")
    assert {a, b} <= ids(status="open")
    assert not {a, b} & ids(status="closed")
    assert not {a, b} & ids(start_date="2020-01-01T00:00:00Z", end_date="2020-02-01T00:00:00Z")
    assert {a, b} <= ids(start_date="2020-01-01T00:00:00Z", service_request_id=f"{a},{b}")
    for params, field in (
        ({"start_date": "2020-01-01T00:00:00Z", "end_date": "2020-06-01T00:00:00Z"}, "end_date"),
        ({"start_date": "yesterday"}, "start_date"),
        ({"status": "pending"}, "status"),
        ({"service_request_id": "1,x"}, "service_request_id"),
    ):
        r = client.get(f"{V2}/requests.json", params=params, headers=headers)
        assert r.status_code == 400, (params, r.text)
        assert r.json()[0]["description"].startswith(f"{field}:")


# --- a client library written against the specification, on a live server -------------------


def test_a_maintained_open311_client_reads_what_was_posted(
    server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """georeport (PyPI) lists services, definitions and requests in JSON and XML; it does
    not post, so the request goes as the specification says: a url-encoded form, here
    multipart with a photo."""
    url, key = strips_database(server_url, "gridwork_test_open311_live")
    engine = make_engine(url)
    try:
        lon, lat = inside(engine, GRID)
    finally:
        engine.dispose()
    monkeypatch.setenv("GRIDWORK_OPEN311_PUBLIC_LISTING", "true")
    with live_server(url) as live:
        root = f"{live.url}{V2}"
        as_json, as_xml = GeoReport(root), GeoReport(root, output_format="xml")
        codes = {s["service_code"] for s in as_json.get_service_list()}
        assert "street_light" in codes
        assert {s["service_code"] for s in as_xml.get_service_list()} == codes
        assert as_json.get_service_definition("street_light")["attributes"] == []
        assert as_xml.get_service_definition("street_light")["service_code"] == "street_light"

        buf = io.BytesIO()
        Image.new("RGB", (32, 32), (0, 90, 200)).save(buf, "PNG")
        form = {"api_key": key, "service_code": "street_light", "lat": str(lat),
                "long": str(lon), "description": "Lamp out at the corner",
                "email": "rui@example.org"}  # fmt: skip
        r = httpx.post(f"{root}/requests.json", data=form,
                       files={"media": ("lamp.png", buf.getvalue(), "image/png")})  # fmt: skip
        assert r.status_code == 201, r.text
        case_id = r.json()[0]["service_request_id"]

        one = as_json.get_service_request(case_id)
        assert (one["service_request_id"], one["status"]) == (case_id, "open")
        assert "reporter_contact" not in one  # the public listing never shows it
        xml_one = as_xml.get_service_request(case_id)
        assert (xml_one["service_code"], xml_one["status"]) == ("street_light", "open")
        # the photo, as the client reads its address: absolute, served to the same public
        assert one["media_url"] == xml_one["media_url"]
        assert one["media_url"].startswith(f"{root}/requests/{case_id}/media/")
        photo = httpx.get(one["media_url"])
        assert photo.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(photo.content)).size == (32, 32)
        listed = as_json.get_service_requests(service_request_id=case_id, status="open")
        assert [x["service_request_id"] for x in listed] == [case_id]
        assert as_xml.get_service_requests(service_request_id=case_id)["status"] == "open"
