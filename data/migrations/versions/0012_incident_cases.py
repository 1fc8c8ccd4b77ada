"""incidents as cases: a category catalogue, departments, the case, its append-only history,
and notifications of the level a case is routed or escalated to

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 13:00:00.000000

An incident stays the point it was (``incident``: grid, category code, status, summary); the
case (``incident_case``, one per incident, same id) adds who handles it, at which level
(grid → community → street → district), the deadline there, the department it may be handed
to, and the reporter's contact (personal data: read by handlers of the area only, audited).
Every change is a row of ``case_event``, which no one may change or delete (a trigger, like
the audit log's). Categories are about places and services, never about who a person is.
The ``department`` role (职能部门) is added to ``user_role``.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: code, 中文, English, first level, department code or None, hours per level
#: (grid, community, street, district)
SEED: list[tuple[str, str, str, str, str | None, tuple[int, int, int, int]]] = [
    ("street_light", "路灯损坏", "Broken street light", "grid", "URBAN", (48, 72, 120, 168)),
    ("leaking_pipe", "管道漏水", "Leaking pipe", "grid", "WATER", (24, 48, 72, 120)),
    ("elder_visit", "老人需要探访", "Elder needing a visit", "grid", None, (24, 48, 72, 120)),
    ("fire_access", "消防通道堵塞", "Blocked fire access", "grid", "FIRE", (4, 12, 24, 48)),
    ("rubbish", "垃圾堆放", "Rubbish left out", "grid", "SANITATION", (24, 48, 72, 120)),
    (
        "dispute",
        "邻里纠纷调解",
        "Neighbourhood dispute to mediate",
        "grid",
        None,
        (72, 120, 168, 240),
    ),
    (
        "road_damage",
        "道路破损",
        "Damaged road or pavement",
        "community",
        "URBAN",
        (72, 120, 168, 240),
    ),
    ("noise", "噪声扰民", "Noise nuisance", "grid", None, (24, 48, 72, 120)),
]

DEPARTMENTS = [
    ("URBAN", "城市管理", "Urban management"),
    ("WATER", "供水", "Water supply"),
    ("FIRE", "消防", "Fire safety"),
    ("SANITATION", "环境卫生", "Sanitation"),
]


def upgrade() -> None:
    # A new enum value cannot be used in the transaction that adds it; nothing here uses it.
    op.execute("ALTER TYPE user_role ADD VALUE IF NOT EXISTS 'department'")
    op.execute("CREATE TYPE case_level AS ENUM ('grid', 'community', 'street', 'district')")
    op.execute(
        "CREATE TYPE case_status AS ENUM ('new', 'accepted', 'in_progress', 'resolved', 'closed')"
    )
    op.execute(
        """
        CREATE TABLE department (
            id serial PRIMARY KEY,
            code varchar(64) NOT NULL UNIQUE,
            name varchar(200) NOT NULL,
            name_en varchar(200) NOT NULL,
            user_id integer UNIQUE REFERENCES app_user(id) ON DELETE SET NULL
        );
        COMMENT ON COLUMN department.user_id IS 'the account the department signs in with';

        CREATE TABLE incident_category (
            id serial PRIMARY KEY,
            code varchar(64) NOT NULL UNIQUE,
            name varchar(200) NOT NULL,
            name_en varchar(200) NOT NULL,
            first_level case_level NOT NULL DEFAULT 'grid',
            department_id integer REFERENCES department(id) ON DELETE SET NULL,
            hours_grid integer NOT NULL CHECK (hours_grid > 0),
            hours_community integer NOT NULL CHECK (hours_community > 0),
            hours_street integer NOT NULL CHECK (hours_street > 0),
            hours_district integer NOT NULL CHECK (hours_district > 0),
            active boolean NOT NULL DEFAULT true
        );

        CREATE TABLE incident_case (
            id integer PRIMARY KEY REFERENCES incident(id) ON DELETE CASCADE,
            category_id integer NOT NULL REFERENCES incident_category(id),
            status case_status NOT NULL DEFAULT 'new',
            level case_level NOT NULL,
            top_level case_level NOT NULL,
            community_id integer REFERENCES community(id) ON DELETE SET NULL,
            street_id integer REFERENCES street(id) ON DELETE SET NULL,
            assignee_id integer REFERENCES app_user(id) ON DELETE SET NULL,
            department_id integer REFERENCES department(id) ON DELETE SET NULL,
            description text NOT NULL,
            reporter_name varchar(200),
            reporter_contact varchar(200),
            source varchar(32) NOT NULL DEFAULT 'app',
            client varchar(128),
            opened_at timestamptz NOT NULL DEFAULT now(),
            due_at timestamptz NOT NULL,
            resolved_at timestamptz,
            resolved_in_time boolean,
            closed_at timestamptz,
            escalations integer NOT NULL DEFAULT 0
        );
        COMMENT ON COLUMN incident_case.reporter_contact IS
            'personal data: handlers of the area only, each read audited';
        CREATE INDEX ix_incident_case_due ON incident_case (due_at)
            WHERE status IN ('new', 'accepted', 'in_progress');
        CREATE INDEX ix_incident_case_category ON incident_case (category_id);
        CREATE INDEX ix_incident_case_community ON incident_case (community_id);
        CREATE INDEX ix_incident_case_assignee ON incident_case (assignee_id);
        CREATE INDEX ix_incident_case_department ON incident_case (department_id);

        CREATE TABLE case_event (
            id bigserial PRIMARY KEY,
            case_id integer NOT NULL REFERENCES incident_case(id) ON DELETE CASCADE,
            at timestamptz NOT NULL DEFAULT now(),
            actor varchar(128) NOT NULL,
            kind varchar(32) NOT NULL,
            from_status case_status,
            to_status case_status,
            from_level case_level,
            to_level case_level,
            note text
        );
        CREATE INDEX ix_case_event_case ON case_event (case_id, at);

        CREATE FUNCTION case_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' AND pg_trigger_depth() > 1 THEN
                RETURN OLD;  -- the case itself is being deleted (cascade)
            END IF;
            RAISE EXCEPTION 'case history is append-only';
        END $$;
        CREATE TRIGGER case_event_no_update BEFORE UPDATE OR DELETE ON case_event
            FOR EACH ROW EXECUTE FUNCTION case_event_append_only();

        CREATE TABLE case_notice (
            id bigserial PRIMARY KEY,
            case_id integer NOT NULL REFERENCES incident_case(id) ON DELETE CASCADE,
            at timestamptz NOT NULL DEFAULT now(),
            level case_level NOT NULL,
            grid_id integer,
            community_id integer,
            street_id integer,
            user_id integer REFERENCES app_user(id) ON DELETE CASCADE,
            department_id integer REFERENCES department(id) ON DELETE CASCADE,
            kind varchar(32) NOT NULL,
            read_at timestamptz
        );
        CREATE INDEX ix_case_notice_case ON case_notice (case_id);
        """
    )
    bind = op.get_bind()
    for code, name, name_en in DEPARTMENTS:
        bind.execute(
            sa.text("INSERT INTO department (code, name, name_en) VALUES (:c, :n, :e)"),
            {"c": code, "n": name, "e": name_en},
        )
    for code, name, name_en, level, dept, hours in SEED:
        bind.execute(
            sa.text(
                "INSERT INTO incident_category (code, name, name_en, first_level, department_id, "
                "hours_grid, hours_community, hours_street, hours_district) VALUES "
                "(:c, :n, :e, CAST(:l AS case_level), "
                "(SELECT id FROM department WHERE code = :d), :h0, :h1, :h2, :h3)"
            ),
            {"c": code, "n": name, "e": name_en, "l": level, "d": dept}
            | {f"h{i}": h for i, h in enumerate(hours)},
        )


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE case_notice;
        DROP TABLE case_event;
        DROP FUNCTION case_event_append_only();
        DROP TABLE incident_case;
        DROP TABLE incident_category;
        DROP TABLE department;
        DROP TYPE case_status;
        DROP TYPE case_level;
        """
    )
    # PostgreSQL cannot drop an enum value; 'department' stays in user_role (unused).
    op.execute("UPDATE app_user SET active = false WHERE role = 'department'")
