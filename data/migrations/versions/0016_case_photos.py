"""case photos and duplicate links

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 09:00:00.000000

A photo of a case (``case_photo``) is kept in the database as ``bytea``, re-encoded without any
metadata (a photo's EXIF GPS can reveal where a reporter lives), with its thumbnail: so a
backup (one ``pg_dump`` of the database, data/backup.py) holds the photos with the cases, and
a restore brings both back together. Only the re-encoded image is stored; ``original_bytes``
records the size that was uploaded. The images are already compressed, so their columns are
``STORAGE EXTERNAL``: PostgreSQL moves them out of line without trying to compress them again.

A case reported again nearby is linked to the one it repeats (``case_link``): a case is a
duplicate of at most one other, never of itself; the history entry of the link is a
``case_event`` like every other change.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE case_photo (
            id serial PRIMARY KEY,
            case_id integer NOT NULL REFERENCES incident_case(id) ON DELETE CASCADE,
            content_type varchar(32) NOT NULL
                CHECK (content_type IN ('image/jpeg', 'image/png', 'image/webp')),
            width integer NOT NULL CHECK (width > 0),
            height integer NOT NULL CHECK (height > 0),
            original_bytes integer NOT NULL CHECK (original_bytes > 0),
            image bytea NOT NULL,
            thumbnail bytea NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            uploaded_by varchar(128) NOT NULL
        );
        COMMENT ON COLUMN case_photo.image IS 're-encoded: no EXIF or other metadata';
        ALTER TABLE case_photo ALTER COLUMN image SET STORAGE EXTERNAL;
        ALTER TABLE case_photo ALTER COLUMN thumbnail SET STORAGE EXTERNAL;
        CREATE INDEX ix_case_photo_case ON case_photo (case_id, id);

        CREATE TABLE case_link (
            case_id integer PRIMARY KEY REFERENCES incident_case(id) ON DELETE CASCADE,
            duplicate_of integer NOT NULL REFERENCES incident_case(id) ON DELETE CASCADE,
            at timestamptz NOT NULL DEFAULT now(),
            actor varchar(128) NOT NULL,
            CHECK (case_id <> duplicate_of)
        );
        CREATE INDEX ix_case_link_duplicate_of ON case_link (duplicate_of);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE case_link; DROP TABLE case_photo;")
