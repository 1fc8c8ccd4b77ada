"""One exception hierarchy for the whole of gridwork.

The domain raises these; ``api.errors`` maps them to HTTP problems in one table and the
command line prints them as one line each. Every error names *where* the problem is (a field,
a file, a row) and *why*, because the people who read them are clerks fixing a spreadsheet,
not developers reading a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class GridworkError(Exception):
    """Base of every error gridwork raises on purpose."""

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field

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
