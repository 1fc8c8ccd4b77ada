"""Group commit for device ingest: fixes from concurrent requests share one transaction.

A fix costs a few short statements and one commit, and the statements' fixed cost and the
commit (a WAL flush) are most of the time. With many devices reporting at once, requests
queue here and are written together (:class:`~api.batching.Batcher`). Each request still
gets its own answer: a refused request (no consent, a foreign device) does not stop the
others in its batch, and a request is answered only after its batch has committed, so an
acknowledged fix is never lost.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy.exc import OperationalError

from api.batching import Batcher
from data.care.service import IngestRequest, IngestResult
from geo.errors import GridworkError

Outcome = IngestResult | GridworkError
Store = Callable[[Sequence[IngestRequest]], list[Outcome]]

MAX_BATCH = 500


class IngestQueue(Batcher[IngestRequest, IngestResult]):
    """Batches ingest requests on one event loop; ``store`` writes a batch in one transaction."""

    def __init__(
        self, store: Store, *, max_batch: int = MAX_BATCH, max_pending: int | None = None
    ) -> None:
        self._store = store
        super().__init__(self._write, max_batch=max_batch, max_pending=max_pending)

    def _write(self, requests: Sequence[IngestRequest]) -> Sequence[Outcome | BaseException]:
        """The batch in one transaction; if it fails for a reason other than the database
        being unreachable, each request is retried alone so one bad request fails alone."""
        try:
            return self._store(requests)
        except OperationalError:
            raise
        except Exception:
            if len(requests) == 1:
                raise
        alone: list[Outcome | BaseException] = []
        for request in requests:
            try:
                alone.extend(self._store([request]))
            except Exception as exc:
                alone.append(exc)
        return alone
