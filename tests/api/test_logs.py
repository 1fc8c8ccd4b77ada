"""GRIDWORK_LOG_FORMAT: one JSON object per line (or text), and gridwork's access line in
place of uvicorn's: the route template, status, duration and request id, never the path's
ids or the query string (a watch's key and position, a name)."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import secrets
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.logs import ACCESS, JsonFormatter, RequestIdFilter, TextFormatter, log_config
from data.db import make_engine
from data.models import Role
from tests.factory import Account, add_accounts, add_key, database, make_app, sign_in

ADMIN = Account("l-admin", Role.admin)


@pytest.fixture(scope="module")
def engine(server_url: str) -> Iterator[Engine]:
    engine = make_engine(database(server_url, "gridwork_test_logs"))
    add_accounts(engine, [ADMIN])
    yield engine
    engine.dispose()


@pytest.fixture
def access_lines() -> Iterator[io.StringIO]:
    """gridwork.access at INFO into a buffer, as ``log_config('json')`` sets it up."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    level, propagate = ACCESS.level, ACCESS.propagate
    ACCESS.addHandler(handler)
    ACCESS.setLevel(logging.INFO)
    ACCESS.propagate = False
    try:
        yield buffer
    finally:
        ACCESS.removeHandler(handler)
        ACCESS.setLevel(level)
        ACCESS.propagate = propagate


def test_access_lines_name_the_route_not_the_request(
    engine: Engine, access_lines: io.StringIO
) -> None:
    key = add_key(engine, f"l-watch-{secrets.token_hex(3)}")
    with TestClient(make_app(engine)) as client:
        headers = sign_in(client, ADMIN.username)
        r = client.get("/elders/987654321", headers=headers)
        assert r.status_code == 404
        given = client.get("/health", headers={"X-Request-ID": "proxy-abc.123"})
        client.get("/ingest/osmand", params={"id": "watch-of-wang", "lat": 41.14159, "key": key})
    lines = [json.loads(line) for line in access_lines.getvalue().splitlines()]
    by_route = {line["route"]: line for line in lines}
    elder = by_route["/elders/{elder_id}"]
    assert elder["status"] == 404 and elder["method"] == "GET"
    assert elder["logger"] == "gridwork.access" and elder["level"] == "info"
    assert elder["duration_ms"] >= 0 and elder["time"][:2] == "20"
    assert elder["request_id"] == r.headers["x-request-id"]
    assert by_route["/health"]["request_id"] == "proxy-abc.123" == given.headers["x-request-id"]
    assert by_route["/ingest/osmand"]["status"] == 422  # no lon
    text = access_lines.getvalue()
    # The values are long enough that a timestamp, a duration or a random request id
    # cannot contain them by chance ("41.1" once matched the time 22:16:41.135).
    for secret in ("987654321", key, "watch-of-wang", "41.14159", "key=", ADMIN.username):
        assert secret not in text, secret


def test_a_forged_request_id_is_replaced(engine: Engine, access_lines: io.StringIO) -> None:
    with TestClient(make_app(engine)) as client:
        r = client.get("/health", headers={"X-Request-ID": "a\tb"})
    assert r.headers["x-request-id"] != "a\tb" and len(r.headers["x-request-id"]) == 16
    assert "a\\tb" not in access_lines.getvalue()


def test_without_the_access_logger_nothing_is_added(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """Tests and benchmarks (no log config): no access line, no request id header. (The level
    is set here: a test run earlier in this process may have turned the root logger to INFO.)"""
    caplog.set_level(logging.WARNING, logger=ACCESS.name)
    assert not ACCESS.isEnabledFor(logging.INFO)
    with TestClient(make_app(engine)) as client:
        assert "x-request-id" not in client.get("/health").headers


def test_json_lines_of_any_logger(capsys: pytest.CaptureFixture[str]) -> None:
    """The config ``gridwork serve`` gives uvicorn: its lines and the app's are JSON."""
    names = ("", "uvicorn", "uvicorn.error", "uvicorn.access", ACCESS.name)
    saved = {n: (logging.getLogger(n).handlers[:], logging.getLogger(n).level,
                 logging.getLogger(n).propagate) for n in names}  # fmt: skip
    try:
        logging.config.dictConfig(log_config("json"))
        logging.getLogger("uvicorn.error").info("Started server process [%d]", 42)
        logging.getLogger("uvicorn.access").info('127.0.0.1 - "GET /x?key=K HTTP/1.1" 200')
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("gridwork.api").exception("unexpected")
        err = capsys.readouterr().err
    finally:
        for name, (handlers, level, propagate) in saved.items():
            logger = logging.getLogger(name)
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate = propagate
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert [line["logger"] for line in lines] == ["uvicorn.error", "gridwork.api"]
    assert lines[0]["message"] == "Started server process [42]"
    assert "ValueError: boom" in lines[1]["error"] and lines[1]["level"] == "error"
    assert "key=K" not in err  # uvicorn's own access line is silenced


def test_text_lines_carry_the_request_id() -> None:
    record = logging.LogRecord(
        "gridwork.access", logging.INFO, __file__, 1, "GET /locate", (), None
    )
    record.request_id = "r1"
    assert TextFormatter().format(record).endswith("gridwork.access: GET /locate [r1]")
