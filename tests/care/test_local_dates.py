"""A date on a care page is the district's, not the server's.

The server keeps UTC; Shanghai is eight hours ahead. Until 08:00 there, the consent forms'
latest day (``max``) and default was yesterday, so a consent given that morning could not
be dated as given. Tried in a zone fourteen hours ahead and one twelve behind: at any hour
one of them is on another date than UTC, so the old pages fail here whenever it runs.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from data.settings import date_in
from tests.care.conftest import STAFF, care_settings, enrol
from tests.factory import sign_in

HTML = {"Accept": "text/html"}


def test_the_date_in_a_zone_is_its_own() -> None:
    evening_utc = datetime(2026, 12, 7, 18, 30, tzinfo=UTC)
    assert date_in("Asia/Shanghai", evening_utc) == date(2026, 12, 8)
    assert date_in("Europe/Lisbon", evening_utc) == date(2026, 12, 7)
    assert date_in("Etc/GMT+12", datetime(2026, 12, 7, 6, 0, tzinfo=UTC)) == date(2026, 12, 6)


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Etc/GMT+12"])
def test_the_consent_forms_latest_day_is_the_districts_today(
    care_engine: Engine, care_url: str, zone: str
) -> None:
    app = create_app(care_settings(care_url, timezone=zone), engine=care_engine)
    with TestClient(app) as client:
        headers = sign_in(client, STAFF["care_staff"].username) | HTML
        page = client.get("/app/elders/new", headers=headers)
        assert page.status_code == 200, page.text[:500]
        latest = re.search(r'id="consent_given_on"[^>]* max="([0-9-]+)"', page.text)
        assert latest, page.text[-3000:]
        assert latest.group(1) == datetime.now(ZoneInfo(zone)).date().isoformat()


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Etc/GMT+12"])
def test_a_consent_is_refused_from_the_districts_tomorrow_on(
    care_engine: Engine, care_url: str, zone: str
) -> None:
    """A consent dated the district's today is taken, one dated its tomorrow refused. The
    service allowed the server's date plus a day: twelve hours behind UTC, the district's
    tomorrow passed as given."""
    today = datetime.now(ZoneInfo(zone)).date()
    app = create_app(care_settings(care_url, timezone=zone), engine=care_engine)
    with TestClient(app) as client:
        headers = sign_in(client, STAFF["care_staff"].username)
        elder = enrol(client, headers, f"watch-day-{zone[-2:]}", consent=False)
        add = f"/elders/{elder['id']}/consent"
        consent = {"given_by": "本人", "scope": "走失时定位"}
        tomorrow = client.post(
            add,
            json=consent | {"given_on": (today + timedelta(days=1)).isoformat()},
            headers=headers,
        )
        assert tomorrow.status_code == 422, tomorrow.text
        assert "future" in tomorrow.text
        taken = client.post(add, json=consent | {"given_on": today.isoformat()}, headers=headers)
        assert taken.status_code == 201, taken.text
