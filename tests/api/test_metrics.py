"""``/metrics``: Prometheus text whose labels are route templates, counts that move with the
requests, ingest refusals by reason, the gauges read at scrape time, no personal data, and
who may read it (admins, or a scraper's ``GRIDWORK_METRICS_KEY`` on this route only)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from data.db import make_engine
from data.models import Role, ScopeLevel
from tests.factory import Account, add_accounts, add_key, database, make_app, sign_in

KEY = secrets.token_urlsafe(40)
ADMIN = Account("m-admin", Role.admin)
PLANNER = Account("m-planner", Role.planner, ((ScopeLevel.street, "PORTO-CH"),))
# A point in Porto's historic centre: it must never show up in the metrics.
LON, LAT = -8.6110123, 41.1456789


@pytest.fixture(scope="module")
def engine(server_url: str) -> Iterator[Engine]:
    engine = make_engine(database(server_url, "gridwork_test_metrics", "porto"))
    add_accounts(engine, [ADMIN, PLANNER])
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def client(engine: Engine) -> Iterator[TestClient]:
    with TestClient(make_app(engine, metrics_key=KEY, ingest_per_minute=100_000)) as c:
        yield c


@pytest.fixture(scope="module")
def admin(client: TestClient) -> dict[str, str]:
    return sign_in(client, ADMIN.username)


def scrape(client: TestClient, headers: dict[str, str]) -> dict[tuple[str, frozenset], float]:
    """Every sample of ``/metrics`` as (name, labels) → value."""
    r = client.get("/metrics", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def requests_of(samples: dict, route: str, method: str = "GET", status: str = "2xx") -> float:
    labels = frozenset({"route": route, "method": method, "status": status}.items())
    return samples.get(("gridwork_http_request_duration_seconds_count", labels), 0.0)


def refused(samples: dict, reason: str) -> float:
    return samples.get(
        ("gridwork_ingest_refused_requests_total", frozenset({("reason", reason)})), 0.0
    )


def test_routes_are_labelled_by_template_and_counts_move(
    client: TestClient, admin: dict[str, str]
) -> None:
    before = scrape(client, admin)
    for elder in (101, 202, 303):
        assert client.get(f"/elders/{elder}", headers=admin).status_code == 404
    assert client.get("/health").status_code == 200
    assert client.get("/wp-admin/setup-config.php").status_code == 404
    assert client.get("/static/leaflet/leaflet.js").status_code == 200
    assert client.get("/ogc/collections/ogc.grids", headers=admin).status_code == 200
    after = scrape(client, admin)

    assert (
        requests_of(after, "/elders/{elder_id}", status="4xx")
        - requests_of(before, "/elders/{elder_id}", status="4xx")
        == 3
    )
    assert requests_of(after, "/health") - requests_of(before, "/health") == 1
    assert (
        requests_of(after, "unmatched", status="4xx")
        - requests_of(before, "unmatched", status="4xx")
        == 1
    )
    assert requests_of(after, "/static/{path}") - requests_of(before, "/static/{path}") == 1
    # the scrape itself is timed too, as /metrics
    assert requests_of(after, "/metrics") >= 1
    routes = {dict(labels).get("route") for name, labels in after if "request_duration" in name}
    # An id would stand as a path segment of digits ("/elders/101"); a template's own words
    # may hold digits ("/open311/v2/…"), so only whole segments of digits count.
    assert not [r for r in routes if r and re.search(r"/\d+(?=[/.]|$)", r)], (
        f"ids in route labels: {routes}"
    )
    assert "/wp-admin/setup-config.php" not in routes
    assert "/ogc/collections/{collectionId}" in routes, routes  # under its mount


def test_ingest_refusals_are_counted_by_reason(
    engine: Engine, client: TestClient, admin: dict[str, str]
) -> None:
    device_key = add_key(engine, f"m-watch-{secrets.token_hex(3)}")
    fix = {"id": "not-mine", "lat": str(LAT), "lon": str(LON), "timestamp": "1767225600"}
    before = scrape(client, admin)
    assert client.get("/ingest/osmand", params=fix).status_code == 401
    assert client.get("/ingest/osmand", params={**fix, "key": device_key}).status_code == 403
    bad = {**fix, "lat": "95.5", "key": device_key}
    assert client.get("/ingest/osmand", params=bad).status_code == 422
    r = client.post("/ingest/batch", json={"fixes": []}, headers={"X-API-Key": device_key})
    assert r.status_code == 422
    after = scrape(client, admin)
    assert refused(after, "no_key") - refused(before, "no_key") == 1
    assert refused(after, "forbidden") - refused(before, "forbidden") == 1
    assert refused(after, "unreadable") - refused(before, "unreadable") == 2
    assert (
        requests_of(after, "/ingest/osmand", status="4xx")
        - requests_of(before, "/ingest/osmand", status="4xx")
        == 3
    )


def test_gauges_are_read_at_scrape_time(client: TestClient, admin: dict[str, str]) -> None:
    samples = scrape(client, admin)
    assert samples[("gridwork_change_feed_live", frozenset())] == 1
    assert samples[("gridwork_change_feed_generation", frozenset())] >= 1
    assert samples[("gridwork_ingest_queue_pending", frozenset())] == 0
    assert samples[("gridwork_ingest_queue_limit", frozenset())] == 5000
    assert samples[("gridwork_backlog_up", frozenset())] == 1
    assert samples[("gridwork_alerts", frozenset({("status", "open")}))] == 0
    assert samples[("gridwork_webhook_outbox", frozenset({("state", "waiting")}))] == 0
    assert any(name.startswith("process_cpu_seconds") for name, _ in samples)


def test_tile_cache_hits_and_misses(client: TestClient, admin: dict[str, str]) -> None:
    """A tile drawn once and then served from memory: one miss, one hit, its bytes kept."""

    def tiles(samples: dict) -> tuple[float, ...]:
        requests = "gridwork_tile_cache_requests_total"
        return (
            *(samples[(requests, frozenset({("result", r)}))] for r in ("hit", "miss")),
            samples[("gridwork_tile_cache_bytes", frozenset())],
        )

    hits, misses, size = tiles(scrape(client, admin))
    assert ("gridwork_tile_cache_requests_total", frozenset({("result", "unchanged")})) in (
        scrape(client, admin)
    )
    path = "/ogc/collections/ogc.communities/tiles/WebMercatorQuad/14/7800/6133"
    for _ in range(2):
        assert client.get(path, headers=admin).status_code == 200
    now = tiles(scrape(client, admin))
    assert now[:2] == (hits + 1, misses + 1) and now[2] > size


def test_no_personal_data(engine: Engine, client: TestClient, admin: dict[str, str]) -> None:
    """Names, keys, coordinates and query strings sent meanwhile appear nowhere."""
    device_key = add_key(engine, f"m-watch-{secrets.token_hex(3)}")
    client.get("/locate", params={"lon": LON, "lat": LAT}, headers=admin)
    client.get("/households", params={"q": "Wang Xiuying"}, headers=admin)
    client.get(
        "/ingest/osmand", params={"id": "watch-of-wang", "lat": LAT, "lon": LON, "key": device_key}
    )
    text = client.get("/metrics", headers=admin).text
    for secret in (
        ADMIN.username,
        device_key,
        "watch-of-wang",
        "Wang",
        str(LON)[:8],
        str(LAT)[:7],
        "lon=",
        "key=",
        admin["Authorization"].split()[1],
    ):
        assert secret not in text, secret


def test_who_may_read(client: TestClient, admin: dict[str, str]) -> None:
    assert client.get("/metrics").status_code == 401
    planner = sign_in(client, PLANNER.username)
    r = client.get("/metrics", headers=planner)
    assert r.status_code == 403 and "admin" in r.text
    assert client.get("/metrics", headers=admin).status_code == 200
    scraper = {"Authorization": f"Bearer {KEY}"}
    assert client.get("/metrics", headers=scraper).status_code == 200
    assert (
        client.get("/metrics", headers={"Authorization": f"Bearer {KEY[:-1]}x"}).status_code == 401
    )
    # the scrape key opens /metrics and nothing else
    assert client.get("/grids", headers=scraper).status_code == 401
    assert client.get("/audit", headers=scraper).status_code == 401


def test_off(engine: Engine) -> None:
    """GRIDWORK_METRICS=false: no route, no timing middleware."""
    from api.metrics import RequestMetrics

    app = make_app(engine, metrics=False)
    assert not [m for m in app.user_middleware if m.cls is RequestMetrics]
    with TestClient(app) as c:
        assert c.get("/metrics", headers=sign_in(c, ADMIN.username)).status_code == 404


def test_a_short_scrape_key_is_refused() -> None:
    from pydantic import ValidationError

    from data.settings import Settings

    with pytest.raises(ValidationError, match="GRIDWORK_METRICS_KEY"):
        Settings(metrics_key="short")


def test_ingest_notes_are_counted_by_code() -> None:
    """The codes of an ingest answer's notes (api.routers.ingest counts every answer's)."""
    from api.metrics import INGEST_NOTES, count_notes

    def seen(code: str) -> float:
        return INGEST_NOTES.labels(code)._value.get()

    before = {c: seen(c) for c in ("too_old", "no_position", "other")}
    count_notes(["reports[0] too_old: 2025-01-01 is older", "no_position: a keep-alive", "??"])
    assert {c: seen(c) - before[c] for c in before} == {"too_old": 1, "no_position": 1, "other": 1}
