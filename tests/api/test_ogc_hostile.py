"""Hostile query parameters at /ogc: each a clear 4xx naming the parameter, never a 5xx.

The values are the ones a fuzzer sends (schemathesis found them against /ogc/api): numbers past
64 bits, datetimes on layers that have no time, CQL2 filters that do not parse, name columns
that do not exist, call database functions, compare text with numbers or nest thousands deep.
Every request goes through the whole app (authentication, the OGC wrapper, tipg, PostGIS) as
the district-wide integration key a GIS tool would hold.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import quote, urlencode

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests import gridded as fixtures
from tests.gridded import Gridded

gridded = fixtures.gridded
gridded_app = fixtures.gridded_app

GRIDS = "/ogc/collections/ogc.grids"
TILE = f"{GRIDS}/tiles/WebMercatorQuad/14/7800/6134"
BIG = "99999999999999999999"  # past 2^64
JUST_PAST_INT64 = "9223372036854775808"  # 2^63


@pytest.fixture(scope="module")
def client(gridded_app, gridded: Gridded) -> Iterator[TestClient]:
    """The integration's client; a 5xx comes back as a response (as a GIS tool would see it)
    rather than as the server's exception, so that the assertion shows the status."""
    with TestClient(gridded_app, raise_server_exceptions=False) as c:
        c.headers["X-API-Key"] = gridded.integration_key
        yield c


def at(path: str, **params: str) -> str:
    """``path?params`` encoded as a client would send them (``filter_lang`` is ``filter-lang``)."""
    pairs = {k.replace("_", "-"): v for k, v in params.items()}
    return f"{path}?{urlencode(pairs, quote_via=quote)}"


ITEMS = f"{GRIDS}/items"
JSON_FILTER_WITH_UNKNOWN_PROPERTY = json.dumps(
    {"op": "=", "args": [{"property": "national_id"}, "x"]}
)
JSON_FILTER_CALLING_A_FUNCTION = json.dumps(
    {"op": "isNull", "args": [{"op": "pg_sleep", "args": [5]}]}
)

HOSTILE = [
    # datetime: the layers have no time column; or it is no RFC 3339 instant or interval
    (at(ITEMS, datetime="2024-01-01T00:00:00Z"), 400, "datetime"),
    (at(ITEMS, datetime="2024-01-01T00:00:00Z/.."), 400, "datetime"),
    (at(TILE, datetime="2020-01-01T00:00:00Z"), 400, "datetime"),
    (at(ITEMS, datetime="0"), 422, "datetime"),
    (at(ITEMS, datetime="1/2/3"), 422, "datetime"),
    (at("/ogc/collections", datetime="1/2/3"), 422, "datetime"),
    # bbox of the collections list: tipg's own parser, which made a word a 500 (schemathesis)
    (at("/ogc/collections", bbox="null"), 422, "bbox"),
    (at("/ogc/collections", bbox="10,50,0,40"), 422, "bbox"),
    # filter: does not parse, unknown property, unknown function, wrong type, not a condition
    (at(ITEMS, filter="foo bar"), 422, "filter"),
    (at(ITEMS, filter="code = "), 422, "filter"),
    (at(ITEMS, filter="national_id = 1"), 422, "filter"),
    (at(ITEMS, filter="code = 1"), 422, "filter"),
    (at(ITEMS, filter="id = 'abc'"), 422, "filter"),
    (at(ITEMS, filter="id = 1e400"), 422, "filter"),
    (at(ITEMS, filter="version() LIKE 'PostgreSQL%'"), 422, "filter"),
    (at(ITEMS, filter="pg_sleep(5) IS NULL"), 422, "filter"),
    (at(ITEMS, filter="households / 0 = 1"), 422, "filter"),
    (at(ITEMS, filter="code"), 422, "filter"),
    (at(ITEMS, filter="1"), 422, "filter"),
    (at(ITEMS, filter="NOT " * 65 + "id = 1"), 422, "filter"),
    (at(TILE, filter="households > 1 AND"), 422, "filter"),
    # filter-lang: the filter is not in the language declared
    (at(ITEMS, filter_lang="cql2-json", filter='{"op": "=", "args": ['), 422, "filter"),
    (at(ITEMS, filter_lang="cql2-json", filter="code = 'x'"), 422, "filter"),
    (at(ITEMS, filter_lang="cql2-text", filter=JSON_FILTER_WITH_UNKNOWN_PROPERTY), 422, "filter"),
    (at(ITEMS, filter_lang="cql2-json", filter=JSON_FILTER_WITH_UNKNOWN_PROPERTY), 422, "filter"),
    (at(ITEMS, filter_lang="cql2-json", filter=JSON_FILTER_CALLING_A_FUNCTION), 422, "filter"),
    # offset, limit: past what PostgreSQL's bigint holds, negative where nothing checked it
    (at(ITEMS, offset=BIG), 422, "offset"),
    (at(ITEMS, offset=JUST_PAST_INT64), 422, "offset"),
    (at(TILE, limit="-1"), 422, "limit"),
    (at(TILE, limit=f"-{BIG}"), 422, "limit"),
    # ids and item ids: past the id column's integer type
    (at(ITEMS, ids=BIG), 422, "ids"),
    (at(ITEMS, ids=f"1,{JUST_PAST_INT64}"), 422, "ids"),
    (at(ITEMS, ids="1,,2"), 422, "ids"),
    (at(TILE, ids=BIG), 422, "ids"),
    (f"{ITEMS}/{BIG}", 422, "itemId"),
    (f"{ITEMS}/-{JUST_PAST_INT64}0", 422, "itemId"),
    # the other values tipg writes into SQL: simplify, and filters by a property's value
    (at(ITEMS, simplify="nan"), 422, "simplify"),
    (at(TILE, simplify="inf"), 422, "simplify"),
    (at(ITEMS, households="abc"), 422, "households"),
    (at(ITEMS, households=BIG), 422, "households"),
    (at(ITEMS, geom="POINT(0 0)"), 422, "geom"),
    # minzoom, maxzoom of the TileJSON and style documents: past 64 bits, outside the matrix
    (
        at(f"{GRIDS}/tiles/WebMercatorQuad/tilejson.json", maxzoom=f"-{JUST_PAST_INT64}"),
        422,
        "maxzoom",
    ),
    (at(f"{GRIDS}/tiles/WebMercatorQuad/style.json", minzoom=BIG), 422, "minzoom"),
    # geom-column: a column that is not there
    (at(f"{GRIDS}/tiles/WebMercatorQuad/tilejson.json", geom_column="null"), 422, "geom-column"),
    (at(f"{GRIDS}/tiles/WebMercatorQuad/style.json", geom_column="code"), 422, "geom-column"),
]


@pytest.mark.parametrize(("path", "status", "parameter"), HOSTILE)
def test_hostile_parameter_is_a_4xx_naming_it(
    client: TestClient, path: str, status: int, parameter: str
) -> None:
    r = client.get(path)
    assert r.status_code == status, (path, r.status_code, r.text[:300])
    assert r.headers["content-type"] == "application/problem+json", r.headers
    body = r.json()
    assert body["status"] == status
    assert body["field"] == parameter, body
    assert body["detail"].startswith(f"{parameter}: "), body


def test_a_filter_nested_thousands_deep_is_refused_and_the_server_lives(
    client: TestClient, gridded: Gridded
) -> None:
    """cql2's parser recurses on the C stack: 2,000 nested parentheses used to crash the
    whole server process (a segmentation fault), not just the request. Parentheses leave no
    trace in the parsed filter (nor do signs), so they are answered; deep operators are refused."""
    with gridded.engine.connect() as conn:
        first = conn.execute(text("SELECT min(id) FROM ogc.grids")).scalar_one()
    for shallow in ("(" * 3000 + f"id = {first}" + ")" * 3000, "id = " + "-" * 5000 + str(first)):
        r = client.get(ITEMS, params={"filter": shallow})
        assert r.status_code == 200, r.text[:300]
        assert [f["id"] for f in r.json()["features"]] == [first]
    for deep in ("NOT " * 3000 + "id = 1", "+".join(["1"] * 3000) + " = id"):
        r = client.get(ITEMS, params={"filter": deep})
        assert r.status_code == 422, r.text[:300]
        assert r.json()["field"] == "filter"
        assert "deeper than 64" in r.json()["detail"]
    r = client.get(ITEMS, params={"filter": "id = 1 OR " * 2000 + "id = 1"})
    assert r.status_code == 422, r.text[:300]
    assert r.json()["field"] == "filter" and "at most 16,000" in r.json()["detail"]
    assert client.get(ITEMS, params={"limit": 1}).status_code == 200


def test_a_filter_cannot_read_other_tables(client: TestClient) -> None:
    """The OGC layers are views; a filter that names a function could read any table the
    database user can (households, elders) one yes/no answer at a time, unaudited."""
    probe = "query_to_xml('select count(*) from public.household', true, false, '') IS NULL"
    r = client.get(ITEMS, params={"filter": probe})
    assert r.status_code == 422, r.text[:300]
    assert "query_to_xml" in r.json()["detail"]


def test_sound_parameters_still_answer(client: TestClient, gridded: Gridded) -> None:
    with gridded.engine.connect() as conn:
        grid_id, code, households = conn.execute(
            text("SELECT id, code, households FROM ogc.grids ORDER BY code LIMIT 1")
        ).one()
    code_filter = {"op": "=", "args": [{"property": "code"}, code]}
    for params in (
        {"filter": f"code = '{code}'"},
        {"filter": f"code = '{code}'", "filter-lang": "cql2-text"},
        {"filter": json.dumps(code_filter), "filter-lang": "cql2-json"},
        {"filter": f"casei(code) = '{code.lower()}' AND households >= {households}"},
        {"filter": f"code IN ('{code}', 'nothing') AND NOT households IS NULL"},
        {"filter": f"S_INTERSECTS(geom, BBOX(-9, 41, -8, 42)) AND code LIKE '{code}'"},
        {"ids": str(grid_id)},
        {"ids": f"{grid_id},2147483647"},
        {"households": str(households), "code": code},
    ):
        r = client.get(f"{GRIDS}/items", params=params)
        assert r.status_code == 200, (params, r.text[:300])
        assert code in {f["properties"]["code"] for f in r.json()["features"]}, params
    r = client.get(f"{GRIDS}/items", params={"offset": 9223372036854775807, "limit": 1})
    assert r.status_code == 200 and r.json()["features"] == []
    assert client.get(f"{GRIDS}/items", params={"simplify": 0.0001}).status_code == 200
    assert client.get(f"{GRIDS}/items/{grid_id}").json()["properties"]["code"] == code
    assert client.get(f"{GRIDS}/items/2147483647").status_code == 404  # a number, but no row
    assert client.get(f"{GRIDS}/items/abc").status_code == 404
    assert client.get(TILE, params={"limit": 5}).status_code == 200
    r = client.get("/ogc/collections", params={"datetime": "2024-01-01T00:00:00Z/.."})
    assert r.status_code == 200  # no layer has time, so none matches; not an error
