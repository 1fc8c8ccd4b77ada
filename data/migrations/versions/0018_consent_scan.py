"""scanned consent forms

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 10:00:00.000000

A consent record may carry the scan of the form the elder or their guardian signed
(``consent_scan``, at most one per consent): a PDF as uploaded, or a JPEG/PNG re-encoded
without any metadata (``data.care.consent_scan``). It is kept in the database as ``bytea`` so
that a backup (one ``pg_dump``, data/backup.py) holds it with the consent, and it goes with the
consent when an elder is forgotten (``ON DELETE CASCADE``). Already compressed, so ``STORAGE
EXTERNAL``. The app's role gets its rights from the default privileges of migration 0009.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0018"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE consent_scan (
            consent_id integer PRIMARY KEY REFERENCES consent(id) ON DELETE CASCADE,
            content_type varchar(32) NOT NULL
                CHECK (content_type IN ('application/pdf', 'image/jpeg', 'image/png')),
            original_bytes integer NOT NULL CHECK (original_bytes > 0),
            content bytea NOT NULL,
            uploaded_at timestamptz NOT NULL DEFAULT now(),
            uploaded_by varchar(128) NOT NULL
        );
        COMMENT ON COLUMN consent_scan.content IS 'images re-encoded: no EXIF or other metadata';
        ALTER TABLE consent_scan ALTER COLUMN content SET STORAGE EXTERNAL;
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE consent_scan;")
