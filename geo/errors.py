"""One exception hierarchy for the whole of gridwork.

The domain raises these; ``api.errors`` maps them to HTTP problems in one table and the
command line prints them as one line each. Every error names *where* the problem is (a field,
a file, a row) and *why*, because the people who read them are clerks fixing a spreadsheet,
not developers reading a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

#: Refusals a page says in its own language: a code, and the English sentence with its
#: ``%(name)s`` values. The API and the logs answer the English; ``api/pages/said.py`` marks
#: the same sentences for the catalog (a test keeps the two the same). Sentences without
#: values need no code: a page looks the reason itself up in its catalog.
SENTENCES: dict[str, str] = {
    "no_household": "no household '%(code)s' in your area",
    "no_facility": "no facility '%(code)s' in your area",
    "no_incident": "no incident '%(code)s' in your area",
    "no_plan": "no plan %(plan)s",
    "no_case": "no case %(case)s in your area",
    "no_elder": "no elder %(elder)s in your area",
    "no_alert": "no alert %(alert)s in your area",
    "no_user": "no user '%(user)s'",
    "no_category": "no category '%(code)s'",
    "no_grid": "no grid '%(code)s' in your area",
    "no_community": "no community '%(code)s' in your area",
    "not_planners_community": (
        "planning community '%(code)s' needs the community in your area (a street or "
        "community scope); a grid scope is not enough"
    ),
    "household_without_grid": "household '%(code)s' lies in no grid, so it has no home zone",
    "device_enrolled": "device '%(device)s' is already enrolled",
    "device_taken": "device '%(device)s' is enrolled for another elder",
    "unknown_category": "unknown category '%(code)s'",
    "between": "must be between -%(bound)s and %(bound)s",
    "too_long": "at most %(limit)s characters",
    "zone_without_home": (
        "the zone does not contain the elder's home (it lies %(outside)s m outside the zone): "
        "check that coordinates are lon, lat in WGS-84, or give force=true (audited) for a "
        "zone away from home"
    ),
    "zone_too_wide": (
        "the zone is %(km)s km across from its centre; a safe zone must fit in a %(max_km)s km "
        "circle"
    ),
    "community_changed": (
        "community %(community)s changed since plan %(plan)s was drafted; draft a new plan"
    ),
    "plan_waiting": (
        "plan %(plan)s of community %(community)s already takes effect on %(day)s; wait for it "
        "or withdraw it first"
    ),
    "effective_too_early": "effective date %(effective)s is before the current grids' %(latest)s",
    "not_draft": "plan %(plan)s is %(status)s; only a draft can change",
    "too_big": "too big: at most %(bytes)s bytes",
    "body_too_big": (
        "larger than the limit of %(bytes)s bytes (%(mb)s MB): send a smaller photo or file"
    ),
    "nul": "contains a NUL character, which cannot be stored",
    "too_many_pixels": "more than %(pixels)s pixels: make the image smaller",
    "unsupported_image": "unsupported type %(kind)s: JPEG, PNG or WebP only",
    "not_an_image": "not an image: JPEG, PNG or WebP only",
    "damaged_image": "a damaged image (%(why)s)",
    "photos_full": "a case holds at most %(most)s photos",
    "move_not_allowed": "a %(status)s case cannot be '%(action)s'ed",
    "not_escalated": "a %(status)s case is not escalated",
    "no_buildings": "community '%(code)s' has no buildings to plan with: import them first",
    "zone_not_valid": (
        "not a valid polygon (%(reason)s): click the area's corners in turn around it, "
        "so that its edges do not cross"
    ),
    "grid_not_polygon": (
        "grid %(grid)s would not be one valid polygon; move units until it is contiguous"
    ),
    "no_area": "no street, community or grid with code '%(code)s'",
    "user_exists": "user '%(user)s' already exists",
    "last_admin": "'%(user)s' is the last active admin: make another admin first",
    "no_worker": "no worker with code '%(code)s'",
    "worker_linked": "worker %(code)s is linked to the account '%(user)s': unlink it there first",
    "password_too_short": "at least %(minimum)s characters",
}


class GridworkError(Exception):
    """Base of every error gridwork raises on purpose."""

    code: str | None = None
    values: dict[str, str | int | float] = {}  # noqa: RUF012 - never mutated, replaced

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field

    @classmethod
    def said(cls, code: str, /, *, field: str | None = None, **values: str | int | float) -> Self:
        """The error whose reason is sentence ``code`` of :data:`SENTENCES` with ``values``,
        keeping both so that a page can say it in its own language."""
        error = cls(SENTENCES[code] % values, field=field)
        error.code = code
        error.values = values
        return error

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}" if self.field else self.reason


class InvalidInput(GridworkError):
    """A value the caller sent cannot be used as it is."""

    def __init__(self, reason: str, *, field: str | None = None, index: int | None = None) -> None:
        super().__init__(reason, field=field)
        self.index = index

    def __str__(self) -> str:
        where = self.field or ""
        if self.index is not None:
            where = f"{where}[{self.index}]" if where else f"[{self.index}]"
        return f"{where}: {self.reason}" if where else self.reason


class InvalidGeometry(InvalidInput):
    """A geometry is empty, unrepairable, of the wrong type or outside the valid range."""


class CRSError(InvalidInput):
    """A coordinate reference system is missing, unknown or cannot be used here."""


class NotFound(GridworkError):
    """The thing asked for does not exist, or is outside the caller's area (same answer)."""


class Conflict(GridworkError):
    """The request contradicts the stored state (a stale plan, a duplicate code)."""


class Unauthorized(GridworkError):
    """No valid credentials were presented."""


class Forbidden(GridworkError):
    """Credentials are valid but the role may not do this."""


class TooManyRequests(GridworkError):
    """A client called a rate-limited action too often (login, device ingest)."""


class PayloadTooLarge(InvalidInput):
    """A request body, batch or geometry is larger than we accept."""


class Unavailable(GridworkError):
    """A dependency (PostGIS, PostgreSQL binaries, an extension) is missing or down."""


@dataclass(frozen=True)
class RowReject:
    """One rejected input row: where it was and why, so a clerk can fix the source file."""

    row: int
    reason: str
    source_id: str | None = None

    def __str__(self) -> str:
        sid = f" (id {self.source_id})" if self.source_id is not None else ""
        return f"row {self.row}{sid}: {self.reason}"


@dataclass
class ImportRejected(GridworkError):
    """A bulk import was refused as a whole; ``rejects`` lists every bad row, not just the first."""

    source: str
    rejects: list[RowReject] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(
            f"{self.source}: {len(self.rejects)} row(s) rejected, nothing written", field=None
        )

    def __str__(self) -> str:
        return self.reason
