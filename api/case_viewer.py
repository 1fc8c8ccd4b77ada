"""Who is looking at the cases: the caller's principal as the incident queries' viewer, for
the cases API (``api/routers/cases.py``) and the case pages (``api/routers/case_pages.py``)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from api.security import Principal
from data.incidents import queries as q
from data.incidents import service
from data.models import Role


def case_viewer(session: Session, principal: Principal) -> q.Viewer:
    """The caller's area and name; a department's account sees the cases handed to it."""
    return service.viewer(
        session,
        principal.scope,
        principal.user_id,
        principal.name,
        department_account=principal.role is Role.department,
    )
