"""What storing a scanned consent form answers (``api/routers/consent_scans.py``)."""

from __future__ import annotations

from datetime import datetime

from api.schemas import Answer


class ConsentScan(Answer):
    """The scan as stored, without its bytes (read them at ``url``, audited)."""

    consent_id: int
    content_type: str
    original_bytes: int
    bytes: int
    uploaded_at: datetime
    uploaded_by: str
    url: str
