"""Deployment settings, read once from the environment (prefix ``GRIDWORK_``).

Settings are an explicit object handed to the app factory and the command line, so tests
build apps from settings they choose instead of patching globals.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything a deployment may change; defaults suit a laptop demo."""

    model_config = SettingsConfigDict(env_prefix="GRIDWORK_", extra="ignore")

    database_url: str | None = Field(
        default=None,
        validation_alias="DATABASE_URL",
        description="An external PostgreSQL+PostGIS; when unset gridwork runs its own cluster.",
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
    household_min: int = 150
    household_max: int = 180

    @field_validator("database_url")
    @classmethod
    def _normalise_url(cls, value: str | None) -> str | None:
        """Accept the ``postgres://`` and ``postgresql://`` spellings that other tools print."""
        if not value:
            return None
        for prefix in ("postgres://", "postgresql://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        return value

    @property
    def state_path(self) -> Path:
        return self.state_dir.expanduser().resolve()
