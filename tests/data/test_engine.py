"""The app's connections: settings every gridwork statement relies on."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

pytestmark = pytest.mark.db


def test_connections_run_without_jit_even_after_a_reconnect(engine: Engine) -> None:
    """Short OLTP statements on freshly filled tables (stale statistics) were JIT-compiled
    longer than the batch itself; every pooled connection, new ones included, has it off."""
    with engine.connect() as conn:
        assert conn.execute(text("SHOW jit")).scalar_one() == "off"
        conn.invalidate()  # the pool opens a new connection next time
    with engine.connect() as conn:
        assert conn.execute(text("SHOW jit")).scalar_one() == "off"
