"""Deployment settings, read once from the environment (prefix ``GRIDWORK_``).

Settings are an explicit object handed to the app factory and the command line, so tests
build apps from settings they choose instead of patching globals.
"""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_PLACEHOLDERS = ("changeme", "change-me", "secret", "placeholder", "example", "xxxx", "default")


class Settings(BaseSettings):
    """Everything a deployment may change; defaults suit a laptop demo."""

    model_config = SettingsConfigDict(env_prefix="GRIDWORK_", extra="ignore")

    database_url: str | None = Field(
        default=None,
        validation_alias="DATABASE_URL",
        description="An external PostgreSQL+PostGIS; when unset gridwork runs its own cluster.",
    )
    app_database_url: str | None = Field(
        default=None,
        description="What the API server connects as (the app's own role, least privilege: "
        "no owner, no superuser; see the README). Migrations and the command line use "
        "DATABASE_URL. Unset: the private cluster's gridwork_app role, or DATABASE_URL.",
    )
    read_database_url: str | None = Field(
        default=None,
        description="A hot standby of the database (PostgreSQL streaming replication) for "
        "the reads that are not personal: the grid index behind /locate, vector tiles, maps, "
        "layers, coverage (docs/scale.md). Writes and audited reads of personal data stay on "
        "the primary. Unset: every read on the primary.",
    )
    read_max_lag_s: float = Field(
        default=30.0,
        gt=0,
        description="a standby further behind the primary than this is not read: reads go "
        "to the primary until it catches up",
    )
    state_dir: Path = Field(
        default=Path(".gridwork"),
        description="Where the private PostGIS cluster, logs and exports live.",
    )
    database_name: str = "gridwork"
    metric_epsg: int | None = Field(
        default=None,
        description="Projected CRS for every length, area and distance; "
        "when unset, the UTM zone of the stored data is used.",
    )
    snap_tolerance_m: float = 20.0
    locale: Literal["zh_CN", "en"] = Field(
        default="zh_CN",
        description="the pages' language when neither the user's choice nor the browser's "
        "Accept-Language names one we have",
    )
    timezone: str = Field(
        default="Asia/Shanghai",
        description="the zone times are shown in on pages (an IANA name, e.g. Asia/Urumqi)",
    )
    household_min: int = 150
    household_max: int = 180
    grid_page_max_grids: int = Field(
        default=20_000,
        gt=0,
        description="The most grids the grid and workload pages draw (Leaflet, every grid in "
        "the page): a district of 5,814 grids takes 0.4 s on the server (bench.megacity "
        "grid-page), a whole city of 60,000 would be ten times the page and stall the "
        "browser. Over it the page points to the vector-tile viewer.",
    )

    environment: Literal["development", "production"] = "development"
    secret_key: str | None = Field(
        default=None,
        description="Signs access tokens. Required in production; in development a random key "
        "is generated once and kept in the state folder.",
    )
    token_minutes: int = Field(default=15, ge=1, le=24 * 60)
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    photo_max_bytes: int = Field(
        default=8 * 1024 * 1024, ge=1024, description="largest case photo accepted, as uploaded"
    )
    cors_origins: list[str] = Field(default_factory=list, description="none: CORS closed")
    login_per_minute: int = Field(
        default=10, description="sign-ins per minute per address, and failures per account"
    )
    trusted_proxies: str = Field(
        default="",
        description="comma-separated addresses or networks (CIDR) of reverse proxies whose "
        "X-Forwarded-For is believed; none by default (the TCP peer is the client)",
    )
    ingest_per_minute: int = 600
    opentelemetry: bool = Field(
        default=False,
        description="FastAPI's OpenTelemetry spans, metrics and logs, for a deployment that "
        "configures a provider; off, no request pays for looking one up",
    )
    ingest_batch_max: int = Field(
        default=500, ge=1, le=5000, description="device requests per group commit; 1: none"
    )
    ingest_pending_max: int = Field(
        default=5000,
        ge=1,
        description="device requests waiting for their group commit, per API process; more "
        "are answered 503 at once (devices send again)",
    )
    position_retention_days: int = Field(
        default=30, ge=1, le=3650, description="elders' positions older than this are purged"
    )
    no_fix_minutes: float = Field(default=30.0, gt=0, description="silence that raises no_fix")
    tile_seed_zoom: int = Field(
        default=11,
        ge=-1,
        le=16,
        description="Grid vector tiles up to this zoom, from the zoom the viewer starts "
        "drawing grids at, are drawn in the background at start and again after an edit "
        "under them (api.tile_seeder): a z10 tile of a city of 60,000 grids takes PostgreSQL "
        "~100 ms to draw (bench.megacity tiles); -1: off",
    )
    tile_seed_seconds: float = Field(
        default=2.0, gt=0, description="how often the tile seeder looks for edits"
    )
    care_tick_seconds: float = Field(
        default=60.0, ge=0, description="period of the no-fix/retention/webhook task; 0: off"
    )
    alert_webhook_url: str | None = Field(
        default=None, description="alerts are also POSTed here (JSON), with retries"
    )
    open311_public_listing: bool = Field(
        default=False,
        description="Open311 GET requests answer without an API key (a deployment's choice; "
        "never with a reporter's contact); off: only a key scoped to the area reads them",
    )
    case_webhook_url: str | None = Field(
        default=None,
        description="cases escalated or handed to a department are also POSTed here (JSON, "
        "no personal data), with retries",
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="gridwork serve's logs (the app's, uvicorn's, one access line per request "
        "with its route template, never its query string): text for a terminal, json for a "
        "collector (one object per line)",
    )
    metrics: bool = Field(
        default=True,
        description="Prometheus metrics at /metrics (request latency by route, ingest, "
        "change feed, alert backlog); off: no timing middleware, no route",
    )
    metrics_key: str | None = Field(
        default=None,
        description="a secret (at least 32 characters) a Prometheus scraper sends as "
        "'Authorization: Bearer …' to read /metrics and nothing else; admins read it too",
    )
    alert_stream_wake: Literal["notify", "poll"] = Field(
        default="notify",
        description="how an open alerts inbox learns of a new alert: notify (LISTEN/NOTIFY, "
        "at once) or poll (the alert table every 0.5 s; kept to compare, bench/inbox.py)",
    )

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        """Outside development a missing, short or placeholder secret stops the start-up."""
        if self.environment == "production":
            key = self.secret_key or ""
            lowered = key.lower()
            if len(key) < 32 or any(p in lowered for p in _PLACEHOLDERS):
                raise ValueError(
                    "GRIDWORK_SECRET_KEY must be set to a random value of at least 32 characters "
                    "in production (for example: python -c 'import secrets; "
                    "print(secrets.token_urlsafe(48))')"
                )
        return self

    def signing_key(self) -> str:
        """The token-signing secret; in development, one random key kept in the state folder."""
        if self.secret_key:
            return self.secret_key
        path = self.state_path / "secret_key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(48))
        return path.read_text().strip()

    @field_validator("metrics_key")
    @classmethod
    def _long_metrics_key(cls, value: str | None) -> str | None:
        """A scrape key short enough to guess would open /metrics to anyone who tries."""
        if not value:
            return None
        if len(value) < 32:
            raise ValueError("GRIDWORK_METRICS_KEY must be at least 32 characters")
        return value

    def today(self, now: datetime | None = None) -> date:
        """The district's date now (or at ``now``): :func:`date_in` its zone."""
        return date_in(self.timezone, now)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown time zone {value!r} (an IANA name, e.g. Asia/Urumqi)"
            ) from exc
        return value

    @field_validator("database_url", "app_database_url", "read_database_url")
    @classmethod
    def _normalise_url(cls, value: str | None) -> str | None:
        """Accept the ``postgres://`` and ``postgresql://`` spellings that other tools print."""
        if not value:
            return None
        for prefix in ("postgres://", "postgresql://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_proxies(cls, value: str) -> str:
        """Refuse a typo at start-up rather than trusting nobody (or everybody) silently."""
        import ipaddress

        for part in value.split(","):
            if part.strip():
                try:
                    ipaddress.ip_network(part.strip(), strict=False)
                except ValueError as exc:
                    raise ValueError(
                        f"GRIDWORK_TRUSTED_PROXIES: '{part.strip()}' is not an address or "
                        "a network such as 10.0.0.0/8"
                    ) from exc
        return value

    @property
    def state_path(self) -> Path:
        return self.state_dir.expanduser().resolve()


def date_in(zone: str, now: datetime | None = None) -> date:
    """The date in ``zone`` now (or at ``now``), not the machine's: a server kept in UTC is
    still on yesterday until 08:00 in Shanghai, so a plan published "today" at 02:00 there
    took effect on a date before it was drawn, and a consent given that morning could not be
    dated (the form's latest day was yesterday)."""
    return (now or datetime.now(UTC)).astimezone(ZoneInfo(zone)).date()
