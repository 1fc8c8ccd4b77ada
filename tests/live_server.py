"""The app for a real HTTP server in a subprocess: ``uvicorn --factory tests.live_server:app``.

A subprocess, not a thread: GDAL's OAPIF reader holds the GIL while it waits for pages, so a
server thread in the test process could never answer it. A test that must move the planners'
clock across a plan's effective date names a file holding an ISO date in
``GRIDWORK_LIVE_CLOCK_FILE``: the server's day is read from it on every look (no file: now).
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from pathlib import Path

from fastapi import FastAPI

from api.app import create_app
from api.state import app_state
from data.settings import Settings


class FileClock:
    """Noon (UTC) of the day written in a file, or now while there is none."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self) -> datetime:
        try:
            day = date.fromisoformat(self.path.read_text().strip())
        except (FileNotFoundError, ValueError):
            return datetime.now(UTC)
        return datetime(day.year, day.month, day.day, 12, 0, tzinfo=UTC)


def app() -> FastAPI:
    application = create_app(
        Settings(
            database_url=os.environ["GRIDWORK_LIVE_DATABASE_URL"],
            secret_key=os.environ["GRIDWORK_LIVE_SECRET"],
            login_per_minute=10_000,
        )
    )
    clock_file = os.environ.get("GRIDWORK_LIVE_CLOCK_FILE")
    if clock_file:
        app_state(application).clock = FileClock(Path(clock_file))
    return application
