"""buildings found by their community

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-08 10:00:00.000000

A community's households are counted through its buildings (``household → building →
community``): the oversize report, the communities layer of every map, the topology checks'
figures and ``ogc.communities`` all run that count once per community. Without an index on
``building.community_id`` each count reads every building, so the cost grows with
communities × buildings: ``bench.megacity`` measured the oversize report 8× and the
district-wide grid page 5× faster with it at a twentieth of the megacity, and estimated hours
for the report without it at full size (docs/scale.md).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0020"
down_revision: str | Sequence[str] | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_building_community_id", "building", ["community_id"])


def downgrade() -> None:
    op.drop_index("ix_building_community_id", table_name="building")
