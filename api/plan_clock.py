"""The planners' clock: which day it is where the deployment is, and the scheduled switch.

Tests set ``app_state(app).clock`` (a callable returning an aware ``datetime``) to move time; a
plan published with a future effective date switches on the first tick of the periodic task
on or after that day, and at start-up (a server down across the date switches when it is
back).
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from typing import Any

from fastapi import FastAPI

from api.state import app_state
from data.db import transaction
from data.planning import service as planning

log = logging.getLogger("gridwork.planning")


def now(app: FastAPI) -> datetime:
    clock = app_state(app).clock
    return clock() if clock is not None else datetime.now(UTC)


def today(app: FastAPI) -> date:
    """Today in the deployment's zone: an effective date starts at local midnight."""
    return app_state(app).settings.today(now(app))


def switch_due(app: FastAPI) -> list[dict[str, Any]]:
    """Switch the plans whose effective date has come (each in its own transaction)."""
    state = app_state(app)
    with transaction(state.engine) as session:
        done = planning.switch_due(session, today=today(app), settings=state.settings)
    for d in done:
        log.info("plan %s switched: %s", d["plan"], d)
    return done


def switch_at_start(app: FastAPI) -> None:
    """The start-up catch-up; never keeps the server from starting."""
    try:
        switch_due(app)
    except Exception:
        log.exception("scheduled plan switch at start-up failed; the periodic task retries")
