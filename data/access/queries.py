"""Users, their areas, API keys and the audit log: the storage side of access control.

``AreaScope`` is resolved once per request from the user's scope rows and then handed to
every query, so rows outside the caller's area are filtered in SQL, not in handlers.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from data.access.reasons import AuditReason, split
from data.models import Role, ScopeLevel
from geo.errors import Conflict, InvalidInput, NotFound

Db = Session | Connection


# Non-personal layers without a grid of their own (roads, buildings) over alias ``t`` are
# visible where they touch one of the caller's grids, or a community whose current grids are
# all the caller's (a community held whole, with or without grids yet). The community around
# a scoped grid is context only and lends no rows (``data.policy``); bind :community_ids and
# :grid_ids.
WITHIN_AREA_SQL = (
    "(EXISTS (SELECT 1 FROM grid a WHERE a.id = ANY(:grid_ids) "
    "AND ST_Intersects(a.geom, t.geom)) OR EXISTS (SELECT 1 FROM community a "
    "WHERE a.id = ANY(:community_ids) AND NOT EXISTS (SELECT 1 FROM grid g "
    "WHERE g.community_id = a.id AND g.valid_to IS NULL AND g.id <> ALL(:grid_ids)) "
    "AND ST_Intersects(a.geom, t.geom)))"
)


@dataclass(frozen=True)
class AreaScope:
    """The streets, communities and grids a caller may see; ``None`` means everywhere."""

    street_ids: frozenset[int] | None
    community_ids: frozenset[int] | None
    grid_ids: frozenset[int] | None
    #: Communities held through a street or community scope (not merely the context of a
    #: scoped grid): the communities whose plans the caller may make (``data.policy``).
    held_community_ids: frozenset[int] | None

    @property
    def unrestricted(self) -> bool:
        return self.grid_ids is None

    @classmethod
    def everywhere(cls) -> AreaScope:
        return cls(None, None, None, None)

    def holds_community(self, community_id: int) -> bool:
        """Whether the caller holds the whole community (street or community scope)."""
        return self.held_community_ids is None or community_id in self.held_community_ids

    def sql_ids(self, level: str) -> list[int] | None:
        """Ids for an ``= ANY(:ids)`` filter, or None when unrestricted."""
        ids = {
            "street": self.street_ids,
            "community": self.community_ids,
            "grid": self.grid_ids,
            "held_community": self.held_community_ids,
        }[level]
        return None if ids is None else sorted(ids)


@dataclass(frozen=True)
class UserRecord:
    id: int
    username: str
    password_hash: str
    role: Role
    active: bool
    #: Tokens issued before this second are refused (migration 0031); None: never changed.
    password_changed_at: datetime | None = None
    #: An administrator chose the password: its holder is asked to choose their own.
    must_change_password: bool = False


def find_user(db: Db, username: str) -> UserRecord | None:
    row = db.execute(
        text(
            "SELECT id, username, password_hash, role::text, active, password_changed_at, "
            "must_change_password FROM app_user WHERE username = :u"
        ),
        {"u": username},
    ).first()
    if row is None:
        return None
    return UserRecord(row[0], row[1], row[2], Role(row[3]), row[4], row[5], row[6])


def create_user(db: Db, username: str, password_hash: str, role: Role) -> int:
    if find_user(db, username) is not None:
        raise Conflict.said("user_exists", field="username", user=username)
    return int(
        db.execute(
            text(
                "INSERT INTO app_user (username, password_hash, role) "
                "VALUES (:u, :h, CAST(:r AS user_role)) RETURNING id"
            ),
            {"u": username, "h": password_hash, "r": role.value},
        ).scalar_one()
    )


def set_role(db: Db, username: str, role: Role) -> None:
    """Change a user's role; the last active admin stays one (nobody could manage accounts)."""
    user = find_user(db, username)
    if user is not None and role is not Role.admin:
        _refuse_last_admin(db, user)
    result = db.execute(
        text("UPDATE app_user SET role = CAST(:r AS user_role) WHERE username = :u"),
        {"u": username, "r": role.value},
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise NotFound.said("no_user", field="username", user=username)


_AREA_TABLE = {
    ScopeLevel.street: "street",
    ScopeLevel.community: "community",
    ScopeLevel.grid: "grid",
}


def add_scope(db: Db, username: str, level: ScopeLevel, code: str) -> None:
    user = find_user(db, username)
    if user is None:
        raise NotFound.said("no_user", field="username", user=username)
    table = _AREA_TABLE[level]
    exists = db.execute(
        text(f"SELECT 1 FROM {table} WHERE code = :c"),  # noqa: S608
        {"c": code},
    ).first()
    if exists is None:
        raise InvalidInput(f"no {level.value} with code '{code}'", field="code")
    db.execute(
        text(
            "INSERT INTO user_scope (user_id, level, code) VALUES "
            "(:id, CAST(:l AS scope_level), :c) ON CONFLICT DO NOTHING"
        ),
        {"id": user.id, "l": level.value, "c": code},
    )


def scopes_of(db: Db, user_id: int) -> list[tuple[ScopeLevel, str]]:
    rows = db.execute(
        text("SELECT level::text, code FROM user_scope WHERE user_id = :id ORDER BY level, code"),
        {"id": user_id},
    ).all()
    return [(ScopeLevel(r[0]), r[1]) for r in rows]


def resolve_scope(db: Db, role: Role, user_id: int | None) -> AreaScope:
    """Expand scope rows downwards (street → its communities → their grids); the streets and
    communities holding a scoped grid become visible for context, not their other grids.
    A grid worker's area also holds the current grids whose worker record is theirs
    (``grid.worker_id`` → ``worker.user_id``): a grid scope names a grid by its code, which a
    published plan closes (new grids get new codes), and the worker step after publishing gives
    them their new grids. An admin sees everywhere; anyone else sees nothing unless given an
    area (or, as a grid worker, a grid)."""
    if role == Role.admin:
        return AreaScope.everywhere()
    if user_id is None:
        return AreaScope(frozenset(), frozenset(), frozenset(), frozenset())
    row = db.execute(
        text(
            """
        WITH s AS (SELECT level::text AS level, code FROM user_scope WHERE user_id = :id),
        own_streets AS (SELECT st.id FROM street st
                        JOIN s ON s.level = 'street' AND s.code = st.code),
        own_communities AS (
            SELECT c.id FROM community c WHERE c.street_id IN (SELECT id FROM own_streets)
            UNION SELECT c.id FROM community c
                  JOIN s ON s.level = 'community' AND s.code = c.code),
        grids AS (
            SELECT g.id, g.community_id FROM grid g
            WHERE g.community_id IN (SELECT id FROM own_communities) AND g.valid_to IS NULL
            UNION SELECT g.id, g.community_id FROM grid g
                  JOIN s ON s.level = 'grid' AND s.code = g.code AND g.valid_to IS NULL
            UNION SELECT g.id, g.community_id FROM grid g
                  JOIN worker w ON w.id = g.worker_id
                  WHERE w.user_id = :id AND :role = 'grid_worker' AND g.valid_to IS NULL),
        communities AS (SELECT id FROM own_communities UNION SELECT community_id FROM grids),
        streets AS (SELECT id FROM own_streets UNION
                    SELECT street_id FROM community WHERE id IN (SELECT id FROM communities)
                    AND street_id IS NOT NULL)
        SELECT (SELECT coalesce(array_agg(id), '{}') FROM streets),
               (SELECT coalesce(array_agg(id), '{}') FROM communities),
               (SELECT coalesce(array_agg(id), '{}') FROM grids),
               (SELECT coalesce(array_agg(id), '{}') FROM own_communities)
        """
        ),
        {"id": user_id, "role": role.value},
    ).one()
    return AreaScope(*(frozenset(r) for r in row))


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(db: Db, name: str, role: Role, username: str | None = None) -> str:
    """A new random key; only its digest is stored, so it is shown exactly once."""
    key = "gw_" + secrets.token_urlsafe(32)
    user_id = None
    if username is not None:
        user = find_user(db, username)
        if user is None:
            raise NotFound.said("no_user", field="username", user=username)
        if not user.active:
            raise InvalidInput(f"user '{username}' is disabled", field="username")
        if not key_role_allowed(user.role, role):
            raise InvalidInput(
                f"a key of user '{username}' ({user.role.value}) cannot have role "
                f"'{role.value}': only '{user.role.value}' or 'device'",
                field="role",
            )
        user_id = user.id
    db.execute(
        text(
            "INSERT INTO api_key (name, prefix, digest, role, user_id) "
            "VALUES (:n, :p, :d, CAST(:r AS user_role), :u)"
        ),
        {"n": name, "p": key[:10], "d": key_digest(key), "r": role.value, "u": user_id},
    )
    return key


# A key bound to a user lives only while that user is active, and never acts above the user's
# current role: an admin's keys may carry any role, anyone else's only their own role or
# ``device`` (which can only send positions). Demote, disable or remove the user and the key
# is refused at its next request. (Alias-free, so that it reads ``FROM api_key WHERE ...``.)
_KEY_OWNER_ALLOWS = (
    "(api_key.user_id IS NULL OR EXISTS (SELECT 1 FROM app_user u WHERE u.id = api_key.user_id "
    "AND u.active AND (u.role = 'admin' OR u.role = api_key.role OR api_key.role = 'device')))"
)


def key_role_allowed(user_role: Role, key_role: Role) -> bool:
    """May a user of ``user_role`` hold a key of ``key_role``? (The rule of _KEY_OWNER_ALLOWS.)"""
    return user_role == Role.admin or key_role in (user_role, Role.device)


@dataclass(frozen=True)
class ApiKeyRecord:
    name: str
    role: Role
    user_id: int | None


def live_device_keys(db: Db, *, limit: int) -> dict[str, ApiKeyRecord]:
    """Digest → record of the newest live device keys, at most ``limit`` of them."""
    rows = db.execute(
        text(
            "SELECT digest, name, role::text, user_id FROM api_key "  # noqa: S608 - constants
            "WHERE role = 'device' AND revoked_at IS NULL AND " + _KEY_OWNER_ALLOWS + " "
            "ORDER BY id DESC LIMIT :n"
        ),
        {"n": limit},
    ).all()
    return {r[0]: ApiKeyRecord(r[1], Role(r[2]), r[3]) for r in rows}


def find_api_keys(db: Db, keys: Sequence[str]) -> dict[str, ApiKeyRecord]:
    """The live keys among ``keys``, by key; unknown and revoked ones are absent."""
    by_digest = {key_digest(k): k for k in keys}
    rows = db.execute(
        text(
            "SELECT digest, name, role::text, user_id FROM api_key "  # noqa: S608 - constants
            "WHERE digest = ANY(:d) AND revoked_at IS NULL AND " + _KEY_OWNER_ALLOWS
        ),
        {"d": list(by_digest)},
    ).all()
    return {by_digest[r[0]]: ApiKeyRecord(r[1], Role(r[2]), r[3]) for r in rows}


#: Who acts when no person does (a plan switching on its day, an alert closing by itself), in
#: the audit log and on the records. No account may take this name
#: (:func:`data.access.accounts.check_username`), so nobody's actions pass for the system's.
SYSTEM_ACTOR = "gridwork"


def write_audit(
    db: Db,
    *,
    actor: str,
    role: str,
    method: str,
    route: str,
    subject_type: str,
    subject_ids: Sequence[object],
    reason: str | AuditReason | None,
) -> None:
    """One audit row. A reason gridwork words itself is an :class:`AuditReason` (kept in
    English and as sentence codes, for the audit page to say in its language); words someone
    typed are a plain string, kept as typed."""
    why, said = split(reason)
    db.execute(
        text(
            "INSERT INTO audit_log (actor, role, method, route, subject_type, subject_ids, "
            "reason, reason_said) VALUES (:a, :r, :m, :route, :t, :ids, :why, "
            "CAST(:said AS jsonb))"
        ),
        {
            "a": actor,
            "r": role,
            "m": method,
            "route": route,
            "t": subject_type,
            "ids": [str(i) for i in subject_ids],
            "why": why,
            "said": None if said is None else json.dumps(said),
        },
    )


@dataclass(frozen=True)
class AuditRow:
    """One read or change to log, for :func:`write_audits`."""

    actor: str
    role: str
    method: str
    route: str
    subject_type: str
    subject_ids: Sequence[object]
    reason: str | AuditReason | None


def write_audits(db: Db, rows: Sequence[AuditRow]) -> None:
    """Several audit rows in one statement (the live inboxes woken by one alert: one row per
    reader, as :func:`write_audit` would write each)."""
    if not rows:
        return
    db.execute(
        text(
            "INSERT INTO audit_log (actor, role, method, route, subject_type, subject_ids, "
            "reason, reason_said) SELECT r.actor, r.role, r.method, r.route, r.subject_type, "
            "r.subject_ids, r.reason, r.said FROM json_to_recordset(CAST(:rows AS json)) AS r("
            "ord int, actor text, role text, method text, route text, subject_type text, "
            "subject_ids text[], reason text, said jsonb) ORDER BY r.ord"
        ),
        {
            "rows": json.dumps(
                [
                    {
                        "ord": i,
                        "actor": r.actor,
                        "role": r.role,
                        "method": r.method,
                        "route": r.route,
                        "subject_type": r.subject_type,
                        "subject_ids": [str(x) for x in r.subject_ids],
                        **dict(zip(("reason", "said"), split(r.reason), strict=True)),
                    }
                    for i, r in enumerate(rows)
                ]
            )
        },
    )


#: The audit rows :func:`read_audit` reads, newest first (its parameters: a None is no filter).
READ_AUDIT_SQL = (
    "SELECT id, at, actor, role, method, route, subject_type, subject_ids, reason, "
    "reason_said FROM audit_log WHERE (CAST(:since AS timestamptz) IS NULL OR at >= :since) "
    "AND (CAST(:until AS timestamptz) IS NULL OR at < :until) "
    "AND (CAST(:actor AS text) IS NULL OR actor = :actor) "
    "AND (CAST(:kind AS text) IS NULL OR subject_type = :kind) "
    "AND (CAST(:subject AS text) IS NULL "
    "OR subject_ids @> ARRAY[CAST(:subject AS varchar)]) "
    "AND (CAST(:before AS bigint) IS NULL OR id < :before) "
    "ORDER BY id DESC LIMIT :limit OFFSET :offset"
)


def read_audit(
    db: Db,
    *,
    since: datetime | None,
    actor: str | None,
    limit: int,
    offset: int,
    until: datetime | None = None,
    subject_type: str | None = None,
    subject_id: str | None = None,
    before_id: int | None = None,
) -> list[dict[str, Any]]:
    """Audit rows, newest first: by whom, about which kind of subject and which one, in a
    span of time; ``before_id`` pages on by id (the audit page's "older"). A subject is
    found through the GIN index on ``subject_ids`` (migration 0031)."""
    params = {
        "since": since,
        "until": until,
        "actor": actor,
        "kind": subject_type,
        "subject": subject_id,
        "before": before_id,
        "limit": limit,
        "offset": offset,
    }
    rows = db.execute(text(READ_AUDIT_SQL), params).mappings().all()
    return [{**r, "at": r["at"].isoformat()} for r in rows]


# --- managing accounts and keys (gridwork user/key …, /admin/…) ------------------------------


def list_api_keys(db: Db) -> list[dict[str, Any]]:
    """Every key, live or revoked, without its digest: name, prefix, role, owner, dates, and
    whether it works now (``live``: not revoked, and its user, if any, active and allowed)."""
    rows = (
        db.execute(
            text(
                "SELECT api_key.name, api_key.prefix"
                ", api_key.role::text AS role, "
                "u.username AS owner, api_key.created_at, api_key.revoked_at, "
                "(api_key.revoked_at IS NULL AND " + _KEY_OWNER_ALLOWS + ") AS live "
                "FROM api_key LEFT JOIN app_user u ON u.id = api_key.user_id "
                "ORDER BY api_key.name"
            )
        )
        .mappings()
        .all()
    )
    return [
        {
            **r,
            "created_at": r["created_at"].isoformat(),
            "revoked_at": r["revoked_at"].isoformat() if r["revoked_at"] else None,
        }
        for r in rows
    ]


def revoke_api_key(db: Db, name: str) -> bool:
    """Revoke the key ``name``; False if it was already revoked. NotFound if there is none.
    (The api_key trigger tells every API process, which forget the key at once.)"""
    row = db.execute(
        text("SELECT revoked_at FROM api_key WHERE name = :n FOR UPDATE"), {"n": name}
    ).first()
    if row is None:
        raise NotFound(f"no API key '{name}'", field="name")
    if row[0] is not None:
        return False
    db.execute(text("UPDATE api_key SET revoked_at = now() WHERE name = :n"), {"n": name})
    return True


def list_users(db: Db) -> list[dict[str, Any]]:
    rows = (
        db.execute(
            text(
                "SELECT username, role::text AS role, active, created_at FROM app_user "
                "ORDER BY username"
            )
        )
        .mappings()
        .all()
    )
    return [{**r, "created_at": r["created_at"].isoformat()} for r in rows]


def _other_active_admins(db: Db, username: str) -> int:
    return int(
        db.execute(
            text(
                "SELECT count(*) FROM app_user WHERE role = 'admin' AND active AND username <> :u"
            ),
            {"u": username},
        ).scalar_one()
    )


def _refuse_last_admin(db: Db, user: UserRecord) -> None:
    if user.role == Role.admin and user.active and _other_active_admins(db, user.username) == 0:
        raise Conflict.said("last_admin", field="username", user=user.username)


def set_user_active(db: Db, username: str, active: bool) -> None:
    """Disable or enable a user. A disabled user's tokens, cookies and keys are refused from
    their next request on (the app_user trigger tells every API process)."""
    user = find_user(db, username)
    if user is None:
        raise NotFound.said("no_user", field="username", user=username)
    if not active:
        _refuse_last_admin(db, user)
    db.execute(text("UPDATE app_user SET active = :a WHERE id = :id"), {"a": active, "id": user.id})


def remove_user(db: Db, username: str) -> int:
    """Delete a user with their areas and API keys (ON DELETE CASCADE); how many keys went.
    The audit log keeps their name in the entries they wrote."""
    user = find_user(db, username)
    if user is None:
        raise NotFound.said("no_user", field="username", user=username)
    _refuse_last_admin(db, user)
    keys = int(
        db.execute(
            text("SELECT count(*) FROM api_key WHERE user_id = :id"), {"id": user.id}
        ).scalar_one()
    )
    db.execute(text("DELETE FROM app_user WHERE id = :id"), {"id": user.id})
    return keys


@dataclass(frozen=True)
class AuditSpan:
    """What an audit log holds: how many rows, the first and last time, the highest id."""

    rows: int
    first: datetime | None
    last: datetime | None
    max_id: int | None

    def describe(self) -> str:
        if not self.rows or self.first is None or self.last is None:
            return "no audit rows"
        return (
            f"{self.rows} audit rows from {self.first.isoformat()} to {self.last.isoformat()} "
            f"(ids up to {self.max_id})"
        )


def audit_span(db: Db) -> AuditSpan:
    row = db.execute(text("SELECT count(*), min(at), max(at), max(id) FROM audit_log")).one()
    return AuditSpan(int(row[0]), row[1], row[2], row[3])
