"""The webhook outbox: one delivery loop for every event another system is told about.

An event is queued as a row of ``webhook_outbox`` in the transaction that makes it happen
(an alert raised, a case escalated or handed to a department), so it is sent if and only if
that transaction commits. The server's periodic task (``api/care_tasks.py``) then POSTs due
rows as JSON, ``{"type": "gridwork.<topic>", "<topic>": payload}``; a failure is retried
with exponential back-off (10 s, 20 s, … at most an hour) and given up after
:data:`MAX_ATTEMPTS`. Claiming a row leases it, so a second server process never posts it
twice at once. Delivered and given-up rows are purged after the retention period.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, text

from data.access.queries import Db
from data.db import transaction

log = logging.getLogger("gridwork.webhooks")

MAX_ATTEMPTS = 8
FIRST_RETRY_S = 10.0
LONGEST_RETRY_S = 3600.0


@dataclass(frozen=True)
class OutboxItem:
    id: int
    url: str
    topic: str
    payload: dict[str, Any]
    attempts: int


def retry_in(attempts: int) -> float:
    """Seconds before the next try after ``attempts`` failed ones (doubling, capped)."""
    return min(LONGEST_RETRY_S, FIRST_RETRY_S * 2 ** (attempts - 1))


def claim(db: Db, *, lease_s: float, limit: int = 50) -> list[OutboxItem]:
    """Due deliveries, leased for ``lease_s`` so a second task (or worker) does not repeat them."""
    rows = db.execute(
        text(
            """
            UPDATE webhook_outbox o SET next_attempt_at = now() + make_interval(secs => :lease)
            WHERE o.id IN (SELECT id FROM webhook_outbox WHERE delivered_at IS NULL
                           AND NOT failed AND next_attempt_at <= now()
                           ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED)
            RETURNING o.id, o.url, o.topic, o.payload, o.attempts
            """
        ),
        {"lease": lease_s, "limit": limit},
    ).all()
    return [OutboxItem(*r) for r in sorted(rows)]


def finish(db: Db, item_id: int, *, error: str | None, attempts: int) -> None:
    """Record one attempt: delivered, or failed (retried later, or given up at the last)."""
    if error is None:
        db.execute(
            text(
                "UPDATE webhook_outbox SET delivered_at = now(), attempts = :n, "
                "last_error = NULL WHERE id = :id"
            ),
            {"id": item_id, "n": attempts},
        )
        return
    db.execute(
        text(
            "UPDATE webhook_outbox SET attempts = :n, last_error = :err, failed = :gu, "
            "next_attempt_at = now() + make_interval(secs => :retry) WHERE id = :id"
        ),
        {
            "id": item_id,
            "n": attempts,
            "err": error[:500],
            "gu": attempts >= MAX_ATTEMPTS,
            "retry": retry_in(attempts),
        },
    )


def deliver(engine: Engine, *, timeout_s: float = 5.0) -> tuple[int, int]:
    """POST the due outbox rows, each recorded in its own transaction.

    Returns (delivered, failed attempts). The lease taken when claiming keeps a second
    worker from posting the same row while this one is at it.
    """
    with transaction(engine) as session:
        items = claim(session, lease_s=max(60.0, 4 * timeout_s))
    delivered = failed = 0
    for item in items:
        error = post_json(item.url, {"type": f"gridwork.{item.topic}", item.topic: item.payload},
                          timeout_s=timeout_s)  # fmt: skip
        with transaction(engine) as session:
            finish(session, item.id, error=error, attempts=item.attempts + 1)
        if error is None:
            delivered += 1
        else:
            failed += 1
            log.warning("webhook %s (%s) failed, attempt %s: %s",
                        item.id, item.topic, item.attempts + 1, error)  # fmt: skip
    return delivered, failed


def post_json(url: str, body: Mapping[str, Any], *, timeout_s: float) -> str | None:
    """POST ``body`` as JSON; None when answered 2xx, else what went wrong."""
    if not url.startswith(("http://", "https://")):
        return f"refusing to post to a non-HTTP URL {url[:40]!r}"
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url,
        data=json.dumps(body, default=str).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None if 200 <= status < 300 else f"HTTP {status}"


def purge(db: Db, *, before: datetime) -> int:
    """Delete rows delivered or given up that were queued before ``before``."""
    result = db.execute(
        text(
            "DELETE FROM webhook_outbox WHERE created_at < :before "
            "AND (delivered_at IS NOT NULL OR failed)"
        ),
        {"before": before},
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
