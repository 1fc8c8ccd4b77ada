"""The case flow, pure: which moves a case may make, deadlines per level, escalation.

    new → accepted → in_progress → resolved → closed
    (new → in_progress, new/accepted → resolved; resolved/closed → reopened: in_progress)

A case is handled at the lowest level that can: grid → community → street → district. When
its deadline at a level passes unresolved, or a handler escalates it with a reason, it moves
one level up, becomes ``new`` there (the next level must take it) and gets that level's
deadline. Hand-off to a department (职能部门) and back leaves status and level as they are.
Strings mirror ``data.models.incidents`` (``geo`` imports nothing from ``data``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from geo.errors import Conflict, InvalidInput

LEVELS: tuple[str, ...] = ("grid", "community", "street", "district")
STATUSES: tuple[str, ...] = ("new", "accepted", "in_progress", "resolved", "closed")
OPEN: frozenset[str] = frozenset({"new", "accepted", "in_progress"})

#: action → (statuses it may start from, the status it leads to, whether a note is required)
MOVES: dict[str, tuple[frozenset[str], str, bool]] = {
    "accept": (frozenset({"new"}), "accepted", False),
    "start": (frozenset({"new", "accepted"}), "in_progress", False),
    "resolve": (OPEN, "resolved", True),
    "close": (frozenset({"resolved"}), "closed", False),
    "reopen": (frozenset({"resolved", "closed"}), "in_progress", True),
}

NOTE_MAX = 2000


@dataclass(frozen=True)
class Deadlines:
    """Hours allowed at each level (a category's)."""

    grid: int
    community: int
    street: int
    district: int

    def hours(self, level: str) -> int:
        return int(getattr(self, level_of(level)))

    def due(self, level: str, start: datetime) -> datetime:
        return start + timedelta(hours=self.hours(level))


def due_after_hand_over(due: datetime, level_hours: int, at: datetime) -> datetime:
    """A case handed to a new holder because its grid changed hands (a re-plan, a new
    worker) keeps its deadline, but never leaves them less than the level's own time: the
    sweep would otherwise send up, minutes after it arrived, a case its new holder had no
    chance to see, for the planner's change rather than anyone's delay."""
    return max(due, at + timedelta(hours=level_hours))


def level_of(value: str, field: str = "level") -> str:
    if value not in LEVELS:
        raise InvalidInput(f"unknown level '{value}'; one of {', '.join(LEVELS)}", field=field)
    return value


def next_level(level: str) -> str | None:
    """The level above ``level``, or None at the district."""
    i = LEVELS.index(level_of(level))
    return LEVELS[i + 1] if i + 1 < len(LEVELS) else None


def higher(a: str, b: str) -> str:
    """The higher of two levels."""
    return a if LEVELS.index(level_of(a)) >= LEVELS.index(level_of(b)) else b


def clean_note(note: str | None, *, required: bool, field: str = "note") -> str | None:
    """A note trimmed; required ones must say something (3+ characters)."""
    text = (note or "").strip()
    if len(text) > NOTE_MAX:
        raise InvalidInput(f"at most {NOTE_MAX} characters", field=field)
    if required and len(text) < 3:
        raise InvalidInput("say why (at least 3 characters)", field=field)
    return text or None


def move(status: str, action: str) -> str:
    """The status ``action`` leads to from ``status``; Conflict if the case cannot move so."""
    if action not in MOVES:
        raise InvalidInput(f"unknown action '{action}'; one of {', '.join(MOVES)}", field="action")
    allowed, to, _ = MOVES[action]
    if status not in allowed:
        raise Conflict.said("move_not_allowed", status=status, action=action, field="action")
    return to


def note_required(action: str) -> bool:
    return MOVES[action][2] if action in MOVES else False


def escalation(status: str, level: str) -> str:
    """The level a handler's escalation leads to; Conflict when closed/resolved or at the top."""
    if status not in OPEN:
        raise Conflict.said("not_escalated", status=status, field="action")
    up = next_level(level)
    if up is None:
        raise Conflict("the case is already at district level", field="action")
    return up


def overdue(status: str, due_at: datetime, now: datetime) -> bool:
    return status in OPEN and due_at <= now


def due_soon(status: str, due_at: datetime, now: datetime, within: timedelta) -> bool:
    return status in OPEN and now < due_at <= now + within
