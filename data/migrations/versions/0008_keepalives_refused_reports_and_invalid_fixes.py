"""keep-alives, refused reports and fixes the device marks invalid

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 10:00:00.000000

Traccar Client 10 and the legacy Android client retry the oldest buffered report until it
is answered 2xx, so a report gridwork cannot keep as a fix (no position, too old, from
before consent) is now answered 200 and not stored; what staff need to tell a broken watch
from a quiet one is kept on the device instead:

* ``last_heard_at``: when the newest report not stored as a fix arrived (a keep-alive or a
  refused report; a stored fix says it by its own ``received_at``);
* ``last_battery`` / ``last_charging``: what the newest keep-alive said of the battery;
* ``not_stored``: how many reports were answered but not stored as a fix;
* ``last_refused_at`` / ``last_refused_reason``: the newest report that was refused, or
  whose time was (a device clock too far ahead), and why.

``position.valid`` is false for a fix the device itself marks invalid (``valid=false``): it
is stored, but does not move the safe-zone state.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "device",
        sa.Column(
            "last_heard_at",
            sa.DateTime(timezone=True),
            comment="receipt of the newest keep-alive or refused report",
        ),
    )
    op.add_column(
        "device", sa.Column("last_battery", sa.Float(), comment="from the newest keep-alive")
    )
    op.add_column("device", sa.Column("last_charging", sa.Boolean()))
    op.add_column(
        "device",
        sa.Column(
            "not_stored",
            sa.Integer(),
            server_default=sa.text("0"),
            nullable=False,
            comment="reports answered, not stored",
        ),
    )
    op.add_column("device", sa.Column("last_refused_at", sa.DateTime(timezone=True)))
    op.add_column("device", sa.Column("last_refused_reason", sa.String(length=300)))
    # A constant default: PostgreSQL adds the column without rewriting the table.
    op.add_column(
        "position",
        sa.Column(
            "valid",
            sa.Boolean(),
            server_default=sa.text("true"),
            nullable=False,
            comment="false: the device marked it invalid; it does not move the zone state",
        ),
    )


def downgrade() -> None:
    op.drop_column("position", "valid")
    for name in (
        "last_refused_reason",
        "last_refused_at",
        "not_stored",
        "last_charging",
        "last_battery",
        "last_heard_at",
    ):
        op.drop_column("device", name)
