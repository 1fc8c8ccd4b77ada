"""Accounts in the browser: my own password; an administrator's accounts and audit log.

Until now accounts lived only at the command line (``gridwork user …``) and the JSON routes
of ``api/routers/admin.py``: the administrator of a street office could not give a new grid
worker an account, move a worker to another community or read who looked at an elder's
record without a terminal, and nobody could change a password at all.

The pages act through the same use cases (:mod:`data.access.accounts`,
:mod:`data.access.queries`). A password an administrator chooses is shown once, on the
answer to the form that made it (never stored; every answer is ``no-store``), and its holder
is sent to choose their own at sign-in. Every change is audited as ``user`` with what it was.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from api.deps import SessionDep
from api.pages.audit_words import say_reason
from api.pages.case_words import LEVEL_NAMES  # an area's level is named as a case's
from api.pages.forms import NOT_SENT, SUGGESTIONS, Shown, refused
from api.pages.frame import N_, ROLE_NAMES, PageContext, context, render
from api.security import (
    Principal,
    audit_subjects,
    hash_password,
    require,
    signed_in,
    verify_password,
)
from api.state import app_state
from data.access import accounts
from data.access import queries as access
from data.access.reasons import AuditReason, said
from data.district.workers import link_worker_account
from data.models import Role, ScopeLevel
from data.policy import Action
from geo.errors import Conflict, GridworkError, InvalidInput

router = APIRouter(prefix="/app", include_in_schema=False)

Admin = Annotated[Principal, Depends(require(Action.manage_accounts))]
Auditor = Annotated[Principal, Depends(require(Action.read_audit))]
Holder = Annotated[Principal, Depends(require(Action.change_own_password))]

PASSWORD_FIELDS = ("current_password", "new_password", "repeat_password")
NEW_FIELDS = ("username", "role", "area", "worker")
ACCOUNT_FIELDS = ("role", "area", "worker", "confirm", "username")

#: What the audit log's subjects are, in words (a kind not named here is shown as stored).
SUBJECT_KINDS = {
    "elder": N_("Elder"),
    "position": N_("Elder's positions"),
    "elder_consent": N_("Consent record"),
    "elder_device": N_("Watch"),
    "elder_zone": N_("Safe zone"),
    "household": N_("Household"),
    "case_reporter": N_("Case reporter's contact"),
    "plan": N_("Grid plan"),
    "user": N_("Account"),
    "api_key": N_("API key"),
    "backup": N_("Backup"),
    "category": N_("Incident category"),
    "department": N_("Department"),
}

#: Where a subject of the audit log has a page of its own.
SUBJECT_PAGES = {"elder": "/app/elders/{}", "user": "/app/accounts/{}", "plan": "/app/plans/{}"}


# --------------------------------------------------------------------------- my password


@router.get("/password", response_class=HTMLResponse)
def password_form(
    request: Request,
    principal: Holder,
    next: Annotated[str, Query(max_length=2000)] = "/",
    changed: Annotated[bool, Query()] = False,
    sent: Shown = NOT_SENT,
) -> HTMLResponse:
    """Change my password: the old one, the new one twice; after a change, says so and
    leads on to the page the holder was going to."""
    ctx = context(request, principal)
    return render(
        request,
        principal,
        "accounts/password.html",
        title=ctx._("Change my password"),
        status_code=sent.status_code,
        values={
            "next": next if next.startswith("/") and not next.startswith("//") else "/",
            "minimum": accounts.MIN_PASSWORD,
            "changed": changed and not sent.errors and not sent.error,
            **sent.values(),
        },
    )


@router.post("/password", response_class=HTMLResponse)
def password_submit(
    request: Request,
    session: SessionDep,
    principal: Holder,
    current_password: Annotated[str, Form(max_length=256)] = "",
    new_password: Annotated[str, Form(max_length=256)] = "",
    repeat_password: Annotated[str, Form(max_length=256)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Any:
    """A new password ends every other sign-in of the account; this browser is signed in
    again with a fresh cookie, so the holder stays where they are."""
    ctx = context(request, principal)
    user = access.find_user(session, principal.name)
    try:
        if user is None or principal.via == "api_key":
            raise InvalidInput(ctx._("Only a person signed in with a password can change it."))
        if not verify_password(current_password, user.password_hash):
            raise InvalidInput(
                ctx._("This is not your current password."), field="current_password"
            )
        accounts.check_new_password(new_password, username=user.username, repeated=repeat_password)
        if new_password == current_password:
            raise InvalidInput(
                ctx._("Choose a password other than the current one."), field="new_password"
            )
    except GridworkError as exc:
        sent = refused(ctx, exc, {}, PASSWORD_FIELDS, status_code=422)
        return password_form(request, principal, next, False, sent)
    hashed = hash_password(new_password)
    accounts.set_password(session, user.username, hashed, temporary=False, at=datetime.now(UTC))
    audit_subjects(session, request, principal, "user", [user.username], said("own_password"))
    # This browser signs in again with the new password's stamp (no need to read it back).
    renewed = replace(user, password_hash=hashed, must_change_password=False)
    target = next if next.startswith("/") and not next.startswith("//") else "/"
    back = "/app/password?" + urlencode({"changed": "1", "next": target})
    return signed_in(RedirectResponse(back, status_code=303), app_state(request).settings, renewed)


# --------------------------------------------------------------------------- accounts


def _area_view(ctx: PageContext, area: accounts.Area) -> dict[str, Any]:
    return {
        "level": area.level.value,
        "level_label": ctx._(LEVEL_NAMES[area.level]),
        "code": area.code,
        "name": area.name or "",
        "current": area.current,
    }


def _account_view(ctx: PageContext, a: accounts.Account) -> dict[str, Any]:
    return {
        "username": a.username,
        "role": a.role.value,
        "role_label": ctx._(ROLE_NAMES[a.role]),
        "active": a.active,
        "created": ctx.localtime(a.created_at, format="short"),
        "password_changed": ctx.localtime(a.password_changed_at, format="short")
        if a.password_changed_at
        else None,
        "must_change": a.must_change_password,
        "areas": [_area_view(ctx, area) for area in a.areas],
        "worker_code": a.worker_code,
        "worker_name": a.worker_name,
        "worker_grids": list(a.worker_grids),
        "live_keys": a.keys,  # not "keys": a template would read the dict's method
        "everywhere": a.role is Role.admin,
    }


def _choices(ctx: PageContext, session: SessionDep) -> dict[str, Any]:
    return {
        "roles": [(r.value, ctx._(ROLE_NAMES[r])) for r in accounts.ACCOUNT_ROLES],
        "area_choices": [_area_view(ctx, a) for a in accounts.area_choices(session)],
        "workers": accounts.worker_choices(session, limit=SUGGESTIONS),
    }


@router.get("/accounts", response_class=HTMLResponse)
def accounts_page(
    request: Request, session: SessionDep, principal: Admin, sent: Shown = NOT_SENT
) -> HTMLResponse:
    """Every account, and a form for a new one."""
    ctx = context(request, principal)
    listed = [_account_view(ctx, a) for a in accounts.list_accounts(session)]
    return render(
        request,
        principal,
        "accounts/list.html",
        title=ctx._("Accounts"),
        status_code=sent.status_code,
        values={"accounts": listed, **_choices(ctx, session), **sent.values()},
    )


def _given(
    request: Request, principal: Principal, username: str, password: str, *, new: bool
) -> HTMLResponse:
    """The one page that shows a temporary password (never cached: every answer says
    ``no-store``, ``api.hardening.SecurityHeaders``)."""
    ctx = context(request, principal)
    return render(
        request,
        principal,
        "accounts/given.html",
        title=ctx._("Account created") if new else ctx._("Password reset"),
        values={"username": username, "password": password, "new": new},
    )


@router.post("/accounts", response_class=HTMLResponse)
def account_create(
    request: Request,
    session: SessionDep,
    principal: Admin,
    username: Annotated[str, Form(max_length=200)] = "",
    role: Annotated[str, Form(max_length=32)] = "",
    area: Annotated[str, Form(max_length=200)] = "",
    worker: Annotated[str, Form(max_length=200)] = "",
) -> HTMLResponse:
    ctx = context(request, principal)
    form = {"username": username, "role": role, "area": area, "worker": worker}
    password = accounts.temporary_password()
    try:
        name = accounts.check_username(username.strip())
        if role not in {r.value for r in accounts.ACCOUNT_ROLES}:
            raise InvalidInput(ctx._("Choose what this person does."), field="role")
        chosen = Role(role)
        found = accounts.find_area(session, area) if area.strip() else None
        # An administrator sees everywhere; a department without an area serves everywhere.
        if found is None and chosen not in (Role.admin, Role.department):
            raise InvalidInput(
                ctx._("Give an area: a street, community or grid code."), field="area"
            )
        hashed = hash_password(password)
        access.create_user(session, name, hashed, chosen)
        accounts.set_password(session, name, hashed, temporary=True, at=datetime.now(UTC))
        if found is not None:
            access.add_scope(session, name, *found)
        if worker.strip():
            link_worker_account(session, worker.strip(), name, replace=False)
    except GridworkError as exc:
        session.rollback()
        sent = refused(ctx, exc, form, NEW_FIELDS)
        return accounts_page(request, session, principal, sent)
    reason = said("account_created", role=role)
    reason = reason.and_("with_area", level=found[0].value, code=found[1]) if found else reason
    reason = reason.and_("with_worker", worker=worker.strip()) if worker.strip() else reason
    audit_subjects(session, request, principal, "user", [name], reason)
    return _given(request, principal, name, password, new=True)


@router.get("/accounts/{username}", response_class=HTMLResponse)
def account_page(
    request: Request,
    session: SessionDep,
    principal: Admin,
    username: str,
    sent: Shown = NOT_SENT,
) -> HTMLResponse:
    """One account: role, areas, worker record, password, active, removal."""
    ctx = context(request, principal)
    account = _account_view(ctx, accounts.get_account(session, username))
    return render(
        request,
        principal,
        "accounts/account.html",
        title=ctx._("Account %(name)s", name=username),
        status_code=sent.status_code,
        values={
            "account": account,
            "myself": principal.name == username,
            "done": request.query_params.get("done", ""),
            **_choices(ctx, session),
            **sent.values(),
        },
    )


def _changed(
    request: Request,
    session: SessionDep,
    principal: Principal,
    username: str,
    what: AuditReason,
) -> RedirectResponse:
    audit_subjects(session, request, principal, "user", [username], what)
    return RedirectResponse(f"/app/accounts/{quote(username, safe='')}?done=saved", 303)


def _refuse(
    request: Request,
    session: SessionDep,
    principal: Principal,
    username: str,
    exc: GridworkError,
    form: dict[str, Any],
) -> HTMLResponse:
    session.rollback()
    ctx = context(request, principal)
    sent = refused(ctx, exc, form, ACCOUNT_FIELDS)
    return account_page(request, session, principal, username, sent)


@router.post("/accounts/{username}/role", response_model=None)
def account_role(
    request: Request,
    session: SessionDep,
    principal: Admin,
    username: str,
    role: Annotated[str, Form(max_length=32)] = "",
) -> HTMLResponse | RedirectResponse:
    ctx = context(request, principal)
    try:
        accounts.get_account(session, username)
        if role not in {r.value for r in accounts.ACCOUNT_ROLES}:
            raise InvalidInput(ctx._("Choose what this person does."), field="role")
        access.set_role(session, username, Role(role))
    except GridworkError as exc:
        return _refuse(request, session, principal, username, exc, {"role": role})
    return _changed(request, session, principal, username, said("role_set", role=role))


@router.post("/accounts/{username}/areas", response_model=None)
def account_area_add(
    request: Request,
    session: SessionDep,
    principal: Admin,
    username: str,
    area: Annotated[str, Form(max_length=200)] = "",
) -> HTMLResponse | RedirectResponse:
    try:
        accounts.get_account(session, username)
        level, code = accounts.find_area(session, area)
        access.add_scope(session, username, level, code)
    except GridworkError as exc:
        return _refuse(request, session, principal, username, exc, {"area": area})
    return _changed(
        request, session, principal, username, said("area_added", level=level.value, code=code)
    )


@router.post("/accounts/{username}/areas/remove", response_model=None)
def account_area_remove(
    request: Request,
    session: SessionDep,
    principal: Admin,
    username: str,
    level: Annotated[ScopeLevel, Form()],
    code: Annotated[str, Form(max_length=64)],
) -> HTMLResponse | RedirectResponse:
    try:
        accounts.remove_scope(session, username, level, code)
    except GridworkError as exc:
        return _refuse(request, session, principal, username, exc, {})
    return _changed(
        request, session, principal, username, said("area_removed", level=level.value, code=code)
    )


@router.post("/accounts/{username}/worker", response_model=None)
def account_worker(
    request: Request,
    session: SessionDep,
    principal: Admin,
    username: str,
    worker: Annotated[str, Form(max_length=200)] = "",
) -> HTMLResponse | RedirectResponse:
    """Link the account to a worker record (it then reads that worker's households), or
    unlink it (an empty code)."""
    try:
        current = accounts.get_account(session, username)
        if worker.strip():
            link_worker_account(session, worker.strip(), username, replace=False)
        elif current.worker_code is not None:
            link_worker_account(session, current.worker_code, None)
    except GridworkError as exc:
        return _refuse(request, session, principal, username, exc, {"worker": worker})
    what = (
        said("worker_linked", worker=worker.strip()) if worker.strip() else said("worker_unlinked")
    )
    return _changed(request, session, principal, username, what)


@router.post("/accounts/{username}/password", response_model=None)
def account_password(
    request: Request, session: SessionDep, principal: Admin, username: str
) -> HTMLResponse:
    """A new temporary password, shown once; the account's sessions end."""
    ctx = context(request, principal)
    try:
        accounts.get_account(session, username)
        if principal.name == username:
            raise Conflict(ctx._("Change your own password on the page 'Change my password'."))
        password = accounts.temporary_password()
        accounts.set_password(
            session, username, hash_password(password), temporary=True, at=datetime.now(UTC)
        )
    except GridworkError as exc:
        return _refuse(request, session, principal, username, exc, {})
    audit_subjects(session, request, principal, "user", [username], said("password_reset"))
    return _given(request, principal, username, password, new=False)


@router.post("/accounts/{username}/active", response_model=None)
def account_active(
    request: Request,
    session: SessionDep,
    principal: Admin,
    username: str,
    active: Annotated[bool, Form()],
) -> HTMLResponse | RedirectResponse:
    ctx = context(request, principal)
    try:
        if principal.name == username:
            raise Conflict(ctx._("You cannot disable your own account."), field="username")
        access.set_user_active(session, username, active)
    except GridworkError as exc:
        return _refuse(request, session, principal, username, exc, {})
    return _changed(
        request,
        session,
        principal,
        username,
        said("account_enabled" if active else "account_disabled"),
    )


@router.post("/accounts/{username}/remove", response_model=None)
def account_remove(
    request: Request,
    session: SessionDep,
    principal: Admin,
    username: str,
    confirm: Annotated[str, Form(max_length=64)] = "",
) -> HTMLResponse | RedirectResponse:
    """Remove an account for good (its areas and keys with it); the audit log keeps its
    name. The administrator types the name to confirm."""
    ctx = context(request, principal)
    try:
        if principal.name == username:
            raise Conflict(ctx._("You cannot remove your own account."), field="username")
        if confirm.strip() != username:
            raise InvalidInput(ctx._("Type the account's name to confirm."), field="confirm")
        keys = access.remove_user(session, username)
    except GridworkError as exc:
        return _refuse(request, session, principal, username, exc, {"confirm": confirm})
    audit_subjects(
        session, request, principal, "user", [username], said("account_removed", keys=keys)
    )
    return RedirectResponse("/app/accounts?" + urlencode({"removed": username}), 303)


# --------------------------------------------------------------------------- audit log

AUDIT_PAGE = 50
ROLE_VALUES = frozenset(r.value for r in Role)


def _role_name(ctx: PageContext, role: str) -> str:
    """A role in words ("system": automatic, e.g. a plan switching at its date, beside the
    actor gridwork: "gridwork itself" read the name twice); what the log holds as it is
    otherwise."""
    if role == "system":
        return ctx._("automatic")
    return ctx._(ROLE_NAMES[Role(role)]) if role in ROLE_VALUES else role


def _day_start(ctx: PageContext, day: str, field: str) -> datetime | None:
    """Local midnight of ``day`` (yyyy-mm-dd) in the deployment's zone."""
    if not day:
        return None
    try:
        parsed = datetime.strptime(day, "%Y-%m-%d").date()
    except ValueError as exc:
        raise InvalidInput(ctx._("A date as yyyy-mm-dd."), field=field) from exc
    return datetime.combine(parsed, time(0), tzinfo=ZoneInfo(ctx.timezone))


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    session: SessionDep,
    principal: Auditor,
    actor: Annotated[str, Query(max_length=128)] = "",
    kind: Annotated[str, Query(max_length=32)] = "",
    subject: Annotated[str, Query(max_length=64)] = "",
    since: Annotated[str, Query(max_length=10)] = "",
    until: Annotated[str, Query(max_length=10)] = "",
    before: Annotated[int | None, Query(ge=1)] = None,
) -> HTMLResponse:
    """Who read or changed what, newest first: by a person, about one elder (or any other
    subject), over some days."""
    ctx = context(request, principal)
    form = {"actor": actor, "kind": kind, "subject": subject, "since": since, "until": until}
    errors: dict[str, str] = {}
    entries: list[dict[str, Any]] = []
    try:
        start = _day_start(ctx, since, "since")
        end = _day_start(ctx, until, "until")
        rows = access.read_audit(
            session,
            since=start,
            until=None if end is None else end + timedelta(days=1),
            actor=actor.strip() or None,
            subject_type=kind or None,
            subject_id=subject.strip() or None,
            before_id=before,
            limit=AUDIT_PAGE + 1,
            offset=0,
        )
    except InvalidInput as exc:
        errors = {exc.field or "since": exc.reason}
        rows = []
    more = len(rows) > AUDIT_PAGE
    for r in rows[:AUDIT_PAGE]:
        page = SUBJECT_PAGES.get(r["subject_type"])
        ids = list(r["subject_ids"])
        entries.append(
            {
                "id": r["id"],
                "when": ctx.localtime(datetime.fromisoformat(r["at"])),
                "actor": r["actor"],
                "role": _role_name(ctx, r["role"]),
                "method": r["method"],
                "route": r["route"],
                "kind": ctx._(SUBJECT_KINDS[r["subject_type"]])
                if r["subject_type"] in SUBJECT_KINDS
                else r["subject_type"],
                "subjects": [{"id": i, "href": page.format(i) if page else None} for i in ids[:10]],
                "more_subjects": max(0, len(ids) - 10),
                "reason": say_reason(ctx, r["reason"], r["reason_said"]),
            }
        )
    query = {k: v for k, v in form.items() if v}
    older = None
    if more and entries:
        older = {**query, "before": entries[-1]["id"]}
    return render(
        request,
        principal,
        "accounts/audit.html",
        title=ctx._("Audit log"),
        status_code=422 if errors else 200,
        values={
            "entries": entries,
            "form": form,
            "errors": errors,
            "error": None,
            "kinds": [(k, ctx._(v)) for k, v in SUBJECT_KINDS.items()],
            "older": older,
            "paged": before is not None,
            "first": query,
        },
    )
