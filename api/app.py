"""The application factory: explicit settings in, a FastAPI app out (tests build their own)."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio.to_thread
from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from sqlalchemy import Engine, text

from api import care_tasks, plan_clock, tile_seeder
from api.errors import add_exception_handlers, refusal
from api.hardening import BodyLimit, CrossSiteGuard, InputGuard, SecurityHeaders
from api.metrics import RequestMetrics
from api.metrics import router as metrics_router
from api.ogc import DistrictWideOnly, create_ogc_app
from api.routers import (
    account_pages,  # my password; accounts and the audit log for administrators
    admin,
    alerts,
    assign,
    auth,
    basemap,
    care_pages,  # the care staff's console (issue 17)
    case_links,
    case_pages,  # incidents as cases (issue 18)
    case_photos,
    cases,
    catalogue_pages,  # incident categories and departments, for administrators
    checks,
    consent_scans,
    elders,
    facility_pages,  # the facility register (coverage's service points)
    grids,
    home,
    household_pages,  # the grid worker's household register
    ingest,
    layers,
    maps,
    open311,  # Open311 GeoReport v2 (issue 18): checks its own keys
    plan_pages,  # the planner's workspace (issue 16)
    plans,
    points,
)
from api.security import (
    authenticated,
    document_security,
    optional_principal,
    preload_device_keys,
)
from api.state import AppState, app_state, stop_task
from data.changes import ChangeFeed
from data.db import (
    app_database_url,
    database_url,
    make_engine,
    migrate,
    serving_role_problem,
)
from data.replica import ReadReplica
from data.settings import Settings

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent.parent / "maps" / "static"


def create_app(settings: Settings | None = None, *, engine: Engine | None = None) -> FastAPI:
    """Build the app; with no engine given, connect (starting the local PostGIS) and migrate."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = app_state(app)
        own = engine is None
        if own:
            migrate(database_url(settings))  # as the owner of the tables
            # ... and serve as the app's own role: no owner, no superuser (least privilege).
            state.database = make_engine(app_database_url(settings, start=False))
            problem = await anyio.to_thread.run_sync(serving_role_problem, state.database)
            if problem:  # DATABASE_URL without GRIDWORK_APP_DATABASE_URL (README)
                log.warning(
                    "%s: it could erase the audit log; set GRIDWORK_APP_DATABASE_URL to the "
                    "app's own role (README, 'least privilege')",
                    problem,
                )
        if settings.read_database_url:  # non-personal reads on a hot standby (data.replica)
            state.reads = ReadReplica.for_url(
                state.engine, settings.read_database_url, max_lag_s=settings.read_max_lag_s
            )
            await anyio.to_thread.run_sync(state.reads.start)
        # Caches of credentials and of the grid index are on only while this feed listens.
        changes = ChangeFeed.for_engine(state.engine)
        state.changes = state.principals.feed = changes
        # Device keys are remembered again whenever the feed (re)connects: after a restart
        # of the API or of PostGIS, a thousand wearables report at once.
        changes.on_live = lambda: preload_device_keys(app)
        await anyio.to_thread.run_sync(changes.start)
        await anyio.to_thread.run_sync(ingest.warm_up, app)
        await anyio.to_thread.run_sync(plan_clock.switch_at_start, app)  # dates passed (16)
        task = care_tasks.start(app)  # no-fix alerts, retention, webhooks
        seeding = tile_seeder.start(ogc_gate, state)  # the low-zoom grid tiles, kept drawn
        if own:  # the walking graph, so the first coverage page does not wait (an app
            # handed an engine, as in tests, builds it on first use)
            state.road_warmup.start(state.engine, state.network_cache)
        # What start-up allocated (libraries, the migrations' modules) lives as long as the
        # process: keep it out of the collector's full passes, which otherwise show up as
        # millisecond stalls in the tail latency of every route.
        gc.freeze()
        try:
            yield
        finally:
            state.changes = state.principals.feed = None
            await anyio.to_thread.run_sync(changes.stop)
            if state.reads is not None:
                await anyio.to_thread.run_sync(state.reads.stop)
                state.reads = None
            await stop_task(task)
            await stop_task(seeding)
            await state.ogc.state.pool.close()  # this loop's asyncpg pool, if any
            if own:
                state.engine.dispose()

    # FastAPIOffline serves Swagger UI and ReDoc from the package, never from a CDN.
    app = FastAPIOffline(
        title="gridwork",
        version="0.1.0",
        description="Grid management for community services: district → street (街道) → "
        "community (社区) → grid (网格), roads, households, facilities and incidents.",
        lifespan=lifespan,
        static_url="/static/docs",
        # FastAPI looks for a global OpenTelemetry provider on every request (environment
        # reads included): a few per cent of the ingest route's CPU when nobody traces.
        telemetry={
            "tracing": settings.opentelemetry,
            "metrics": settings.opentelemetry,
            "logs": settings.opentelemetry,
        },
    )
    state = app.state.gridwork = AppState(settings=settings, ogc=create_ogc_app(), database=engine)
    ogc_gate = DistrictWideOnly(state.ogc)
    add_exception_handlers(app, identify=optional_principal)
    document_security(app)

    @app.get("/health", tags=["meta"])
    def health() -> dict[str, str]:
        """Liveness and database reachability, for load balancers and the demo script."""
        with state.engine.connect() as conn:
            postgis = conn.execute(text("SELECT postgis_lib_version()")).scalar_one()
        return {"status": "ok", "postgis": str(postgis)}

    # Deny by default: every router below answers only to an authenticated caller.
    private = [Depends(authenticated)]
    # Routes are matched in order: the hot, unambiguous paths (/locate, /assign, device
    # ingest) go first, so they do not pay for matching every other route on each call.
    app.include_router(assign.router, dependencies=private)
    # Devices authenticate with their own API key (also as ?key=, see api.security).
    app.include_router(ingest.router, dependencies=private)
    app.include_router(auth.public)
    app.include_router(home.public)
    app.include_router(auth.private, dependencies=private)
    app.include_router(plans.router, dependencies=private)  # before /grids/{code}
    app.include_router(layers.router, dependencies=private)
    app.include_router(checks.router, dependencies=private)
    app.include_router(home.private, dependencies=private)
    app.include_router(consent_scans.router, dependencies=private)
    app.include_router(elders.router, dependencies=private)
    app.include_router(alerts.router, dependencies=private)
    app.include_router(maps.router, dependencies=private)
    app.include_router(basemap.router, dependencies=private)
    app.include_router(grids.router, dependencies=private)
    app.include_router(points.router, dependencies=private)
    app.include_router(admin.router, dependencies=private)
    app.include_router(case_photos.router, dependencies=private)  # before /cases/{id}/{action}
    app.include_router(case_links.router, dependencies=private)  # before /cases/{case_id}
    app.include_router(cases.router, dependencies=private)
    app.include_router(plan_pages.router, dependencies=private)  # issue 16
    app.include_router(care_pages.router, dependencies=private)
    app.include_router(account_pages.router, dependencies=private)
    app.include_router(household_pages.router, dependencies=private)
    app.include_router(facility_pages.router, dependencies=private)
    app.include_router(catalogue_pages.router, dependencies=private)
    app.include_router(case_pages.router, dependencies=private)
    app.include_router(open311.router)  # the standard's own keys (api.security)
    if settings.metrics:  # admins, or a scraper's GRIDWORK_METRICS_KEY (api.metrics)
        app.include_router(metrics_router)
    # OGC API Features + Tiles (tipg): its own deny-by-default wrapper, district-wide only.
    app.mount("/ogc", ogc_gate)
    app.mount("/static", StaticFiles(directory=STATIC, check_dir=False), name="static")

    # Outermost last: the body limit sees the request first, headers go on every answer.
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-API-Key"],
        )
    # A cookie-signed-in POST/PUT/PATCH/DELETE from another site: 403 (CSRF).
    app.add_middleware(CrossSiteGuard, allowed_origins=settings.cors_origins)
    # Their refusals are pages for a browser, in the signed-in caller's frame.
    refuse = refusal(identify=optional_principal)
    # Too-deep JSON and NUL characters, before any parsing.
    app.add_middleware(InputGuard, refuse=refuse)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, refuse=refuse)
    if settings.metrics:  # outermost: times every answer, refusals of the others included
        app.add_middleware(RequestMetrics)
    return app
