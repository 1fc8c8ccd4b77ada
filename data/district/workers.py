"""Which account a grid worker signs in with (``worker.user_id``, migration 0010).

The link is what makes a grid worker's households theirs: a grid worker reads and writes the
households of the grids whose worker record is linked to their account (``data.policy``).
"""

from __future__ import annotations

from sqlalchemy import text

from data.access.queries import Db, find_user
from geo.errors import Conflict, InvalidInput, NotFound


def link_worker_account(
    db: Db, worker_code: str, username: str | None, *, replace: bool = True
) -> None:
    """Link the worker ``worker_code`` to the account ``username`` (None: unlink). An account
    is linked to at most one worker record; linking it elsewhere moves the link. A worker
    record linked to another account is taken from it, unless ``replace`` is False: then it
    is refused, naming that account (the accounts page, where a code picked from a list
    must not silently cut a colleague off from their households)."""
    user_id = None
    if username is not None:
        user = find_user(db, username)
        if user is None:
            raise NotFound.said("no_user", field="username", user=username)
        user_id = user.id
    found = db.execute(
        text(
            "SELECT w.id, u.username FROM worker w LEFT JOIN app_user u ON u.id = w.user_id "
            "WHERE w.code = :c FOR UPDATE OF w"
        ),
        {"c": worker_code},
    ).first()
    if found is None:
        raise InvalidInput.said("no_worker", field="worker", code=worker_code)
    holder = found[1]
    if not replace and holder is not None and username is not None and holder != username:
        raise Conflict.said("worker_linked", field="worker", code=worker_code, user=holder)
    if user_id is not None:
        db.execute(
            text("UPDATE worker SET user_id = NULL WHERE user_id = :u AND id <> :w"),
            {"u": user_id, "w": found[0]},
        )
    db.execute(text("UPDATE worker SET user_id = :u WHERE id = :w"), {"u": user_id, "w": found[0]})


def idle_workers(db: Db, held_community_ids: list[int] | None) -> list[str]:
    """The names of the workers of these communities (None: everywhere) who answer for no
    current grid: after a re-plan gave their grids to others, they are who a coordinator can
    give a grid to, and no map shows them."""
    rows = db.execute(
        text(
            "SELECT coalesce(w.display_name, w.code) FROM worker w "
            "WHERE (CAST(:c AS int[]) IS NULL OR w.community_id = ANY(:c)) "
            "AND NOT EXISTS (SELECT 1 FROM grid g WHERE g.worker_id = w.id AND g.valid_to IS NULL) "
            "ORDER BY 1"
        ),
        {"c": held_community_ids},
    ).scalars()
    return [str(r) for r in rows]


def area_workers(
    db: Db, held_community_ids: list[int] | None, *, limit: int
) -> list[tuple[str, str]]:
    """(code, name) of the workers a planner of these communities (None: everywhere) may give
    a grid to: the communities' own, and those answering for a grid there now; at most
    ``limit`` (suggestions for a typed field)."""
    rows = db.execute(
        text(
            "SELECT w.code, coalesce(w.display_name, w.code) FROM worker w "
            "WHERE CAST(:c AS int[]) IS NULL OR w.community_id = ANY(:c) OR EXISTS ("
            "SELECT 1 FROM grid g WHERE g.worker_id = w.id AND g.valid_to IS NULL "
            "AND g.community_id = ANY(:c)) ORDER BY 2, 1 LIMIT :n"
        ),
        {"c": held_community_ids, "n": limit},
    ).all()
    return [(str(code), str(name)) for code, name in rows]


def worker_typed(db: Db, typed: str) -> tuple[str, str] | None:
    """(code, name) of the worker someone typed: a code, or a name that only one worker has
    (as pages offer both); None when it is neither."""
    rows = db.execute(
        text(
            "SELECT code, coalesce(display_name, code) FROM worker "
            "WHERE code = :t OR display_name = :t"
        ),
        {"t": typed},
    ).all()
    exact = [r for r in rows if r[0] == typed]
    one = exact or (rows if len(rows) == 1 else [])
    return (str(one[0][0]), str(one[0][1])) if one else None
