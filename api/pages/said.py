"""The domain's refusals in the page's language: beside a form's field and on an error page.

The domain refuses in English (:mod:`geo.errors`), which the JSON API answers and the logs
keep. A page says the same refusal from its catalog: a sentence with values by its code
(:data:`geo.errors.SENTENCES`, marked here again for the catalog; a test keeps the two the
same), a sentence without values by itself (:data:`PLAIN`, the ones that reach the forms of
reporting an incident, enrolling an elder, drawing a safe zone, publishing a plan and giving
a reason to locate an elder). Anything else is shown as the domain said it.
"""

from __future__ import annotations

from typing import Any

from api.pages.frame import N_, PageContext
from geo.errors import GridworkError

#: ``geo.errors.SENTENCES``, marked for translation.
SENTENCES: dict[str, str] = {
    "no_household": N_("no household '%(code)s' in your area"),
    "no_facility": N_("no facility '%(code)s' in your area"),
    "no_incident": N_("no incident '%(code)s' in your area"),
    "no_plan": N_("no plan %(plan)s"),
    "no_case": N_("no case %(case)s in your area"),
    "no_elder": N_("no elder %(elder)s in your area"),
    "no_alert": N_("no alert %(alert)s in your area"),
    "no_user": N_("no user '%(user)s'"),
    "no_category": N_("no category '%(code)s'"),
    "no_grid": N_("no grid '%(code)s' in your area"),
    "no_community": N_("no community '%(code)s' in your area"),
    "not_planners_community": N_(
        "planning community '%(code)s' needs the community in your area (a street or "
        "community scope); a grid scope is not enough"
    ),
    "household_without_grid": N_("household '%(code)s' lies in no grid, so it has no home zone"),
    "device_enrolled": N_("device '%(device)s' is already enrolled"),
    "device_taken": N_("device '%(device)s' is enrolled for another elder"),
    "unknown_category": N_("unknown category '%(code)s'"),
    "between": N_("must be between -%(bound)s and %(bound)s"),
    "too_long": N_("at most %(limit)s characters"),
    "zone_without_home": N_(
        "the zone does not contain the elder's home (it lies %(outside)s m outside the zone): "
        "check that coordinates are lon, lat in WGS-84, or give force=true (audited) for a "
        "zone away from home"
    ),
    "zone_too_wide": N_(
        "the zone is %(km)s km across from its centre; a safe zone must fit in a %(max_km)s km "
        "circle"
    ),
    "community_changed": N_(
        "community %(community)s changed since plan %(plan)s was drafted; draft a new plan"
    ),
    "plan_waiting": N_(
        "plan %(plan)s of community %(community)s already takes effect on %(day)s; wait for it "
        "or withdraw it first"
    ),
    "effective_too_early": N_(
        "effective date %(effective)s is before the current grids' %(latest)s"
    ),
    "not_draft": N_("plan %(plan)s is %(status)s; only a draft can change"),
    "too_big": N_("too big: at most %(bytes)s bytes"),
    "body_too_big": N_(
        "larger than the limit of %(bytes)s bytes (%(mb)s MB): send a smaller photo or file"
    ),
    "nul": N_("contains a NUL character, which cannot be stored"),
    "too_many_pixels": N_("more than %(pixels)s pixels: make the image smaller"),
    "unsupported_image": N_("unsupported type %(kind)s: JPEG, PNG or WebP only"),
    "not_an_image": N_("not an image: JPEG, PNG or WebP only"),
    "damaged_image": N_("a damaged image (%(why)s)"),
    "photos_full": N_("a case holds at most %(most)s photos"),
    "move_not_allowed": N_("a %(status)s case cannot be '%(action)s'ed"),
    "not_escalated": N_("a %(status)s case is not escalated"),
    "no_buildings": N_("community '%(code)s' has no buildings to plan with: import them first"),
    "zone_not_valid": N_(
        "not a valid polygon (%(reason)s): click the area's corners in turn around it, "
        "so that its edges do not cross"
    ),
    "grid_not_polygon": N_(
        "grid %(grid)s would not be one valid polygon; move units until it is contiguous"
    ),
    "no_area": N_("no street, community or grid with code '%(code)s'"),
    "user_exists": N_("user '%(user)s' already exists"),
    "last_admin": N_("'%(user)s' is the last active admin: make another admin first"),
    "no_worker": N_("no worker with code '%(code)s'"),
    "worker_linked": N_(
        "worker %(code)s is linked to the account '%(user)s': unlink it there first"
    ),
    "password_too_short": N_("at least %(minimum)s characters"),
}

#: Refusals without values that reach the pages' forms, each as the domain says it.
PLAIN: tuple[str, ...] = (
    N_("the point is outside every grid"),
    N_("the point is outside your area"),
    N_("lon and lat must be given together"),
    N_("a number is required"),
    N_("required"),
    N_("NUL characters are not allowed"),
    N_("a case number"),
    N_("empty file"),
    N_("not a PDF, JPEG or PNG"),
    N_("not a PDF, JPEG or PNG (judged by its content)"),
    N_("no data yet: import communities first"),
    N_("a PDF with scripts, actions or attached files"),
    N_("a damaged PDF (no end of file marker)"),
    N_("consent cannot be given in the future"),
    N_("the elder's home lies in no grid"),
    N_("a zone must be a non-empty Polygon or MultiPolygon"),
    N_("coordinates must be WGS-84 lon/lat"),
    N_(
        "the zone lies where the district's metric CRS cannot measure it; "
        "give WGS-84 lon, lat near the elder's home"
    ),
    N_(
        "the elder's home household is gone, so the zone cannot be checked against it; "
        "give force=true (audited) to set it anyway"
    ),
    N_("kind must be home_grid, circle or polygon"),
    N_("choose one of the reasons listed"),
    N_("say why in a few words"),
    N_("not the username"),
    N_("the two passwords differ"),
    N_("2 to 64 letters, digits, dots, dashes or underscores, starting with a letter or digit"),
    N_("this name is the system's own in the records; choose another"),
    # geo.assignment.keys: a household's code the register's pages could not open
    N_("a code cannot contain '/': the pages and the API open each record by its code"),
    N_("a code cannot contain control characters"),
    N_("'new' is the register's page for adding one; choose another code"),
)


def said(ctx: PageContext, exc: GridworkError) -> str:
    """The reason of ``exc`` in the page's language (as the domain said it if the catalog
    has no words for it)."""
    if exc.code in SENTENCES:
        return ctx._(SENTENCES[exc.code], **exc.values)
    if not exc.reason:  # gettext("") is the catalog's header
        return exc.reason
    return ctx._(exc.reason)


def said_in_full(ctx: PageContext, exc: GridworkError) -> str:
    """For an error page: the reason translated, or else with the field it names, as the
    API says it (``field: reason``)."""
    reason = said(ctx, exc)
    return reason if reason != exc.reason else str(exc)


#: The request checks FastAPI (pydantic) makes before a route runs, by error type, with
#: the values of the error's ``ctx``: a URL edited by hand, or a link with a stale value.
CHECKS: dict[str, str] = {
    "missing": N_("required"),
    "greater_than_equal": N_("must be at least %(ge)s"),
    "greater_than": N_("must be more than %(gt)s"),
    "less_than_equal": N_("must be at most %(le)s"),
    "less_than": N_("must be less than %(lt)s"),
    "string_too_short": N_("must be at least %(min_length)s characters"),
    "string_too_long": N_("must be at most %(max_length)s characters"),
    "int_parsing": N_("must be a whole number"),
    "float_parsing": N_("must be a number"),
    "bool_parsing": N_("must be true or false"),
    "date_from_datetime_parsing": N_("must be a date (YYYY-MM-DD)"),
    "date_parsing": N_("must be a date (YYYY-MM-DD)"),
    "string_pattern_mismatch": N_("is not one of the values this page offers"),
    "enum": N_("is not one of the values this page offers"),
    "literal_error": N_("is not one of the values this page offers"),
}


def said_check(ctx: PageContext, error: dict[str, Any]) -> str:
    """One failed request check (an item of ``RequestValidationError.errors()``) in the
    page's language, as pydantic said it if the catalog has no words for its type."""
    sentence = CHECKS.get(str(error.get("type")))
    if sentence is None:
        return str(error.get("msg", "invalid"))
    values = {k: v for k, v in (error.get("ctx") or {}).items() if isinstance(v, int | float | str)}
    try:
        return ctx._(sentence, **values)
    except (KeyError, ValueError):  # a ctx without the value the sentence names
        return str(error.get("msg", "invalid"))
