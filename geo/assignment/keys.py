"""What a household's code or a facility's key may be.

The registers' pages and the API address each household and facility by its key in a URL
path (``/app/households/{code}``, ``/households/{code}``). A key holding ``/`` reaches no
route (the server splits the path at it, encoded or not), and ``new`` is the register's page
for adding one: an imported household coded ``12/3`` or ``new`` was stored, listed and could
never be opened, moved or removed. Such keys are refused where records come in (the import,
the API, the forms), each naming the record and why.
"""

from __future__ import annotations

#: Words of the registers' own pages, which a key cannot take.
RESERVED = frozenset({"new"})

#: Every character :func:`key_problem` refuses, as a PostgreSQL regular expression: how the
#: store finds keys taken before the rule (``gridwork check``). A test holds the two alike.
REFUSED_CHARACTERS_SQL = r"[/\x01-\x1f\x7f]"

#: The refusals, plain sentences (``api.pages.said.PLAIN`` marks them for the pages).
SLASH = "a code cannot contain '/': the pages and the API open each record by its code"
CONTROL = "a code cannot contain control characters"
RESERVED_WORD = "'new' is the register's page for adding one; choose another code"


def key_problem(key: str) -> str | None:
    """Why ``key`` cannot address its record (one of the sentences above), or None."""
    if "/" in key:
        return SLASH
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in key):
        return CONTROL
    if key in RESERVED:
        return RESERVED_WORD
    return None
