"""A day of a buffering client: one report gridwork cannot keep must not silence the watch.

Traccar Client 10 keeps its reports in a queue and sends the oldest until the answer is 2xx
(``TrackerEngine.syncLoop`` in traccar-client-sdk: peek, upload, remove only on success,
back off and retry otherwise); the legacy Android client does the same every 30 s. A 4xx
that a retry cannot cure therefore blocks every later report for good. The simulator below
does what those clients do, without the waiting.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from tests.care import clients
from tests.care.conftest import District, enrol


def _now() -> datetime:
    """The test's own now, not the module's import time: under pytest-xdist a module is
    imported when the run starts and its tests may run many minutes later, when a fix of the
    fast clock, stored at its time of receipt, would no longer be near an imported now."""
    return datetime.now(UTC).replace(microsecond=0)


@dataclass
class BufferingClient:
    """Reports are queued as they are captured; ``flush`` sends the oldest until the queue
    is empty, and a report not answered 2xx stays at the head and is sent again."""

    send: Callable[[dict[str, Any]], Any]
    give_up_after: int = 5  # the real clients never give up; the test has to
    queue: deque[dict[str, Any]] = field(default_factory=deque)
    log: list[tuple[str, int]] = field(default_factory=list)

    def capture(self, report: dict[str, Any]) -> None:
        self.queue.append(report)

    def flush(self) -> bool:
        """True when everything was delivered; False when the head was refused
        ``give_up_after`` times in a row (the watch is silenced)."""
        refused = 0
        while self.queue:
            head = self.queue[0]
            status = self.send(head).status_code
            self.log.append((head["what"], status))
            if 200 <= status < 300:
                self.queue.popleft()
                refused = 0
            else:
                refused += 1
                if refused >= self.give_up_after:
                    return False
        return True


def _traccar10(client: TestClient, key: str, device_id: str) -> Callable[[dict[str, Any]], Any]:
    def send(report: dict[str, Any]) -> Any:
        return clients.traccar10(
            client,
            key,
            device_id,
            report["time"],
            lat=report.get("lat"),
            lon=report.get("lon"),
            battery=report.get("batt", 70),
        )

    return send


def _stored_times(engine: Engine, device_id: str) -> list[datetime]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT p.time FROM position p JOIN device d ON d.id = p.device_id "
                    "WHERE d.device_code = :c ORDER BY p.time"
                ),
                {"c": device_id},
            ).scalars()
        )


def test_a_day_with_a_heartbeat_an_old_fix_and_a_fast_clock_delivers_every_later_fix(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    now = _now()
    elder = enrol(client, staff["care_staff"], "watch-day")
    watch = BufferingClient(_traccar10(client, elder["api_key"], "watch-day"))
    lon, lat = district.home_lon, district.home_lat
    # The phone was off for six weeks: its buffer starts with a fix older than retention.
    watch.capture({"what": "old fix", "time": now - timedelta(days=42), "lat": lat, "lon": lon})
    walk: list[dict[str, Any]] = [
        {
            "what": f"fix {i}",
            "time": now - timedelta(hours=12) + timedelta(minutes=20 * i),
            "lat": lat + i * 2e-5,
            "lon": lon,
        }
        for i in range(36)
    ]
    for i, fix in enumerate(walk):
        watch.capture(fix)
        if i == 6:  # indoors: the heartbeat found no position
            watch.capture({"what": "heartbeat", "time": fix["time"] + timedelta(minutes=5)})
        if i == 18:  # the clock jumped five hours ahead, for one report
            watch.capture(
                {"what": "fast clock", "time": now + timedelta(hours=5), "lat": lat, "lon": lon}
            )
        if i % 6 == 5:  # the network comes and goes: flush every two hours
            assert watch.flush(), watch.log[-5:]
    assert watch.flush(), watch.log[-5:]

    assert not watch.queue
    # Every report was answered 2xx the first time: nothing was ever retried.
    assert len(watch.log) == len(walk) + 3
    assert {status for _, status in watch.log} == {200}
    stored = _stored_times(care, "watch-day")
    assert [f["time"] for f in walk] == [t for t in stored if t <= now]
    [fast] = [t for t in stored if t > now]  # the fast clock's fix, at its time of receipt
    assert fast < now + timedelta(minutes=10)
    reports = client.get(f"/elders/{elder['id']}", headers=staff["care_staff"]).json()["reports"]
    assert reports["not_stored"] == 2  # the old fix and the heartbeat
    assert reports["last_refused"]["reason"].startswith("clock_ahead:")


def test_the_simulator_is_silenced_by_a_report_answered_4xx(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    """What a 4xx does to such a client (here for a report that cannot be read, which is
    still refused): everything behind it waits. This is what the old fix, the heartbeat and
    the fast clock above used to do."""
    now = _now()
    elder = enrol(client, staff["care_staff"], "watch-stuck")
    watch = BufferingClient(_traccar10(client, elder["api_key"], "watch-stuck"))
    lon, lat = district.home_lon, district.home_lat
    watch.capture({"what": "garbled", "time": now - timedelta(hours=1), "lat": 95.0, "lon": lon})
    watch.capture({"what": "fix", "time": now, "lat": lat, "lon": lon})
    assert watch.flush() is False
    assert watch.log == [("garbled", 422)] * watch.give_up_after
    assert _stored_times(care, "watch-stuck") == []
