"""The stored shape of a district: hierarchy, roads, buildings, households, facilities, incidents.

Geometry is stored in WGS-84 (SRID 4326) with GiST indexes, because that is what files,
APIs and maps exchange; every length, area and distance is computed after ``ST_Transform``
to the deployment's metric CRS (see ``data.crs``).

Households carry only what a service needs (size, living alone, age band of the oldest
member). There are no columns for names, ethnicity, religion, political status or identity
numbers, and none may be added: a test reads this metadata and fails if one appears.
"""

from __future__ import annotations

import enum
from datetime import date, datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from data.models.base import SRID, Base, Coded, _geom


class CommunityKind(enum.StrEnum):
    community = "community"
    extended = "extended"


class AgeBand(enum.StrEnum):
    """Age band of a household's oldest member: enough to find elders, nothing finer."""

    minor = "0-17"
    adult = "18-59"
    senior = "60-79"
    elder = "80+"


class IncidentStatus(enum.StrEnum):
    open = "open"
    in_progress = "in_progress"
    closed = "closed"


class District(Coded, Base):
    __tablename__ = "district"
    geom: Mapped[object] = mapped_column(
        Geometry("MULTIPOLYGON", srid=SRID, spatial_index=True), nullable=True
    )


class Street(Coded, Base):
    """A 街道 (sub-district): the level above communities. Never a road."""

    __tablename__ = "street"
    name_local: Mapped[str | None] = mapped_column(String(200))
    district_id: Mapped[int | None] = mapped_column(ForeignKey("district.id", ondelete="SET NULL"))
    source_id: Mapped[str | None] = mapped_column(String(128))
    geom: Mapped[object] = _geom("POLYGON")
    communities: Mapped[list[Community]] = relationship(back_populates="street")


class Community(Coded, Base):
    """A 社区, or an ``extended`` area (industrial zone, campus) managed like one."""

    __tablename__ = "community"
    name_local: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[CommunityKind] = mapped_column(
        Enum(CommunityKind, name="community_kind"), default=CommunityKind.community
    )
    street_id: Mapped[int | None] = mapped_column(ForeignKey("street.id", ondelete="SET NULL"))
    population: Mapped[int | None] = mapped_column(Integer, comment="census population, if known")
    source_id: Mapped[str | None] = mapped_column(String(128))
    service_centre: Mapped[object | None] = mapped_column(
        Geometry("POINT", srid=SRID, spatial_index=False), nullable=True
    )
    geom: Mapped[object] = _geom("POLYGON")
    street: Mapped[Street | None] = relationship(back_populates="communities")


class Worker(Base):
    """The grid worker (网格员) responsible for one or more grids."""

    __tablename__ = "worker"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(64))
    community_id: Mapped[int | None] = mapped_column(
        ForeignKey("community.id", ondelete="SET NULL"), comment="the worker's area"
    )
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL"),
        unique=True,
        comment="the account this worker signs in with (migration 0010)",
    )


class Grid(Base):
    """A 网格: about 150-180 households under one worker. Old versions stay as history."""

    __tablename__ = "grid"
    __table_args__ = (
        Index(
            "uq_grid_code_current", "code", unique=True, postgresql_where=text("valid_to IS NULL")
        ),
        CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name="valid_period"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64))
    community_id: Mapped[int] = mapped_column(
        ForeignKey("community.id", ondelete="CASCADE"),
        index=True,  # migration 0015
    )
    worker_id: Mapped[int | None] = mapped_column(ForeignKey("worker.id", ondelete="SET NULL"))
    source_id: Mapped[str | None] = mapped_column(String(128))
    valid_from: Mapped[date] = mapped_column(Date, server_default=func.current_date())
    valid_to: Mapped[date | None] = mapped_column(Date)
    plan_id: Mapped[int | None] = mapped_column(
        ForeignKey("plan.id", ondelete="SET NULL", use_alter=True),
        comment="the published plan that made this grid version",
    )
    geom: Mapped[object] = _geom("POLYGON")
    community: Mapped[Community] = relationship()
    worker: Mapped[Worker | None] = relationship()


class RoadSegment(Base):
    """One piece of the road network between two junctions (as imported)."""

    __tablename__ = "road_segment"
    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[str] = mapped_column(String(128), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    road_class: Mapped[str | None] = mapped_column(String(64))
    oneway: Mapped[bool | None] = mapped_column(Boolean)
    geom: Mapped[object] = _geom("LINESTRING")


class Building(Base):
    __tablename__ = "building"
    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[str] = mapped_column(String(128), unique=True)
    building_type: Mapped[str | None] = mapped_column(String(64))
    levels: Mapped[float | None] = mapped_column(Float)
    households: Mapped[int | None] = mapped_column(Integer)
    households_estimated: Mapped[bool] = mapped_column(Boolean, default=False)
    community_id: Mapped[int | None] = mapped_column(
        ForeignKey("community.id", ondelete="SET NULL"),
        index=True,  # migration 0020
    )
    geom: Mapped[object] = _geom("POLYGON")


class _Assigned:
    """Columns every point that belongs to a grid carries (set by assignment, never by hand)."""

    grid_id: Mapped[int | None] = mapped_column(
        ForeignKey("grid.id", ondelete="SET NULL"), index=True
    )
    snapped: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    assign_distance_m: Mapped[float | None] = mapped_column(
        Float, comment="metres to the assigned grid (0 inside), or to the nearest when none"
    )


class Household(_Assigned, Base):
    __tablename__ = "household"
    __table_args__ = (CheckConstraint("size BETWEEN 1 AND 30", name="size_range"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    size: Mapped[int] = mapped_column(Integer, default=1)
    lives_alone: Mapped[bool] = mapped_column(Boolean, default=False)
    age_band: Mapped[AgeBand | None] = mapped_column(
        Enum(AgeBand, name="age_band", values_callable=lambda e: [m.value for m in e])
    )
    building_id: Mapped[int | None] = mapped_column(
        ForeignKey("building.id", ondelete="SET NULL"), index=True
    )
    estimated: Mapped[bool] = mapped_column(Boolean, default=False)
    geom: Mapped[object] = _geom("POINT")


class Facility(_Assigned, Base):
    __tablename__ = "facility"
    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    name_local: Mapped[str | None] = mapped_column(String(200))  # OSM name:zh
    capacity: Mapped[int | None] = mapped_column(Integer)
    geom: Mapped[object] = _geom("POINT")


class Incident(_Assigned, Base):
    __tablename__ = "incident"
    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    category: Mapped[str] = mapped_column(String(64))
    status: Mapped[IncidentStatus] = mapped_column(
        Enum(IncidentStatus, name="incident_status"), default=IncidentStatus.open
    )
    summary: Mapped[str | None] = mapped_column(Text)
    reported_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    geom: Mapped[object] = _geom("POINT")
