"""What is waiting on people and on other systems: open alerts and undelivered webhooks.

Read by ``/metrics`` at scrape time, so one short statement of counts (the alert status
index; the outbox is kept small by its purge) and nothing about anyone: no elder, device or
place, only how many.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text

_COUNTS = text(
    """
    SELECT (SELECT count(*) FROM alert WHERE status = 'open'),
           (SELECT count(*) FROM alert WHERE status = 'acknowledged'),
           (SELECT count(*) FROM webhook_outbox WHERE delivered_at IS NULL AND NOT failed),
           (SELECT count(*) FROM webhook_outbox WHERE delivered_at IS NULL AND failed)
    """
)


@dataclass(frozen=True)
class Backlog:
    alerts_open: int
    alerts_acknowledged: int
    webhooks_waiting: int  # not yet delivered, still retried
    webhooks_failed: int  # retries given up (``data.webhooks``)


def backlog(conn: Connection) -> Backlog:
    """The counts, in one statement."""
    row = conn.execute(_COUNTS).one()
    return Backlog(*(int(v) for v in row))
