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
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api import alert_fanout
from api.routers import care_pages
from api.state import app_state
from data.access.queries import AreaScope
from data.care import queries as q
from data.changes import Bell, ChangeFeed
from data.db import transaction
from data.policy import sees_alert
from tests.care.conftest import HOME_GRID, count, enrol


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


def _events(body: str, kind: str = "alert") -> list[dict[str, Any]]:
    """The JSON of each ``event: kind`` block of a server-sent stream, in order."""
    out: list[dict[str, Any]] = []
    for block in body.split("\n\n"):
        lines = block.splitlines()
        if f"event: {kind}" in lines:
            out.extend(json.loads(x[len("data: ") :]) for x in lines if x.startswith("data: "))
    return out


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
    """The stream looks once when it opens, then (polling) not for 10 s; it ends after 5 s.
    An alert raised after 1 s is in it only if the bell woke it: with ``wake=poll`` it is
    not. (The test client hands the body over once the stream has ended.)"""
    elder = enrol(client, staff["care_staff"], f"watch-stream-{wake}")
    monkeypatch.setattr(care_pages, "STREAM_POLL_S", 30.0)
    monkeypatch.setattr(care_pages, "STREAM_LIFETIME_S", 5.0)
    monkeypatch.setattr(app_state(client.app).settings, "alert_stream_wake", wake)  # type: ignore[arg-type]

    def later() -> None:
        time.sleep(1.0)  # the stream has made its first look by now
        _raise_alert(care, elder["id"])

    # Polling inboxes look together, at multiples of STREAM_POLL_S: none within this stream.
    while time.monotonic() % care_pages.STREAM_POLL_S > 20.0:
        time.sleep(0.2)
    threading.Thread(target=later, daemon=True).start()
    r = client.get("/app/alerts/stream", headers=staff["care_staff"])
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    events = _events(r.text)
    if wake == "notify":
        assert [(e["elder_id"], e["kind"]) for e in events] == [(elder["id"], "sos")]
    else:
        assert events == []


def _streams(
    client: TestClient, headers: dict[str, dict[str, str]], who: list[str], kind: str = "alert"
) -> dict[str, list[dict[str, Any]]]:
    """Open one stream per reader at once (the same app, the same event loop); each one's
    events of ``kind`` (new alerts; ``status``: changes) once all have ended."""
    got: dict[str, list[dict[str, Any]]] = {}

    def read(name: str) -> None:
        r = client.get("/app/alerts/stream", headers=headers[name])
        assert r.status_code == 200, r.text
        got[name] = _events(r.text, kind)

    threads = [threading.Thread(target=read, args=(name,)) for name in who]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return got


def test_one_look_per_wake_for_every_open_inbox_and_one_audit_row_per_reader(
    client: TestClient,
    staff: dict[str, dict[str, str]],
    care: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Four inboxes open, one alert at home: it is read once for all (``alerts_by_id``),
    reaches the three readers whose area holds it and not the one elsewhere, and each of
    the three has its audit row, the three written by one statement."""
    elder = enrol(client, staff["care_staff"], "watch-fanout")
    monkeypatch.setattr(care_pages, "STREAM_LIFETIME_S", 4.0)
    reads: list[list[int]] = []
    statements: list[list[str]] = []
    by_id, audits = q.alerts_by_id, alert_fanout.write_audits

    def counted_read(db: Any, ids: Any) -> Any:
        reads.append(list(ids))
        return by_id(db, ids)

    def counted_audit(db: Any, rows: Any) -> None:
        statements.append([r.actor for r in rows])
        audits(db, rows)

    monkeypatch.setattr(q, "alerts_by_id", counted_read)
    monkeypatch.setattr(alert_fanout, "write_audits", counted_audit)
    start = count(care, "SELECT coalesce(max(id), 0) FROM audit_log")

    def later() -> None:
        time.sleep(1.5)  # every stream is open by now
        _raise_alert(care, elder["id"])

    threading.Thread(target=later, daemon=True).start()
    got = _streams(client, staff, ["care_staff", "admin", "home_worker", "far_care"])
    assert {who: [e["elder_id"] for e in events] for who, events in got.items()} == {
        "care_staff": [elder["id"]],
        "admin": [elder["id"]],
        "home_worker": [elder["id"]],
        "far_care": [],
    }
    assert len(reads) == 1
    assert [sorted(s) for s in statements] == [["c-admin", "c-care", "c-home-worker"]]
    with care.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT actor, subject_type, subject_ids FROM audit_log WHERE id > :s "
                "AND route = '/app/alerts/stream' ORDER BY actor"
            ),
            {"s": start},
        ).all()
    assert [tuple(r) for r in rows] == [
        (actor, "elder", [str(elder["id"])]) for actor in ("c-admin", "c-care", "c-home-worker")
    ]


def test_an_alert_committed_after_a_newer_one_still_reaches_the_inbox(
    client: TestClient,
    staff: dict[str, dict[str, str]],
    care: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Alert 1 takes its id first but commits last: the stream has sent alert 2 by then,
    and still sends alert 1 (it used to send only ids above the last one sent)."""
    elder = enrol(client, staff["care_staff"], "watch-late")
    monkeypatch.setattr(care_pages, "STREAM_LIFETIME_S", 5.0)
    took_id, may_commit = threading.Event(), threading.Event()

    def slow() -> None:
        with transaction(care) as session:
            home = session.execute(
                text("SELECT id FROM grid WHERE code = :c AND valid_to IS NULL"),
                {"c": HOME_GRID},
            ).scalar_one()
            q.insert_alerts(
                session,
                [q.NewAlert(elder["id"], "no_fix", datetime.now(UTC), None, home, home, "late")],
            )
            took_id.set()
            may_commit.wait(30)

    def scenario() -> None:
        time.sleep(1.0)  # the stream is open
        threading.Thread(target=slow, daemon=True).start()
        took_id.wait(10)
        _raise_alert(care, elder["id"])  # a higher id, committed at once
        time.sleep(1.0)  # sent by now
        may_commit.set()

    threading.Thread(target=scenario, daemon=True).start()
    got = _streams(client, staff, ["care_staff"])["care_staff"]
    assert [(e["id"], e["kind"]) for e in got] == [(2, "sos"), (1, "no_fix")]


def test_an_alert_acknowledged_or_closed_elsewhere_reaches_the_open_inboxes_of_its_area(
    client: TestClient,
    staff: dict[str, dict[str, str]],
    care: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A colleague takes an alert ("I'm on it") and closes it, and a watch's no-fix alert
    closes by itself when it reports again: every open inbox of the area is told each change
    once, as the card should now read, and audited; one elsewhere is told nothing. They used to
    learn of it only on reload, and two people went to the same call."""
    elder = enrol(client, staff["care_staff"], "watch-changes")
    monkeypatch.setattr(care_pages, "STREAM_LIFETIME_S", 6.0)
    start = count(care, "SELECT coalesce(max(id), 0) FROM audit_log")
    _raise_alert(care, elder["id"])
    sos = count(care, "SELECT max(id) FROM alert")
    with transaction(care) as session:
        home = session.execute(
            text("SELECT id FROM grid WHERE code = :c AND valid_to IS NULL"), {"c": HOME_GRID}
        ).scalar_one()
        no_fix = q.insert_alerts(
            session,
            [q.NewAlert(elder["id"], "no_fix", datetime.now(UTC), None, home, home, "quiet")],
        )[0]

    def later() -> None:
        time.sleep(1.5)  # every stream is open by now
        colleague = staff["home_worker"]
        assert client.post(f"/alerts/{sos}/ack", headers=colleague).status_code == 200
        time.sleep(1.0)
        assert client.post(f"/alerts/{sos}/close", headers=colleague).status_code == 200
        with transaction(care) as session:  # the watch reports again
            q.close_by_itself(session, [(elder["id"], "no_fix", datetime.now(UTC))])

    threading.Thread(target=later, daemon=True).start()
    got = _streams(client, staff, ["care_staff", "admin", "far_care"], kind="status")
    ours = [(e["id"], e["status"]) for e in got["care_staff"] if e["elder_id"] == elder["id"]]
    assert ours == [(sos, "acknowledged"), (sos, "closed"), (no_fix, "closed")]
    told = {(e["id"], e["status"]) for e in got["admin"] if e["elder_id"] == elder["id"]}
    assert told == set(ours)
    assert got["far_care"] == []
    closed = next(e for e in got["care_staff"] if e["id"] == no_fix)
    assert closed["by_itself"] and closed["acknowledged_by"] is None
    assert (
        next(e for e in got["care_staff"] if e["status"] == "acknowledged")["acknowledged_by"]
        == "c-home-worker"
    )
    with care.connect() as conn:
        readers = conn.execute(
            text(
                "SELECT DISTINCT actor FROM audit_log WHERE id > :s "
                "AND route = '/app/alerts/stream' AND :e = ANY(subject_ids)"
            ),
            {"s": start, "e": str(elder["id"])},
        ).scalars()
        assert set(readers) == {"c-care", "c-admin"}


def test_sees_alert_answers_as_the_alert_queries_do(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine
) -> None:
    """``data.policy.sees_alert`` (the live inboxes' filter) against ``ALERT_SQL`` (every
    alert list): alerts raised here, at home, both, neither and outside every grid, for
    callers everywhere, nowhere and in various grids."""
    elder = enrol(client, staff["care_staff"], "watch-rule")
    with care.connect() as conn:
        grids = [
            int(i)
            for i in conn.execute(
                text("SELECT id FROM grid WHERE valid_to IS NULL ORDER BY code LIMIT 3")
            ).scalars()
        ]
    a, b, c = grids
    places = [(a, a), (a, b), (b, a), (c, b), (None, a), (None, c), (b, b)]
    with transaction(care) as session:
        ids = q.insert_alerts(
            session,
            [
                q.NewAlert(elder["id"], "sos", datetime.now(UTC), None, g, h, "rule")
                for g, h in places
            ],
        )
    where = dict(zip(ids, places, strict=True))
    scopes = [AreaScope.everywhere()] + [
        AreaScope(frozenset(), frozenset(), frozenset(grid_ids), frozenset())
        for grid_ids in ([], [a], [b], [c], [a, c], [b, c])
    ]
    for scope in scopes:
        with care.connect() as conn:
            listed = q.list_alerts(
                conn, scope, status=None, limit=100, offset=0, with_position=False
            )
        expected = {
            i for i, (g, h) in where.items() if sees_alert(scope, grid_id=g, home_grid_id=h)
        }
        assert {x["id"] for x in listed} == expected, scope
