"""plans, their grids, units and unit graph; grid versions may close on the day they open

Revision ID: 0006
Revises: 0002
Create Date: 2026-11-26 13:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "plan",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("draft", "published", "superseded", name="plan_status"),
            nullable=False,
        ),
        sa.Column("min_households", sa.Integer(), nullable=False),
        sa.Column("max_households", sa.Integer(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("params", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("author", sa.String(length=128), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("community_version", sa.String(length=64), nullable=False),
        sa.Column("metrics", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("issues", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["community.id"],
            name=op.f("fk_plan_community_id_community"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan")),
    )
    op.create_index(op.f("ix_plan_community_id"), "plan", ["community_id"], unique=False)
    op.create_table(
        "plan_grid",
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("households", sa.Integer(), nullable=False),
        sa.Column("locked", sa.Boolean(), nullable=False),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.Column("metrics", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "geom",
            Geometry(geometry_type="MULTIPOLYGON", srid=4326, spatial_index=False),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plan.id"], name=op.f("fk_plan_grid_plan_id_plan"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("plan_id", "code", name=op.f("pk_plan_grid")),
    )
    op.create_index("idx_plan_grid_geom", "plan_grid", ["geom"], postgresql_using="gist")
    op.create_table(
        "plan_unit",
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("unit", sa.Integer(), nullable=False),
        sa.Column("grid_code", sa.String(length=64), nullable=False),
        sa.Column("households", sa.Integer(), nullable=False),
        sa.Column("block", sa.Integer(), nullable=False),
        sa.Column("building_id", sa.String(length=128), nullable=True),
        sa.Column("entrance", sa.Integer(), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("locked", sa.Boolean(), nullable=False),
        sa.Column(
            "geom",
            Geometry(geometry_type="GEOMETRY", srid=4326, spatial_index=False),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plan.id"], name=op.f("fk_plan_unit_plan_id_plan"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("plan_id", "unit", name=op.f("pk_plan_unit")),
    )
    op.create_table(
        "plan_unit_edge",
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("edge", sa.Integer(), nullable=False),
        sa.Column("u", sa.Integer(), nullable=False),
        sa.Column("v", sa.Integer(), nullable=False),
        sa.Column("length_m", sa.Float(), nullable=False),
        sa.Column("road_m", sa.Float(), nullable=False),
        sa.Column("kind", sa.SmallInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["plan.id"],
            name=op.f("fk_plan_unit_edge_plan_id_plan"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("plan_id", "edge", name=op.f("pk_plan_unit_edge")),
    )
    # Publishing closes the old grid versions on the day the new ones open; a version created
    # and replaced on the same day is history of zero length, which "valid on day D" never hits.
    op.drop_constraint(op.f("ck_grid_valid_period"), "grid", type_="check")
    op.create_check_constraint("valid_period", "grid", "valid_to IS NULL OR valid_to >= valid_from")
    op.add_column("grid", sa.Column("plan_id", sa.Integer(), nullable=True))
    op.create_foreign_key(
        op.f("fk_grid_plan_id_plan"), "grid", "plan", ["plan_id"], ["id"], ondelete="SET NULL"
    )


def downgrade() -> None:
    op.drop_constraint(op.f("fk_grid_plan_id_plan"), "grid", type_="foreignkey")
    op.drop_column("grid", "plan_id")
    op.drop_constraint(op.f("ck_grid_valid_period"), "grid", type_="check")
    op.create_check_constraint("valid_period", "grid", "valid_to IS NULL OR valid_to > valid_from")
    op.drop_table("plan_unit_edge")
    op.drop_table("plan_unit")
    op.drop_index("idx_plan_grid_geom", table_name="plan_grid")
    op.drop_table("plan_grid")
    op.drop_index(op.f("ix_plan_community_id"), table_name="plan")
    op.drop_table("plan")
    op.execute("DROP TYPE IF EXISTS plan_status")
