"""ogc schema: views of the non-personal layers for OGC API Features and vector tiles

Revision ID: 0005
Revises: 0002
Create Date: 2026-11-26 14:00:00

The OGC endpoints (tipg, mounted at /ogc) read this schema and nothing else, so what other
tools can see is decided here, in one place: streets, communities, current grids with their
household count and worker, roads and facilities. Households, elders, positions and
incidents have no view and so cannot be served, whatever the endpoint is asked.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VIEWS = {
    "streets": """
        SELECT s.id, s.code, s.name, s.name_local, s.geom FROM public.street s""",
    "communities": """
        SELECT c.id, c.code, c.name, c.name_local, c.kind::text AS kind,
               st.code AS street_code, c.population,
               (SELECT count(*) FROM public.household h JOIN public.building b
                  ON b.id = h.building_id WHERE b.community_id = c.id)::integer AS households,
               c.geom
        FROM public.community c LEFT JOIN public.street st ON st.id = c.street_id""",
    "grids": """
        SELECT g.id, g.code, c.code AS community_code, w.code AS worker_code,
               w.display_name AS worker_name,
               (SELECT count(*) FROM public.household h WHERE h.grid_id = g.id)::integer
                 AS households,
               g.geom
        FROM public.grid g JOIN public.community c ON c.id = g.community_id
        LEFT JOIN public.worker w ON w.id = g.worker_id
        WHERE g.valid_to IS NULL""",
    "roads": """
        SELECT r.id, r.source_id, r.name, r.road_class, r.geom FROM public.road_segment r""",
    "facilities": """
        SELECT f.id, f.source_id, f.kind, f.name, f.capacity, f.geom FROM public.facility f""",
}

COMMENTS = {
    "streets": "街道 (sub-districts)",
    "communities": "社区 (communities) with their household count",
    "grids": "网格 (current grids) with their household count and grid worker",
    "roads": "road segments",
    "facilities": "service facilities",
}


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS ogc")
    for name, body in VIEWS.items():
        op.execute(f"CREATE OR REPLACE VIEW ogc.{name} AS {body}")
        op.execute(f"COMMENT ON VIEW ogc.{name} IS '{COMMENTS[name]}'")


def downgrade() -> None:
    op.execute("DROP SCHEMA IF EXISTS ogc CASCADE")
