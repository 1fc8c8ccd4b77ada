"""Incidents as cases over JSON: the catalogue, departments, reports, the flow, notices,
figures. Thin: every rule is in ``data.incidents.service`` and ``geo.incidents.rules``.

A case is seen by the staff of its grid's area and by the department it is with. The
reporter's contact is personal data: it is given only to those who may handle cases, and
each read that returns one is audited.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar

import anyio.to_thread
from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field
from sqlalchemy.orm import Session

from api.case_viewer import case_viewer as _viewer
from api.deps import LimitDep, OffsetDep, SessionDep
from api.schemas import Answer, StrictModel
from api.schemas import cases as answers
from api.schemas.cases import CategoryIn, DepartmentIn
from api.security import Principal, audit_read, require
from api.state import app_state
from data.access.reasons import said
from data.incidents import queries as q
from data.incidents import service
from data.policy import Action, may
from geo.errors import InvalidInput
from geo.incidents.rules import MOVES, STATUSES

router = APIRouter(prefix="/cases", tags=["cases"])

Viewing = Annotated[Principal, Depends(require(Action.view_cases))]
Handling = Annotated[Principal, Depends(require(Action.handle_cases))]
Reporting = Annotated[Principal, Depends(require(Action.report_incidents))]
Managing = Annotated[Principal, Depends(require(Action.manage_categories))]


def _answers(model: type[Answer]) -> dict[str, Any]:
    """A route's answer as ``model``, keys a row does not hold absent (not null)."""
    return {"response_model": model, "response_model_exclude_unset": True}


# A case as answered: the reporter is there only for handlers, absent otherwise.
_CASE = _answers(answers.Case)

Move = enum.StrEnum("Move", {m: m for m in MOVES})  # type: ignore[misc]


def now() -> datetime:
    return datetime.now(UTC)


class ReportIn(StrictModel):
    """A report, its fields named as ``service.report_case`` takes them."""

    category: str = Field(max_length=64)
    lon: float
    lat: float
    description: str = Field(max_length=4000)
    reporter_name: str | None = Field(None, max_length=200)
    reporter_contact: str | None = Field(None, max_length=200)


class NoteIn(StrictModel):
    note: str | None = Field(None, max_length=2000)


class ReasonIn(StrictModel):
    reason: str = Field(max_length=2000)


class HandOffIn(StrictModel):
    department: str | None = Field(None, max_length=64)
    note: str | None = Field(None, max_length=2000)


Body = TypeVar("Body", CategoryIn, DepartmentIn)


def _as_in_path(code: str, body: Body) -> Body:
    """A catalogue entry put at ``…/{code}``: the body names the same code (no renaming)."""
    if body.code != code:
        raise InvalidInput("must equal the code in the path", field="code")
    return body


def _with_history(
    request: Request,
    session: SessionDep,
    principal: Principal,
    row: dict[str, Any],
    history: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The case as answered: its history (read, unless given), and the reporter only for
    handlers (audited)."""
    out = {k: v for k, v in row.items() if not k.endswith("_id") and not k.startswith("reporter")}
    out["history"] = q.history(session, row["id"]) if history is None else history
    if may(principal.role, Action.handle_cases) and (
        row["reporter_name"] or row["reporter_contact"]
    ):
        out["reporter"] = {"name": row["reporter_name"], "contact": row["reporter_contact"]}
        audit_read(
            session,
            request,
            principal,
            subject_type="case_reporter",
            subject_ids=[row["id"]],
            reason=said("case_page"),
        )
    return out


@router.get("/categories", response_model=answers.Categories, summary="The category catalogue")
def list_categories(session: SessionDep, principal: Viewing) -> dict[str, Any]:
    return {"categories": q.categories(session)}


@router.put(
    "/categories/{code}", **_answers(answers.Category), summary="Add or change a category (admins)"
)
def put_category(
    session: SessionDep, principal: Managing, code: str, body: CategoryIn
) -> dict[str, Any]:
    return q.save_category(session, _as_in_path(code, body).model_dump())


@router.get("/departments", response_model=answers.Departments, summary="Departments (职能部门)")
def list_departments(session: SessionDep, principal: Viewing) -> dict[str, Any]:
    return {"departments": q.departments(session)}


@router.put(
    "/departments/{code}",
    **_answers(answers.Department),
    summary="Add or change a department (admins)",
)
def put_department(
    session: SessionDep, principal: Managing, code: str, body: DepartmentIn
) -> dict[str, Any]:
    d = _as_in_path(code, body)
    return q.save_department(session, d.code, d.name, d.name_en, d.account)


# A report's path is kept short, because residents' and workers' phones wait on it: one
# worker-thread hop for all of it (a ``SessionDep`` and a plain route take four: the session,
# the route, the answer's check, the commit) and, with no reporter named, one round trip:
# ``REPORT_SQL`` is one statement, stored and read back whole, so it runs as its own
# transaction (autocommit: no BEGIN, no COMMIT of its own; its commit is still synchronous,
# on disk before the answer). A named reporter is shown to handlers and that read audited,
# so then the audit row shares the report's transaction.
@router.post(
    "",
    status_code=201,
    **_CASE,
    summary="Report an incident: stored as a case and routed",
)
async def report(request: Request, principal: Reporting, body: ReportIn) -> dict[str, Any]:
    engine = app_state(request).engine
    one_statement = body.reporter_name is None and body.reporter_contact is None

    def work() -> dict[str, Any]:
        with Session(engine, expire_on_commit=False) as session:
            if one_statement:
                session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            # Stored and read back in one statement: the reporter may report only inside
            # their area, so the case is one they see (departments do not report).
            row = service.report_case(
                session, actor=principal.name, now=now(), scope=principal.scope, **body.model_dump()
            )
            history = row.pop("history")
            answer = _with_history(request, session, principal, row, history)
            session.commit()
            return answer

    return await anyio.to_thread.run_sync(work)


@router.get("", response_model=answers.Cases, summary="Cases of my area, the most urgent first")
def list_cases(
    session: SessionDep,
    principal: Viewing,
    category: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[list[str] | None, Query(description=", ".join(STATUSES))] = None,
    grid: Annotated[str | None, Query(max_length=64)] = None,
    community: Annotated[str | None, Query(max_length=64)] = None,
    street: Annotated[str | None, Query(max_length=64)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    overdue: bool = False,
    due_within_hours: Annotated[float | None, Query(gt=0, le=24 * 365)] = None,
    mine: bool = False,
    limit: LimitDep = 200,
    offset: OffsetDep = 0,
) -> dict[str, Any]:
    for s in status or []:
        if s not in STATUSES:
            raise InvalidInput(f"unknown status '{s}'", field="status")
    viewer = _viewer(session, principal)
    t = now()
    rows = q.list_cases(
        session,
        viewer,
        category=category,
        status=status,
        grid=grid,
        community=community,
        street=street,
        since=since,
        until=until,
        overdue_at=t if overdue else None,
        due_before=None if due_within_hours is None else t + timedelta(hours=due_within_hours),
        assignee_id=principal.user_id if mine else None,
        limit=limit,
        offset=offset,
    )
    return {"cases": rows}


@router.get(
    "/notices",
    response_model=answers.Notices,
    summary="Unread notices of cases routed or escalated to me",
)
def my_notices(session: SessionDep, principal: Viewing) -> dict[str, Any]:
    viewer = _viewer(session, principal)
    levels = _levels(session, principal)
    return {"notices": q.notices(session, viewer, levels)}


def _levels(session: SessionDep, principal: Principal) -> set[str]:
    return q.notice_levels(session, principal.user_id, whole_district=principal.scope.unrestricted)


@router.post(
    "/notices/{notice_id}/read", response_model=answers.NoticeRead, summary="Mark a notice read"
)
def read_notice(session: SessionDep, principal: Viewing, notice_id: int) -> dict[str, Any]:
    q.mark_read(session, notice_id, _viewer(session, principal), _levels(session, principal), now())
    return {"read": notice_id}


@router.get(
    "/figures",
    response_model=answers.Figures,
    summary="Figures of a grid, community, street or department",
)
def figures(
    session: SessionDep,
    principal: Viewing,
    level: Annotated[str, Query(pattern="^(grid|community|street|department)$")],
    code: Annotated[str, Query(max_length=64)],
    since: datetime,
    until: datetime,
) -> dict[str, Any]:
    return q.figures(session, _viewer(session, principal), level, code, since, until)


@router.get("/{case_id}", **_CASE, summary="One case with its history")
def get_case(
    request: Request, session: SessionDep, principal: Viewing, case_id: int
) -> dict[str, Any]:
    row = q.case(session, case_id, _viewer(session, principal))
    return _with_history(request, session, principal, row)


@router.post("/{case_id}/escalate", **_CASE, summary="Send the case one level up, saying why")
def escalate(
    request: Request, session: SessionDep, principal: Handling, case_id: int, body: ReasonIn
) -> dict[str, Any]:
    hook = app_state(request).settings.case_webhook_url
    row = service.escalate(
        session, _viewer(session, principal), case_id, body.reason, now(), webhook_url=hook
    )
    return _with_history(request, session, principal, row)


@router.post("/{case_id}/handoff", **_CASE, summary="Hand an open case to a department")
def hand_off(
    request: Request, session: SessionDep, principal: Handling, case_id: int, body: HandOffIn
) -> dict[str, Any]:
    row = service.hand_to_department(
        session,
        _viewer(session, principal),
        case_id,
        body.department,
        body.note,
        now(),
        webhook_url=app_state(request).settings.case_webhook_url,
    )
    return _with_history(request, session, principal, row)


@router.post(
    "/{case_id}/return",
    **_CASE,
    summary="The department gives the case back, saying what it did",
)
def give_back(
    request: Request, session: SessionDep, principal: Handling, case_id: int, body: NoteIn
) -> dict[str, Any]:
    row = service.return_from_department(
        session, _viewer(session, principal), case_id, body.note, now()
    )
    return _with_history(request, session, principal, row)


@router.post("/{case_id}/{action}", **_CASE, summary="accept, start, resolve, close or reopen")
def act(
    request: Request,
    session: SessionDep,
    principal: Handling,
    case_id: int,
    action: Move,
    body: NoteIn | None = None,
) -> dict[str, Any]:
    note = body.note if body else None
    row = service.act(session, _viewer(session, principal), case_id, action.value, note, now())
    return _with_history(request, session, principal, row)
