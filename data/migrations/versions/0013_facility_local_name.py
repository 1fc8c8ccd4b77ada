"""facilities keep their local (Chinese) name: OSM ``name:zh`` or a file's name_local column

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 14:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("facility", sa.Column("name_local", sa.String(200), nullable=True))


def downgrade() -> None:
    op.drop_column("facility", "name_local")
