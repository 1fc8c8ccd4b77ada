"""Case webhooks on real PostGIS with a real HTTP receiver (a tiny ``http.server`` thread):
an escalation (a handler's, the deadline sweep's) or a hand-off to a department is queued in
its own transaction, posted, retried with back-off after a failure, given up after the last
attempt, purged once old; the payload names the case and its area, never the reporter."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from data import webhooks
from data.access.queries import AreaScope
from data.db import make_engine, transaction
from data.district.workers import link_worker_account
from data.incidents import service
from data.incidents.queries import save_department
from data.models import Role, ScopeLevel
from tests.factory import Account, add_accounts, database, make_app, sign_in
from tests.incidents.conftest import inside

PEOPLE = {
    "worker": Account("h-worker", Role.grid_worker, ((ScopeLevel.grid, "131208-G01"),)),
    "street": Account("h-street", Role.coordinator, ((ScopeLevel.street, "PORTO-CH"),)),
}
REPORTER = {"reporter_name": "Wang Fang", "reporter_contact": "+86 138 0013 8000"}
DESCRIPTION = "water running out of the door of flat 3B"


class Receiver:
    """An HTTP endpoint on 127.0.0.1 answering each POST with the next scripted status
    (200 once the script is used up) and keeping what it was sent."""

    def __init__(self) -> None:
        self.script: list[int] = []
        self.bodies: list[bytes] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                outer.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(outer.script.pop(0) if outer.script else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def messages(self) -> list[dict[str, Any]]:
        return [json.loads(b) for b in self.bodies]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def engine(server_url: str) -> Iterator[Engine]:
    """A database of its own: the sweep and the delivery loop touch every row."""
    made = make_engine(database(server_url, "gridwork_test_case_hooks", "porto_grids"))
    add_accounts(made, PEOPLE.values())
    with transaction(made) as session:
        link_worker_account(session, "W-131208-G01", "h-worker")
        save_department(session, "WATER", "供水", "Water supply", None)
    yield made
    made.dispose()


@pytest.fixture
def client(engine: Engine, receiver: Receiver) -> Iterator[TestClient]:
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM webhook_outbox"))
    app = make_app(engine, care_tick_seconds=0, case_webhook_url=receiver.url)
    with TestClient(app) as c:
        yield c


def _report(client: TestClient, who: str, engine: Engine) -> int:
    lon, lat = inside(engine, "131208-G01")
    body = {"category": "leaking_pipe", "lon": lon, "lat": lat, "description": DESCRIPTION}
    r = client.post("/cases", json=body | REPORTER, headers=sign_in(client, PEOPLE[who].username))
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _outbox(engine: Engine, case_id: int) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT topic, url, payload, attempts, failed, delivered_at IS NOT NULL AS sent "
                "FROM webhook_outbox WHERE case_id = :c ORDER BY id"
            ),
            {"c": case_id},
        ).mappings()
        return [dict(r) for r in rows]


def _make_due(engine: Engine) -> None:
    """The test clock for back-off: every waiting row is due now."""
    with engine.begin() as conn:
        conn.execute(text("UPDATE webhook_outbox SET next_attempt_at = now()"))


def test_an_escalation_is_posted_after_a_failure_without_personal_data(
    client: TestClient, engine: Engine, receiver: Receiver
) -> None:
    cid = _report(client, "worker", engine)
    assert _outbox(engine, cid) == []  # a new report is the grid's own business
    headers = sign_in(client, "h-worker")
    r = client.post(f"/cases/{cid}/escalate", json={"reason": "pipe under the road"},
                    headers=headers)  # fmt: skip
    assert r.status_code == 200, r.text
    due = datetime.fromisoformat(r.json()["due_at"])
    [row] = _outbox(engine, cid)  # queued by the escalation's own transaction
    assert (row["topic"], row["url"], row["sent"]) == ("case", receiver.url, False)

    receiver.script = [500]
    assert webhooks.deliver(engine) == (0, 1)
    assert webhooks.deliver(engine) == (0, 0)  # back-off: not due again yet
    assert _outbox(engine, cid)[0]["attempts"] == 1
    _make_due(engine)
    assert webhooks.deliver(engine) == (1, 0)
    assert len(receiver.bodies) == 2 and receiver.bodies[0] == receiver.bodies[1]
    [row] = _outbox(engine, cid)
    assert (row["attempts"], row["sent"], row["failed"]) == (2, True, False)
    assert webhooks.deliver(engine) == (0, 0)  # delivered once, never again

    message = receiver.messages()[-1]
    assert message["type"] == "gridwork.case"
    case = message["case"]
    assert {k: case[k] for k in ("id", "event", "category", "from_level", "to_level")} == {
        "id": cid,
        "event": "escalated",
        "category": "leaking_pipe",
        "from_level": "grid",
        "to_level": "community",
    }
    assert case["reason"] == "pipe under the road"
    assert datetime.fromisoformat(case["due_at"]) == due
    assert (case["grid"], case["community"], case["street"]) == ("131208-G01", "131208", "PORTO-CH")
    raw = receiver.bodies[-1].decode()
    for personal in (*REPORTER.values(), DESCRIPTION, "h-worker"):
        assert personal not in raw, personal
    assert not {"reporter_name", "reporter_contact", "description", "lon", "lat"} & set(case)


def test_a_refused_or_rolled_back_escalation_queues_nothing(
    client: TestClient, engine: Engine, receiver: Receiver
) -> None:
    cid = _report(client, "worker", engine)
    headers = sign_in(client, "h-worker")
    r = client.post(f"/cases/{cid}/escalate", json={"reason": ""}, headers=headers)
    assert r.status_code == 422 and "reason" in r.text
    with pytest.raises(RuntimeError, match="fails after"):
        _escalate_then_fail(engine, cid, receiver.url)
    assert _outbox(engine, cid) == []
    with engine.connect() as conn:
        level = conn.execute(text("SELECT level::text FROM incident_case WHERE id = :c"),
                             {"c": cid}).scalar_one()  # fmt: skip
    assert level == "grid"


def _escalate_then_fail(engine: Engine, case_id: int, url: str) -> None:
    """An escalation queued, then the same transaction fails (and is rolled back)."""
    with transaction(engine) as session:
        viewer = service.viewer(session, AreaScope.everywhere(), None, "admin")
        service.escalate(session, viewer, case_id, "to the community", datetime.now(UTC),
                         webhook_url=url)  # fmt: skip
        queued = session.execute(text("SELECT count(*) FROM webhook_outbox WHERE case_id = :c"),
                                 {"c": case_id}).scalar_one()  # fmt: skip
        assert queued == 1
        raise RuntimeError("the request fails after the escalation")


def test_the_deadline_sweep_and_a_hand_off_are_posted(
    client: TestClient, engine: Engine, receiver: Receiver
) -> None:
    cid = _report(client, "worker", engine)
    later = datetime.now(UTC) + timedelta(hours=25)  # the pipe's 24 hours at grid level
    with engine.begin() as conn:  # other tests' cases stay out of this sweep
        conn.execute(text("UPDATE incident_case SET due_at = :far WHERE id <> :c AND "
                          "status IN ('new', 'accepted', 'in_progress')"),
                     {"far": later + timedelta(days=365), "c": cid})  # fmt: skip
    assert service.sweep(engine, now=later, webhook_url=receiver.url) == 1
    r = client.post(f"/cases/{cid}/handoff", json={"note": "main valve"},
                    headers=sign_in(client, "h-street"))  # fmt: skip
    assert r.status_code == 200, r.text
    assert [row["topic"] for row in _outbox(engine, cid)] == ["case", "case"]
    assert webhooks.deliver(engine) == (2, 0)
    swept, handed = (m["case"] for m in receiver.messages())
    assert (swept["event"], swept["from_level"], swept["to_level"]) == (
        "escalated",
        "grid",
        "community",
    )
    assert swept["reason"] == "deadline passed"
    assert datetime.fromisoformat(swept["due_at"]) == later + timedelta(hours=48)
    assert swept["street"] == "PORTO-CH" and swept["department"] is None
    assert (handed["event"], handed["department"], handed["reason"]) == (
        "to_department",
        "WATER",
        "main valve",
    )
    assert handed["from_level"] == handed["to_level"] == "community"


def test_without_a_url_nothing_is_queued(engine: Engine) -> None:
    with engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM webhook_outbox")).scalar_one()
    app = make_app(engine, care_tick_seconds=0)
    with TestClient(app) as c:
        cid = _report(c, "worker", engine)
        r = c.post(f"/cases/{cid}/escalate", json={"reason": "needs the community"},
                   headers=sign_in(c, "h-worker"))  # fmt: skip
        assert r.status_code == 200
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM webhook_outbox")).scalar_one() == before


def test_a_receiver_that_keeps_failing_is_given_up_then_purged(
    client: TestClient, engine: Engine, receiver: Receiver
) -> None:
    cid = _report(client, "worker", engine)
    r = client.post(f"/cases/{cid}/escalate", json={"reason": "blocked drain"},
                    headers=sign_in(client, "h-worker"))  # fmt: skip
    assert r.status_code == 200
    receiver.script = [503] * (webhooks.MAX_ATTEMPTS + 5)
    for attempt in range(1, webhooks.MAX_ATTEMPTS + 1):
        _make_due(engine)
        assert webhooks.deliver(engine) == (0, 1), attempt
    [row] = _outbox(engine, cid)
    assert (row["attempts"], row["failed"], row["sent"]) == (webhooks.MAX_ATTEMPTS, True, False)
    _make_due(engine)
    assert webhooks.deliver(engine) == (0, 0)  # given up: never posted again
    assert len(receiver.bodies) == webhooks.MAX_ATTEMPTS
    assert [webhooks.retry_in(n) for n in (1, 2, 3, 12)] == [10.0, 20.0, 40.0, 3600.0]

    # the purge keeps a row still waiting, and drops old ones given up or delivered
    other = _report(client, "worker", engine)
    client.post(f"/cases/{other}/escalate", json={"reason": "still waiting"},
                headers=sign_in(client, "h-worker"))  # fmt: skip
    with transaction(engine) as session:
        assert webhooks.purge(session, before=datetime.now(UTC) - timedelta(days=1)) == 0
        # "queued before": a row queued at the very cut-off is kept, a microsecond later not
        queued = session.execute(
            text("SELECT created_at FROM webhook_outbox WHERE case_id = :c"), {"c": cid}
        ).scalar_one()
        assert webhooks.purge(session, before=queued) == 0
    with transaction(engine) as session:
        assert webhooks.purge(session, before=queued + timedelta(microseconds=1)) == 1
    with transaction(engine) as session:  # the row still waiting stays, however old
        assert webhooks.purge(session, before=datetime.now(UTC) + timedelta(seconds=5)) == 0
    assert _outbox(engine, cid) == [] and len(_outbox(engine, other)) == 1


@pytest.mark.parametrize("workers", [1, 2])
def test_a_backlog_is_swept_in_batches_each_case_once(
    client: TestClient, engine: Engine, receiver: Receiver, workers: int
) -> None:
    """Batches of 2 over 7 overdue cases: the first batch, then the rest on ``workers``
    connections at once; each case escalated once, with one history entry and one webhook."""
    cases = [_report(client, "worker", engine) for _ in range(7)]
    later = datetime.now(UTC) + timedelta(hours=25)
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE incident_case SET due_at = :far WHERE NOT (id = ANY(:c)) "
                "AND status IN ('new', 'accepted', 'in_progress')"
            ),
            {"far": later + timedelta(days=365), "c": cases},
        )
    swept = service.sweep(engine, now=later, webhook_url=receiver.url, batch=2, workers=workers)
    assert swept == 7
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT level::text, escalations FROM incident_case WHERE id = ANY(:c)"),
            {"c": cases},
        ).all()
        escalated = conn.execute(
            text(
                "SELECT case_id, count(*) FROM case_event WHERE case_id = ANY(:c) "
                "AND kind = 'escalated' GROUP BY case_id"
            ),
            {"c": cases},
        ).all()
    assert sorted(rows) == [("community", 1)] * 7
    assert sorted(escalated) == [(c, 1) for c in sorted(cases)]
    assert [len(_outbox(engine, c)) for c in cases] == [1] * 7
