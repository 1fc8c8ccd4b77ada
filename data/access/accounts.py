"""Staff accounts as an administrator manages them: who has one, in which role, for which
area, and their passwords.

The command line (``gridwork user …``) and the accounts page (``api.routers.account_pages``)
both act through here and :mod:`data.access.queries`. A password an administrator chooses (a
new account, a reset) is *temporary*: its holder is asked to choose their own
(``must_change_password``). Every change of password records when
(``password_changed_at``), and ``api.security`` refuses tokens and cookies issued before
that second, so a leaked password stops working everywhere once it is changed.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text

from data.access.queries import SYSTEM_ACTOR, Db, find_user
from data.models import Role, ScopeLevel
from geo.errors import InvalidInput, NotFound

#: What a username may hold: what people type and read aloud, and nothing that could pass
#: for another kind of caller in the audit log (``key:…``, ``cli:…``).
USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,63}")
MIN_PASSWORD = 12
MAX_PASSWORD = 256

#: Roles a person signs in with (a device has an API key, never an account).
ACCOUNT_ROLES = tuple(r for r in Role if r is not Role.device)

# No 0/O, 1/l/I: a temporary password is read out or written down once.
_READABLE = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def temporary_password() -> str:
    """A password for an administrator to hand over: 16 readable characters in fours."""
    chars = "".join(secrets.choice(_READABLE) for _ in range(16))
    return "-".join(chars[i : i + 4] for i in range(0, 16, 4))


def check_username(username: str) -> str:
    if not USERNAME.fullmatch(username):
        raise InvalidInput(
            "2 to 64 letters, digits, dots, dashes or underscores, starting with a letter or digit",
            field="username",
        )
    if username.lower() == SYSTEM_ACTOR:
        raise InvalidInput(
            "this name is the system's own in the records; choose another",
            field="username",
        )
    return username


def check_new_password(password: str, *, username: str, repeated: str | None = None) -> None:
    """Refuse a password too short, too long, the username itself, or typed differently twice."""
    if len(password) < MIN_PASSWORD:
        raise InvalidInput.said("password_too_short", field="new_password", minimum=MIN_PASSWORD)
    if len(password) > MAX_PASSWORD:
        raise InvalidInput.said("too_long", field="new_password", limit=MAX_PASSWORD)
    if password.strip().lower() == username.lower():
        raise InvalidInput("not the username", field="new_password")
    if repeated is not None and repeated != password:
        raise InvalidInput("the two passwords differ", field="repeat_password")


def set_password(
    db: Db, username: str, password_hash: str, *, temporary: bool, at: datetime
) -> None:
    """Store a new password hash; tokens issued before ``at`` are refused from now on
    (``api.security``). ``at`` is the clock that issues tokens (the API's, not the
    database's ``now()``, which is the transaction's start and may run ahead of it).
    ``temporary``: chosen by an administrator, so its holder is asked to choose their own."""
    result = db.execute(
        text(
            "UPDATE app_user SET password_hash = :h, password_changed_at = :at, "
            "must_change_password = :t WHERE username = :u"
        ),
        {"u": username, "h": password_hash, "t": temporary, "at": at},
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise NotFound.said("no_user", field="username", user=username)


def find_area(db: Db, code: str) -> tuple[ScopeLevel, str]:
    """The level of an area code (a street, a community, or a current grid)."""
    code = code.strip()
    for level, sql in (
        (ScopeLevel.street, "SELECT 1 FROM street WHERE code = :c"),
        (ScopeLevel.community, "SELECT 1 FROM community WHERE code = :c"),
        (ScopeLevel.grid, "SELECT 1 FROM grid WHERE code = :c AND valid_to IS NULL"),
    ):
        if code and db.execute(text(sql), {"c": code}).first() is not None:
            return level, code
    raise InvalidInput.said("no_area", field="area", code=code[:64])


def remove_scope(db: Db, username: str, level: ScopeLevel, code: str) -> None:
    user = find_user(db, username)
    if user is None:
        raise NotFound.said("no_user", field="username", user=username)
    db.execute(
        text(
            "DELETE FROM user_scope WHERE user_id = :id AND level = CAST(:l AS scope_level) "
            "AND code = :c"
        ),
        {"id": user.id, "l": level.value, "c": code},
    )


@dataclass(frozen=True)
class Area:
    level: ScopeLevel
    code: str
    name: str | None  # the street's or community's own name; a grid has none
    current: bool = True  # False: a grid code no current grid has (a published plan closed it)


@dataclass(frozen=True)
class Account:
    """One account as the administrator sees it (never its password hash)."""

    username: str
    role: Role
    active: bool
    created_at: datetime
    password_changed_at: datetime | None
    must_change_password: bool
    areas: list[Area]
    worker_code: str | None
    worker_name: str | None
    keys: int  # live API keys acting for this account
    worker_grids: tuple[str, ...] = ()  # the current grids of the linked worker record


_ACCOUNT_SQL = """
SELECT u.username, u.role::text AS role, u.active, u.created_at, u.password_changed_at,
       u.must_change_password, w.code AS worker_code, w.display_name AS worker_name,
       (SELECT count(*) FROM api_key k WHERE k.user_id = u.id AND k.revoked_at IS NULL) AS keys,
       coalesce((SELECT json_agg(json_build_array(s.level::text, s.code,
                         coalesce(st.name_local, st.name, c.name_local, c.name),
                         s.level <> 'grid' OR EXISTS (SELECT 1 FROM grid g
                             WHERE g.code = s.code AND g.valid_to IS NULL))
                         ORDER BY s.level, s.code)
                 FROM user_scope s
                 LEFT JOIN street st ON s.level = 'street' AND st.code = s.code
                 LEFT JOIN community c ON s.level = 'community' AND c.code = s.code
                 WHERE s.user_id = u.id), '[]') AS areas,
       ARRAY(SELECT g.code FROM grid g WHERE g.worker_id = w.id AND g.valid_to IS NULL
             ORDER BY g.code) AS worker_grids
FROM app_user u LEFT JOIN worker w ON w.user_id = u.id
"""


def _account(row: Any) -> Account:
    return Account(
        username=row["username"],
        role=Role(row["role"]),
        active=row["active"],
        created_at=row["created_at"],
        password_changed_at=row["password_changed_at"],
        must_change_password=row["must_change_password"],
        areas=[Area(ScopeLevel(a[0]), a[1], a[2], bool(a[3])) for a in row["areas"]],
        worker_code=row["worker_code"],
        worker_name=row["worker_name"],
        keys=int(row["keys"]),
        worker_grids=tuple(row["worker_grids"] or ()),
    )


def list_accounts(db: Db) -> list[Account]:
    rows = db.execute(text(_ACCOUNT_SQL + " ORDER BY u.username")).mappings().all()
    return [_account(r) for r in rows]


def get_account(db: Db, username: str) -> Account:
    row = db.execute(text(_ACCOUNT_SQL + " WHERE u.username = :u"), {"u": username})
    found = row.mappings().first()
    if found is None:
        raise NotFound.said("no_user", field="username", user=username[:64])
    return _account(found)


def area_choices(db: Db) -> list[Area]:
    """The streets and communities an account may be given, with their names (grids are
    typed by code: a district has hundreds)."""
    rows = db.execute(
        text(
            "SELECT 'street' AS level, code, coalesce(name_local, name) AS name FROM street "
            "UNION ALL SELECT 'community', code, coalesce(name_local, name) FROM community "
            "ORDER BY 2"
        )
    ).all()
    return [Area(ScopeLevel(r[0]), r[1], r[2]) for r in rows]


def worker_choices(db: Db, *, limit: int) -> list[tuple[str, str, str | None]]:
    """Worker records to suggest when linking an account: code, name, and the account it is
    linked to (if any); at most ``limit``, those without an account first (the ones an
    administrator links), each group by code."""
    rows = db.execute(
        text(
            "SELECT w.code, w.display_name, u.username FROM worker w "
            "LEFT JOIN app_user u ON u.id = w.user_id "
            "ORDER BY u.username IS NOT NULL, w.code LIMIT :n"
        ),
        {"n": limit},
    ).all()
    return [(r[0], r[1], r[2]) for r in rows]


def account_counts(db: Db) -> tuple[int, int]:
    """How many accounts are active, and how many of them still hold a password an
    administrator chose (for the administrator's home)."""
    row = db.execute(
        text(
            "SELECT count(*) FILTER (WHERE active), "
            "count(*) FILTER (WHERE active AND must_change_password) FROM app_user"
        )
    ).one()
    return int(row[0]), int(row[1])
