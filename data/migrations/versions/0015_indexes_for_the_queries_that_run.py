"""indexes for the queries that run at city size: a purge's alert lookups, a community's grids

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 15:00:00.000000

Found by listing every foreign key that leads no index and every geometry column without a
GiST index, then reading the statements that touch them (``EXPLAIN``, tests/data/test_indexes.py):

- ``alert.position_id`` (``ON DELETE SET NULL``): the retention purge deletes a day of fixes
  (28.8 M at 20,000 devices reporting every minute) and PostgreSQL looks each deleted fix up
  in ``alert`` to clear the reference. Without an index every one of those look-ups is a
  sequential scan of ``alert``: the purge grows with fixes × alerts.
- ``grid.community_id``: a community's current grids (planning, a plan's units and their
  grid today, the switch to a published plan, a community's grid list) were read by scanning
  all 60,000 grids and their history.

Not indexed, on purpose: ``position.geom``, ``safe_zone.geom`` / ``centre`` and
``plan_unit.geom``. No statement selects those rows by place (fixes are read by elder and
time, zones by elder, units by plan, all through existing b-tree keys), and a GiST index on
``position.geom`` would be written on every fix of the ingest's hottest path for no reader.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_alert_position_id", "alert", ["position_id"])
    op.create_index("ix_grid_community_id", "grid", ["community_id"])


def downgrade() -> None:
    op.drop_index("ix_grid_community_id", table_name="grid")
    op.drop_index("ix_alert_position_id", table_name="alert")
