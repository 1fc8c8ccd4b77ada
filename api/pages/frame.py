"""The frame every page lives in: one layout, navigation for the caller's role, language,
local time, and HTML error pages for browsers.

Pages are server-rendered Jinja2 templates (``api/pages/templates``) with gettext through
Babel (:mod:`api.pages.i18n`). The navigation shows only what the caller's role may do, as
decided by :mod:`data.policy` — a link is never offered that would answer 403. Workspaces add
their entry to :data:`NAV`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

from babel.dates import format_datetime, get_timezone_name
from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from api.pages.i18n import COOKIE, LOCALES, SELF_NAMES, html_lang, negotiate, translations
from api.principals import Principal
from api.state import app_state
from data.models import Role
from data.policy import Action, may
from data.settings import date_in

TEMPLATES = Path(__file__).resolve().parent / "templates"


def N_(message: str) -> str:  # noqa: N802 - the gettext convention for "mark, translate later"
    """Mark a string for the catalog without translating it here (it is translated on use)."""
    return message


@dataclass(frozen=True)
class NavItem:
    """One entry of the navigation: shown to the roles that may perform ``action``."""

    href: str
    label: str  # a catalog message id
    action: Action
    roles: frozenset[Role] | None = None  # narrower than the action's roles, if set
    #: Other pages this entry stands for (the maps' own bar), marked current on them too.
    also: tuple[str, ...] = ()

    def current(self, path: str) -> bool:
        """This entry's page, or one it stands for, or a form's address below one of those
        (``/maps/workload/worker`` answers a refused form with the workload page)."""
        return path == self.href or any(within(path, page) for page in self.also)

    def offered_to(self, role: Role) -> bool:
        return may(role, self.action) and (self.roles is None or role in self.roles)


def within(path: str, page: str) -> bool:
    """``path`` is ``page`` or an address below it."""
    return path == page or path.startswith(page + "/")


_DEPT = frozenset({Role.department})  # a 职能部门 works its queue, not "my cases"
_NOT_DEPT = frozenset(Role) - _DEPT

#: The maps, one entry ("Maps") in the navigation and a bar of their own on each map page:
#: six map entries made the main bar too long to see whole (an administrator's had 17).
MAP_NAV: list[NavItem] = [
    NavItem("/maps/hierarchy", N_("District map"), Action.view_district),
    NavItem("/maps/grids", N_("Grids and households"), Action.view_district),
    NavItem("/maps/workload", N_("Workload"), Action.view_district),
    NavItem("/maps/incidents", N_("Incidents map"), Action.view_district),
    NavItem("/maps/coverage", N_("Coverage"), Action.view_district),
    NavItem("/viewer", N_("Vector-tile viewer"), Action.view_district, frozenset({Role.admin})),
]

MAP_PATHS = tuple(item.href for item in MAP_NAV)

#: The navigation, in order. A workspace adds its entry here.
NAV: list[NavItem] = [
    NavItem("/", N_("Home"), Action.view_district),
    NavItem("/maps/hierarchy", N_("Maps"), Action.view_district, also=MAP_PATHS),
    NavItem("/app/facilities", N_("Facility register"), Action.view_district),
    NavItem("/app/households", N_("Household register"), Action.read_households),
    NavItem("/app/elders", N_("Elders"), Action.locate_elders),
    NavItem("/app/alerts", N_("Alerts"), Action.handle_alerts),
    NavItem("/app/incidents", N_("Cases"), Action.view_cases),
    NavItem("/app/incidents/mine", N_("My cases"), Action.handle_cases, _NOT_DEPT),
    NavItem("/app/incidents/queue", N_("Department queue"), Action.handle_cases, _DEPT),
    NavItem("/app/plans", N_("Grid plans"), Action.plan_grids),
    NavItem("/app/categories", N_("Incident categories"), Action.manage_categories),
    NavItem("/app/accounts", N_("Accounts"), Action.manage_accounts),
    NavItem("/app/audit", N_("Audit log"), Action.read_audit),
]

ROLE_NAMES = {
    Role.admin: N_("Administrator"),
    Role.planner: N_("Planner"),
    Role.coordinator: N_("Coordinator"),
    Role.grid_worker: N_("Grid worker"),
    Role.care_staff: N_("Care staff"),
    Role.device: N_("Device"),
    Role.department: N_("Department"),
}


@functools.cache
def environment(locale: str) -> Environment:
    """One Jinja2 environment per language, its gettext installed (thread-safe to share)."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(locale), newstyle=True)  # type: ignore[attr-defined]
    return env


def gettext(locale: str, message: str, **values: Any) -> str:
    """``message`` in ``locale``, with ``%(name)s`` values filled in."""
    text = translations(locale).gettext(message)
    return text % values if values else text


def ngettext(locale: str, singular: str, plural: str, n: int, **values: Any) -> str:
    """The form of ``singular``/``plural`` for ``n`` in ``locale`` ("1 case", "2 cases";
    one form in Chinese), with ``%(num)s`` (as Jinja's ``ngettext``) and the other values."""
    text = translations(locale).ngettext(singular, plural, n)
    return text % ({"num": n} | values)


@dataclass(frozen=True)
class PageContext:
    """What every page knows about its request: language, zone, the caller."""

    locale: str
    timezone: str
    principal: Principal | None
    path: str

    def _(self, message: str, **values: Any) -> str:
        return gettext(self.locale, message, **values)

    def ngettext(self, singular: str, plural: str, n: int, **values: Any) -> str:
        return ngettext(self.locale, singular, plural, n, **values)

    def today(self) -> date:
        """The date in the deployment's zone (a date field's default and limit)."""
        return date_in(self.timezone)

    def localtime(self, value: datetime | None, *, format: str = "medium") -> str:
        """A time in the deployment's zone, in the page's language (naive times are UTC)."""
        if value is None:
            return "—"
        zone = ZoneInfo(self.timezone)
        return format_datetime(value, format=format, tzinfo=zone, locale=self.locale)

    def zone_label(self) -> str:
        """The zone as people say it, with its IANA name (e.g. 中国时间 (Asia/Shanghai))."""
        zone = ZoneInfo(self.timezone)
        return f"{get_timezone_name(zone, locale=self.locale)} ({self.timezone})"


def context(request: Request, principal: Principal | None) -> PageContext:
    settings = app_state(request).settings
    return PageContext(
        locale=negotiate(request, settings.locale),
        timezone=settings.timezone,
        principal=principal,
        path=request.url.path,
    )


def nav_for(principal: Principal | None) -> list[NavItem]:
    """The entries the caller's role may open (none when signed out)."""
    if principal is None:
        return []
    return [item for item in NAV if item.offered_to(principal.role)]


def map_nav_for(principal: Principal | None) -> list[NavItem]:
    """The maps the caller's role may open (the bar of a map page)."""
    if principal is None:
        return []
    return [item for item in MAP_NAV if item.offered_to(principal.role)]


def area_label(ctx: PageContext) -> str:
    """The caller's area in a few words, for the header."""
    p = ctx.principal
    if p is None:
        return ""
    if p.scope.unrestricted:
        return ctx._("the whole district")
    grids = len(p.scope.grid_ids or ())
    communities = len(p.scope.held_community_ids or ())
    if not grids and not communities:
        return ctx._("no area assigned yet")
    # Whole messages per case (the catalog has no plural forms): "1 grid", not "1 grids",
    # and a grid worker's area is their grids, not "0 communities".
    if not communities:
        return ctx._("1 grid") if grids == 1 else ctx._("%(g)s grids", g=grids)
    if communities == 1:
        if grids == 1:
            return ctx._("1 community, 1 grid")
        return ctx._("1 community, %(g)s grids", g=grids)
    return ctx._("%(c)s communities, %(g)s grids", c=communities, g=grids)


def render(
    request: Request,
    principal: Principal | None,
    template: str,
    *,
    title: str,
    status_code: int = 200,
    values: Mapping[str, Any] | None = None,
) -> HTMLResponse:
    """A whole page: ``template`` (extending ``base.html``) inside the frame."""
    ctx = context(request, principal)
    env = environment(ctx.locale)
    here = quote(str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""))
    page = env.get_template(template).render(
        ctx=ctx,
        title=title,
        lang=html_lang(ctx.locale),
        nav=nav_for(principal),
        map_nav=map_nav_for(principal) if any(within(ctx.path, p) for p in MAP_PATHS) else [],
        within=within,
        role_name=ctx._(ROLE_NAMES[principal.role]) if principal else "",
        area=area_label(ctx),
        languages=[(code, SELF_NAMES[code]) for code in LOCALES],
        here=here,
        **(values or {}),
    )
    return HTMLResponse(page, status_code=status_code)


def wants_html(request: Request) -> bool:
    """A browser navigating (it asks for HTML first), not an API client."""
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "application/json" not in accept.split(",")[0]


def login_redirect_target(request: Request) -> str:
    """``/login?next=…`` back to where the browser was going."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return "/login?next=" + quote(target, safe="")


def error_page(request: Request, status: int, detail: str) -> HTMLResponse:
    """An error as a page in the frame, in the page's language, for browsers."""
    principal: Principal | None = getattr(request.state, "principal", None)
    ctx = context(request, principal)
    titles = {
        403: N_("Not allowed"),
        404: N_("Not found"),
        413: N_("Too large"),
        422: N_("Something in the request needs fixing"),
        429: N_("Too many requests"),
        503: N_("Not available right now"),
    }
    fallback = N_("Something went wrong")
    title = ctx._(titles.get(status, fallback))
    return render(
        request,
        principal,
        "error.html",
        title=title,
        status_code=status,
        values={"status": status, "detail": detail},
    )


def language_cookie(locale: str) -> dict[str, Any]:
    """The cookie that keeps the user's choice of language (a year; not a secret)."""
    return {
        "key": COOKIE,
        "value": locale,
        "max_age": 365 * 24 * 3600,
        "httponly": True,
        "samesite": "lax",
    }


def local_path(target: str) -> str:
    """Only a path on this site: never an open redirect to another host."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target
