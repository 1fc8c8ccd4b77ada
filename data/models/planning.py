"""The stored shape of planning: plans, their grids, and the units and graph they were cut from.

A plan keeps its units and their adjacency graph, so a planner can move a unit or lock a grid
days later without the split being recomputed, and so a published plan can always be
explained. ``community_version`` fingerprints what the plan was drafted on; publishing is
refused when the community has changed since.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Integer,
    SmallInteger,
    String,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from data.models.base import SRID, Base


class PlanStatus(enum.StrEnum):
    draft = "draft"
    published = "published"
    superseded = "superseded"


class Plan(Base):
    __tablename__ = "plan"
    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(
        ForeignKey("community.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[PlanStatus] = mapped_column(
        Enum(PlanStatus, name="plan_status"), default=PlanStatus.draft
    )
    min_households: Mapped[int] = mapped_column(Integer)
    max_households: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(Integer)
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    author: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    community_version: Mapped[str] = mapped_column(String(64))
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    issues: Mapped[list[Any]] = mapped_column(JSONB, default=list)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    effective: Mapped[date | None] = mapped_column(
        Date, comment="the day the plan's grids become current (published plans)"
    )
    switched_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), comment="when the switch to the plan's grids ran; NULL: not yet"
    )
    published_by: Mapped[str | None] = mapped_column(String(128))


class _OfPlan:
    """A part of a plan (a grid, a unit, an edge, an edit step): keyed by the plan first, and
    gone with it."""

    plan_id: Mapped[int] = mapped_column(
        ForeignKey("plan.id", ondelete="CASCADE"), primary_key=True, sort_order=-1
    )


class PlanGrid(_OfPlan, Base):
    __tablename__ = "plan_grid"
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    households: Mapped[int] = mapped_column(Integer)
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    published_code: Mapped[str | None] = mapped_column(
        String(64), comment="the grid code given at the switch (never an old shape's code)"
    )
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    geom: Mapped[object] = mapped_column(
        Geometry("MULTIPOLYGON", srid=SRID, spatial_index=True), nullable=False
    )


class PlanUnit(_OfPlan, Base):
    """An atomic unit (block, lot or entrance) and the grid it is in under this plan."""

    __tablename__ = "plan_unit"
    unit: Mapped[int] = mapped_column(Integer, primary_key=True)
    grid_code: Mapped[str] = mapped_column(String(64))
    households: Mapped[int] = mapped_column(Integer)
    block: Mapped[int] = mapped_column(Integer)
    building_id: Mapped[str | None] = mapped_column(String(128))
    entrance: Mapped[int] = mapped_column(Integer, default=-1)
    level: Mapped[str] = mapped_column(String(16))
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    geom: Mapped[object] = mapped_column(
        Geometry("GEOMETRY", srid=SRID, spatial_index=False), nullable=False
    )


class PlanUnitEdge(_OfPlan, Base):
    """One adjacency between two units, with its shared length and the part along a road."""

    __tablename__ = "plan_unit_edge"
    edge: Mapped[int] = mapped_column(Integer, primary_key=True)
    u: Mapped[int] = mapped_column(Integer)
    v: Mapped[int] = mapped_column(Integer)
    length_m: Mapped[float] = mapped_column(Float)
    road_m: Mapped[float] = mapped_column(Float)
    kind: Mapped[int] = mapped_column(SmallInteger)


class PlanStep(_OfPlan, Base):
    """One edit of a draft (moves, locks, a re-split): what changed, by whom, and whether it is
    in force (``done``), taken back (``undone``, may be redone) or dropped by a later edit."""

    __tablename__ = "plan_step"
    __table_args__ = (
        CheckConstraint("state IN ('done', 'undone', 'dropped')", name="plan_step_state"),
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    summary: Mapped[str] = mapped_column(String(200), server_default="")
    changes: Mapped[list[Any]] = mapped_column(JSONB, server_default="[]")
    locks: Mapped[list[Any]] = mapped_column(JSONB, server_default="[]")
    author: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    state: Mapped[str] = mapped_column(String(8), server_default="done")
    state_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    state_by: Mapped[str | None] = mapped_column(String(128))
    #: A move made despite the band and contiguity checks (migration 0032).
    forced: Mapped[bool] = mapped_column(
        Boolean,
        server_default=text("false"),
        comment="a move made despite the band and contiguity checks",
    )


class GridLineage(Base):
    """An old grid a plan closed and a new grid it opened, with the area they share."""

    __tablename__ = "grid_lineage"
    plan_id: Mapped[int] = mapped_column(ForeignKey("plan.id", ondelete="CASCADE"))
    old_grid_id: Mapped[int] = mapped_column(
        ForeignKey("grid.id", ondelete="CASCADE"), primary_key=True
    )
    new_grid_id: Mapped[int] = mapped_column(
        ForeignKey("grid.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    shared_m2: Mapped[float] = mapped_column(Float)
