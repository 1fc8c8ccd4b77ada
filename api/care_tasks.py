"""The server's periodic task: no-fix alerts, position retention, the case deadline sweep and
the delivery of every webhook (alerts and cases, ``data.webhooks``).

Runs in the app's lifespan as one asyncio task; the database work goes to a thread so that
requests keep flowing. With several server processes each runs the task: the row locks
(``SKIP LOCKED``) and the outbox leases keep them from raising or posting anything twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI

from api import plan_clock
from api.state import app_state
from data.care import service as care
from data.crs import metric_epsg
from data.db import transaction
from data.incidents import service as incidents

log = logging.getLogger("gridwork.care")

PURGE_EVERY_S = 3600.0


def run_once(app: FastAPI, *, purge_now: bool) -> dict[str, int]:
    """One tick, synchronously (also what tests call)."""
    state = app_state(app)
    settings, engine = state.settings, state.engine
    epsg = state.care_epsg
    if epsg is None:
        with transaction(engine) as session:
            epsg = state.care_epsg = metric_epsg(session, settings.metric_epsg)
    now = datetime.now(UTC)
    # Deadlines passed (issue 18) first: the webhooks it queues go out in this tick's delivery.
    escalated = incidents.sweep(engine, now=now, webhook_url=settings.case_webhook_url)
    done = care.tick(
        engine,
        now=now,
        epsg=epsg,
        no_fix_minutes=settings.no_fix_minutes,
        retention=timedelta(days=settings.position_retention_days),
        webhook_url=settings.alert_webhook_url,
        purge_now=purge_now,
    )
    done["cases_escalated"] = escalated
    done["plans_switched"] = len(plan_clock.switch_due(app))  # effective dates come (issue 16)
    return done


async def care_loop(app: FastAPI, period_s: float) -> None:
    last_purge = -PURGE_EVERY_S
    while True:
        await asyncio.sleep(period_s)
        purge_now = time.monotonic() - last_purge >= PURGE_EVERY_S
        try:
            done = await asyncio.to_thread(run_once, app, purge_now=purge_now)
        except Exception:  # the task must outlive a database restart
            log.exception("elder-care tick failed; retrying next period")
            continue
        if purge_now:
            last_purge = time.monotonic()
        if any(done.values()):
            log.info("elder-care tick: %s", done)


def start(app: FastAPI) -> asyncio.Task[None] | None:
    """Start the loop unless ``care_tick_seconds`` is 0; the caller stops it on shutdown
    (:func:`api.state.stop_task`)."""
    period = float(app_state(app).settings.care_tick_seconds)
    if period <= 0:
        return None
    return asyncio.get_running_loop().create_task(care_loop(app, period))
