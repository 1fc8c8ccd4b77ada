"""passwords that staff can change, and that end the sessions signed in before the change

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-07 11:30:00.000000

A password was set once, at ``gridwork user add``, and never again: nobody could change their
own, an administrator could not reset a forgotten one, and a password that had leaked kept
every cookie and token signed with it alive until it expired.

``password_changed_at`` is when the password last changed: tokens and cookies issued before
that second are refused (``api.security``), so a change signs the account out everywhere.
``must_change_password`` marks a password an administrator chose (a new account, a reset):
the browser sends its holder to choose their own at sign-in, and every page says so until
they have.

The audit page asks "who read this elder's record?": ``audit_log.subject_ids`` gets a GIN
index, so that question does not scan the whole log.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0031"
down_revision: str | Sequence[str] | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "app_user",
        sa.Column(
            "password_changed_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="tokens issued before this second are refused; NULL: never changed",
        ),
    )
    op.add_column(
        "app_user",
        sa.Column(
            "must_change_password",
            sa.Boolean(),
            nullable=False,
            server_default=sa.text("false"),
            comment="the password was set by an administrator; its holder is asked to change it",
        ),
    )
    op.execute("CREATE INDEX ix_audit_log_subject_ids ON audit_log USING gin (subject_ids)")


def downgrade() -> None:
    op.execute("DROP INDEX ix_audit_log_subject_ids")
    op.drop_column("app_user", "must_change_password")
    op.drop_column("app_user", "password_changed_at")
