"""The app's in-memory grid index: built once, reused until the grids-version token changes.

One :class:`~data.assignment.GridIndexCache` per app. Each request reads the token in its own
session (one indexed row), so an index is never used after another process (an import, the
command line) changed the grids or their workers.
"""

from __future__ import annotations

import threading
from typing import Annotated

from fastapi import Depends, FastAPI, Request

from api.deps import SessionDep
from data.assignment import GridIndex, GridIndexCache

_lock = threading.Lock()


def grid_index_cache(app: FastAPI) -> GridIndexCache:
    cache: GridIndexCache | None = getattr(app.state, "grid_index", None)
    if cache is None:
        with _lock:
            cache = getattr(app.state, "grid_index", None)
            if cache is None:
                cache = GridIndexCache(app.state.settings)
                app.state.grid_index = cache
    return cache


def current_grid_index(request: Request, session: SessionDep) -> GridIndex:
    return grid_index_cache(request.app).get(session)


GridIndexDep = Annotated[GridIndex, Depends(current_grid_index)]
