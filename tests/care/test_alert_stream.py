"""The live inbox wakes on ``NOTIFY gridwork_alert`` instead of polling the alert table.

An alert raised in a transaction rings the change feed's bell when (and only when) that
transaction commits; the stream at ``/app/alerts/stream``, its half-second poll stretched
to half a minute here, still sends the alert raised while it waits: only the bell can have
woken it. ``bench/inbox.py`` measures the same with 100 inboxes under load.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.routers import care_pages
from api.state import app_state
from data.care import queries as q
from data.changes import Bell, ChangeFeed
from data.db import transaction
from tests.care.conftest import HOME_GRID, enrol


def _raise_alert(engine: Engine, elder_id: int, *, commit: bool = True) -> None:
    """An SOS at home (the care staff's area), as ingest raises it."""
    with transaction(engine) as session:
        home = session.execute(
            text("SELECT id FROM grid WHERE code = :c AND valid_to IS NULL"), {"c": HOME_GRID}
        ).scalar_one()
        q.insert_alerts(
            session,
            [q.NewAlert(elder_id, "sos", datetime.now(UTC), None, home, home, "test")],
        )
        if not commit:
            session.rollback()


def test_bell_wakes_a_waiter_from_another_thread() -> None:
    async def scenario() -> tuple[bool, float, bool, bool]:
        bell = Bell()
        seen = bell.rings
        t0 = time.monotonic()
        threading.Timer(0.2, bell.ring).start()
        woken = await bell.wait(seen, 10)
        waited = time.monotonic() - t0
        already = await bell.wait(seen, 10)  # it rang since ``seen``: no wait at all
        quiet = await bell.wait(bell.rings, 0.1)  # nobody rings: times out
        return woken, waited, already, quiet

    woken, waited, already, quiet = asyncio.run(scenario())
    assert woken and waited < 5 and already and not quiet


def test_a_committed_alert_rings_the_feed_and_a_rolled_back_one_does_not(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine
) -> None:
    elder = enrol(client, staff["care_staff"], "watch-bell")
    feed = ChangeFeed.for_engine(care)
    feed.start()
    try:
        assert feed.live
        before = feed.alerts.rings
        _raise_alert(care, elder["id"], commit=False)
        time.sleep(1.2)  # the listener reads notifications every 0.5 s at the latest
        assert feed.alerts.rings == before
        _raise_alert(care, elder["id"])
        deadline = time.monotonic() + 5
        while feed.alerts.rings == before:
            assert time.monotonic() < deadline, "the commit never rang the bell"
            time.sleep(0.02)
    finally:
        feed.stop()


@pytest.mark.parametrize("wake", ["notify", "poll"])
def test_the_stream_sends_a_new_alert_when_the_bell_rings(
    client: TestClient,
    staff: dict[str, dict[str, str]],
    care: Engine,
    monkeypatch: pytest.MonkeyPatch,
    wake: str,
) -> None:
    """The stream looks once when it opens, then (polling) not for 30 s; it ends after 5 s.
    An alert raised after 1 s is in it only if the bell woke it: with ``wake=poll`` it is
    not. (The test client hands the body over once the stream has ended.)"""
    elder = enrol(client, staff["care_staff"], f"watch-stream-{wake}")
    monkeypatch.setattr(care_pages, "STREAM_POLL_S", 30.0)
    monkeypatch.setattr(care_pages, "STREAM_LIFETIME_S", 5.0)
    monkeypatch.setattr(app_state(client.app).settings, "alert_stream_wake", wake)  # type: ignore[arg-type]

    def later() -> None:
        time.sleep(1.0)  # the stream has made its first look by now
        _raise_alert(care, elder["id"])

    threading.Thread(target=later, daemon=True).start()
    r = client.get("/app/alerts/stream", headers=staff["care_staff"])
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    events = [
        json.loads(line[len("data: ") :])
        for line in r.text.splitlines()
        if line.startswith("data: ")
    ]
    if wake == "notify":
        assert [(e["elder_id"], e["kind"]) for e in events] == [(elder["id"], "sos")]
    else:
        assert events == []
