"""case webhooks: the outbox carries cases as well as alerts

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 10:00:00.000000

A case escalated (by the deadline sweep or a handler) or handed to a department is told to
another system by webhook, like an alert (0004). Rather than a second outbox with a second
delivery loop, ``webhook_outbox`` gets a ``topic`` (``alert`` or ``case``) and a ``case_id``
(deleted with its case); each row names exactly one of the two. The partial index serves the
delivery loop's claim (rows not yet delivered nor given up, in id order), which otherwise
scans every delivered row kept until the purge — 100,000 of them after a sweep of as many
overdue cases.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE webhook_outbox
            ALTER COLUMN alert_id DROP NOT NULL,
            ADD COLUMN topic varchar(16) NOT NULL DEFAULT 'alert'
                CHECK (topic IN ('alert', 'case')),
            ADD COLUMN case_id integer REFERENCES incident_case(id) ON DELETE CASCADE,
            ADD CONSTRAINT ck_webhook_outbox_one_subject CHECK (
                (topic = 'alert' AND alert_id IS NOT NULL AND case_id IS NULL)
                OR (topic = 'case' AND case_id IS NOT NULL AND alert_id IS NULL));
        CREATE INDEX ix_webhook_outbox_case_id ON webhook_outbox (case_id);
        CREATE INDEX ix_webhook_outbox_due ON webhook_outbox (id)
            WHERE delivered_at IS NULL AND NOT failed;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP INDEX ix_webhook_outbox_due;
        DROP INDEX ix_webhook_outbox_case_id;
        DELETE FROM webhook_outbox WHERE topic = 'case';
        ALTER TABLE webhook_outbox
            DROP CONSTRAINT ck_webhook_outbox_one_subject,
            DROP COLUMN case_id,
            DROP COLUMN topic,
            ALTER COLUMN alert_id SET NOT NULL;
        """
    )
