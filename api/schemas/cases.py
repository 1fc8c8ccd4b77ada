"""Incidents as cases: the catalogue, departments, a case with its history, notices, figures.

Times are the rows' own ``datetime`` values, written as they always were (:data:`Moment`).
A few keys are present only sometimes (a case's ``reporter``, a category's ``id``): the
routes leave out what a row does not hold (``response_model_exclude_unset``), as before.
"""

from __future__ import annotations

from pydantic import Field

from api.schemas import Answer, Moment, StrictModel

# --- the catalogue as sent: PUT /cases/categories/{code}, /cases/departments/{code}, and
# the administrators' catalogue pages, which check their forms by these same models.


class CategoryIn(StrictModel):
    code: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_\-]+$")
    name: str = Field(min_length=1, max_length=200, description="中文名称")
    name_en: str = Field(min_length=1, max_length=200)
    first_level: str = Field("grid", pattern="^(grid|community|street|district)$")
    department: str | None = Field(None, max_length=64)
    hours_grid: int = Field(ge=1, le=24 * 365)
    hours_community: int = Field(ge=1, le=24 * 365)
    hours_street: int = Field(ge=1, le=24 * 365)
    hours_district: int = Field(ge=1, le=24 * 365)
    active: bool = True


class DepartmentIn(StrictModel):
    code: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")
    name: str = Field(min_length=1, max_length=200)
    name_en: str = Field(min_length=1, max_length=200)
    account: str | None = Field(None, max_length=64, description="a `department` account")


class Category(Answer):
    id: int | None = Field(None, description="absent when an inactive category was saved")
    code: str
    name: str = Field(description="中文名称")
    name_en: str
    first_level: str = Field(description="grid, community, street or district")
    department: str | None
    hours_grid: int
    hours_community: int
    hours_street: int
    hours_district: int
    active: bool


class Categories(Answer):
    categories: list[Category]


class Department(Answer):
    id: int | None = Field(None, description="in the list only")
    code: str
    name: str
    name_en: str
    account: str | None = Field(description="the `department` account, if any")


class Departments(Answer):
    departments: list[Department]


class CaseEvent(Answer):
    at: Moment
    actor: str
    kind: str
    from_status: str | None
    to_status: str | None
    from_level: str | None
    to_level: str | None
    note: str | None


class Reporter(Answer):
    name: str | None
    contact: str | None


class CaseRow(Answer):
    id: int
    category: str
    category_name: str
    category_name_en: str
    status: str
    level: str
    top_level: str
    grid: str | None
    community: str | None
    street: str | None
    assignee: str | None
    department: str | None
    description: str
    source: str | None
    opened_at: Moment
    due_at: Moment | None
    resolved_at: Moment | None
    resolved_in_time: bool | None
    closed_at: Moment | None
    escalations: int
    lon: float
    lat: float


class Case(CaseRow):
    """One case: its history, and the reporter for those who may handle cases (audited)."""

    history: list[CaseEvent] = Field(description="oldest first")
    reporter: Reporter | None = Field(None, description="present only for handlers")


class Cases(Answer):
    cases: list[CaseRow] = Field(description="the most urgent first")


class Notice(Answer):
    id: int
    case_id: int
    at: Moment
    level: str
    kind: str
    category: str
    category_name: str
    category_name_en: str
    status: str


class Notices(Answer):
    notices: list[Notice] = Field(description="newest first")


class NoticeRead(Answer):
    read: int


class Figures(Answer):
    """Opened and closed in [since, until); of the cases resolved then, the medians and shares."""

    level: str
    code: str
    since: Moment
    until: Moment
    opened: int
    closed: int
    resolved: int
    median_hours: float | None
    in_time: float | None
    at_grid: float | None
    escalated: float | None
