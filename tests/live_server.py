"""The app for a real HTTP server in a subprocess: ``uvicorn --factory tests.live_server:app``.

A subprocess, not a thread: GDAL's OAPIF reader holds the GIL while it waits for pages, so a
server thread in the test process could never answer it.
"""

from __future__ import annotations

import os

from fastapi import FastAPI

from api.app import create_app
from data.settings import Settings


def app() -> FastAPI:
    return create_app(
        Settings(
            database_url=os.environ["GRIDWORK_LIVE_DATABASE_URL"],
            secret_key=os.environ["GRIDWORK_LIVE_SECRET"],
            login_per_minute=10_000,
        )
    )
