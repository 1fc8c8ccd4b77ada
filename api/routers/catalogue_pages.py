"""The incident catalogue in the browser (administrators): the categories residents and
workers report under, with the hours each level has before a case climbs to the next, and
the departments (职能部门) cases are handed to.

They could be changed only by ``PUT /cases/categories/{code}`` and
``PUT /cases/departments/{code}``: a district that wanted street lights handled within two
days instead of three had to ask for curl. The forms are checked by the API's own models
(``CategoryIn``, ``DepartmentIn``) and saved by the same use cases; a refusal is said beside
its field in the page's language (``said_check``). Every change is audited.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError

from api.deps import SessionDep
from api.pages.case_words import LEVEL_NAMES
from api.pages.forms import NOT_SENT, SentBack, Shown, refused
from api.pages.frame import PageContext, context, render
from api.pages.said import said_check
from api.pages.told import heard, signed
from api.schemas.cases import CategoryIn, DepartmentIn
from api.security import Principal, audit_subjects, require
from data.access.queries import list_users
from data.access.reasons import said
from data.incidents import queries as q
from data.models import Role
from data.policy import Action
from geo.errors import Conflict, GridworkError, InvalidInput, NotFound
from geo.incidents.rules import LEVELS

router = APIRouter(prefix="/app", include_in_schema=False)

Admin = Annotated[Principal, Depends(require(Action.manage_categories))]

HOURS = tuple(f"hours_{level}" for level in LEVELS)
CATEGORY_FIELDS = ("code", "name", "name_en", "first_level", "department", *HOURS, "active")
DEPARTMENT_FIELDS = ("code", "name", "name_en", "account")


def _checked(ctx: PageContext, model: type[Any], values: dict[str, Any]) -> Any:
    """``values`` as the API's model takes them; the first refusal as a field's error, in
    the page's language."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else None
        reason = said_check(ctx, dict(first))
        if field == "code" and first["type"] == "string_pattern_mismatch":
            reason = ctx._("Letters, digits, '_' and '-' only (a category's: lower-case).")
        raise InvalidInput(reason, field=field) from None


def _stored(session: SessionDep, code: str) -> dict[str, Any] | None:
    """The category of ``code``, in use or retired, or None (``q.category`` by its rule)."""
    try:
        return q.category(session, code, field="code", retired_too=True)
    except InvalidInput:
        return None


def _category_view(ctx: PageContext, c: dict[str, Any]) -> dict[str, Any]:
    zh = ctx.locale.startswith("zh")
    return {
        **c,
        "label": c["name"] if zh else c["name_en"],
        # The department by its name in the page's language (消防, Fire safety), not its code.
        "department_label": (c["department_name"] if zh else c["department_name_en"])
        or c["department"],
        "level_label": ctx._(LEVEL_NAMES[c["first_level"]]),
        "href": f"/app/categories/{quote(c['code'], safe='')}",
    }


@router.get("/categories", response_class=HTMLResponse)
def categories_page(request: Request, session: SessionDep, principal: Admin) -> HTMLResponse:
    """Every category, retired ones too, with the hours of each level."""
    ctx = context(request, principal)
    rows = [_category_view(ctx, c) for c in q.categories(session, active_only=False)]
    return render(
        request,
        principal,
        "incidents/categories.html",
        title=ctx._("Incident categories"),
        values={
            "categories": rows,
            "levels": [(level, ctx._(LEVEL_NAMES[level])) for level in LEVELS],
            "done": heard(request, request.query_params.get("done", "")),
        },
    )


def _category_form(
    request: Request, session: SessionDep, principal: Principal, code: str | None, sent: SentBack
) -> HTMLResponse:
    ctx = context(request, principal)
    current = None
    if code is not None:
        found = _stored(session, code)
        if found is None:
            raise NotFound.said("no_category", field="code", code=code)
        current = _category_view(ctx, found)
    form = dict(sent.form) if sent.form else (current or {"first_level": "grid", "active": True})
    return render(
        request,
        principal,
        "incidents/category.html",
        title=current["label"] if current else ctx._("New category"),
        status_code=sent.status_code,
        values={
            "category": current,
            "levels": [(level, ctx._(LEVEL_NAMES[level])) for level in LEVELS],
            "departments": q.departments(session),
            **sent.values(),
            "form": form,
        },
    )


@router.get("/categories/new", response_class=HTMLResponse)
def new_category(
    request: Request, session: SessionDep, principal: Admin, sent: Shown = NOT_SENT
) -> HTMLResponse:
    return _category_form(request, session, principal, None, sent)


@router.get("/categories/{code}", response_class=HTMLResponse)
def category_form(
    request: Request, session: SessionDep, principal: Admin, code: str, sent: Shown = NOT_SENT
) -> HTMLResponse:
    return _category_form(request, session, principal, code, sent)


@router.post("/categories", response_class=HTMLResponse, response_model=None)
def category_submit(
    request: Request,
    session: SessionDep,
    principal: Admin,
    code: Annotated[str, Form(max_length=200)] = "",
    existing: Annotated[str, Form(max_length=64)] = "",
    name: Annotated[str, Form(max_length=400)] = "",
    name_en: Annotated[str, Form(max_length=400)] = "",
    first_level: Annotated[str, Form(max_length=20)] = "grid",
    department: Annotated[str, Form(max_length=64)] = "",
    hours_grid: Annotated[str, Form(max_length=10)] = "",
    hours_community: Annotated[str, Form(max_length=10)] = "",
    hours_street: Annotated[str, Form(max_length=10)] = "",
    hours_district: Annotated[str, Form(max_length=10)] = "",
    active: Annotated[str, Form(max_length=3)] = "",
) -> HTMLResponse | RedirectResponse:
    """Add a category, or change the one named ``existing`` (its code stays)."""
    ctx = context(request, principal)
    form = {
        "code": existing or code.strip(), "name": name.strip(), "name_en": name_en.strip(),
        "first_level": first_level, "department": department or None,
        "hours_grid": hours_grid, "hours_community": hours_community,
        "hours_street": hours_street, "hours_district": hours_district,
        "active": active == "on",
    }  # fmt: skip
    try:
        checked = _checked(ctx, CategoryIn, form)
        if not existing and _stored(session, checked.code) is not None:
            # The new-category form would otherwise overwrite the category of that code.
            raise Conflict(
                ctx._("A category with this code exists: open it to change it."), field="code"
            )
        q.save_category(session, checked.model_dump())
    except GridworkError as exc:
        session.rollback()
        sent = refused(ctx, exc, form, CATEGORY_FIELDS)
        return _category_form(request, session, principal, existing or None, sent)
    what = said("category_saved", level=checked.first_level)
    for level in LEVELS:
        what = what.and_("level_hours", level=level, hours=getattr(checked, f"hours_{level}"))
    what = (
        what.and_("with_department", department=checked.department) if checked.department else what
    )
    what = what if checked.active else what.and_("category_retired")
    audit_subjects(session, request, principal, "category", [checked.code], what)
    return RedirectResponse(
        f"/app/categories?{urlencode({'done': signed(request, checked.code)})}", 303
    )


# --------------------------------------------------------------------------- departments


def _departments_page(
    request: Request, session: SessionDep, principal: Principal, sent: SentBack
) -> HTMLResponse:
    ctx = context(request, principal)
    accounts = [u["username"] for u in list_users(session) if u["role"] == Role.department]
    return render(
        request,
        principal,
        "incidents/departments.html",
        title=ctx._("Departments"),
        status_code=sent.status_code,
        values={
            "departments": q.departments(session),
            "accounts": accounts,
            "done": heard(request, request.query_params.get("done", "")),
            **sent.values(),
        },
    )


@router.get("/departments", response_class=HTMLResponse)
def departments_page(
    request: Request, session: SessionDep, principal: Admin, sent: Shown = NOT_SENT
) -> HTMLResponse:
    """The departments, each with its account; a form adds one or changes one by code."""
    return _departments_page(request, session, principal, sent)


@router.post("/departments", response_class=HTMLResponse, response_model=None)
def department_submit(
    request: Request,
    session: SessionDep,
    principal: Admin,
    code: Annotated[str, Form(max_length=200)] = "",
    name: Annotated[str, Form(max_length=400)] = "",
    name_en: Annotated[str, Form(max_length=400)] = "",
    account: Annotated[str, Form(max_length=64)] = "",
) -> HTMLResponse | RedirectResponse:
    ctx = context(request, principal)
    form = {
        "code": code.strip(), "name": name.strip(), "name_en": name_en.strip(),
        "account": account or None,
    }  # fmt: skip
    try:
        d = _checked(ctx, DepartmentIn, form)
        q.save_department(session, d.code, d.name, d.name_en, d.account)
    except GridworkError as exc:
        session.rollback()
        sent = refused(ctx, exc, form, DEPARTMENT_FIELDS)
        return _departments_page(request, session, principal, sent)
    what = said("department_saved")
    what = what.and_("with_account", account=d.account) if d.account else what.and_("no_account")
    audit_subjects(session, request, principal, "department", [d.code], what)
    return RedirectResponse(f"/app/departments?{urlencode({'done': signed(request, d.code)})}", 303)
