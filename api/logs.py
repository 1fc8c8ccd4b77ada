"""The server's logs: text for a terminal, one JSON object per line for a log collector.

uvicorn's own access line is the raw request line, query string included: a watch's API key
and position (``/ingest/osmand?key=…&lat=…``), a name typed into a search. ``gridwork serve``
turns it off, and the metrics middleware (:mod:`api.metrics`) writes gridwork's own access
line instead: the route *template* (``/elders/{elder_id}``, never the ids of the path or the
query string), the method, the status, the duration and a request id. The request id is also
on every other line logged while that request runs, and answered as ``X-Request-ID``.

With ``GRIDWORK_LOG_FORMAT=json`` the app's lines and uvicorn's are objects such as
``{"time": "2026-…+08:00", "level": "info", "logger": "gridwork.access", "message": "GET
/locate 200 1.2 ms", "request_id": "…", "method": "GET", "route": "/locate", "status": 200,
"duration_ms": 1.2}``.
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import datetime
from typing import Any, Literal

#: gridwork's access lines (one per request), written by :class:`api.metrics.RequestMetrics`
#: only while this logger is enabled for INFO: tests and benchmarks pay nothing for them.
ACCESS = logging.getLogger("gridwork.access")

#: The request being served in this task, for every line logged meanwhile.
REQUEST_ID: ContextVar[str | None] = ContextVar("gridwork_request_id", default=None)

_FIELDS = ("request_id", "method", "route", "status", "duration_ms")


class RequestIdFilter(logging.Filter):
    """Puts the current request's id on each record (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (local, with its offset), level, logger, message, the
    request's fields when there are any, and the traceback of an exception."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created)
            .astimezone()
            .isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in _FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                out[name] = value
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``time level logger: message [request id]`` for a person at a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", None)
        return f"{line} [{request_id}]" if request_id else line


def log_config(fmt: Literal["text", "json"], level: str = "INFO") -> dict[str, Any]:
    """A :func:`logging.config.dictConfig` (uvicorn's ``log_config``): every logger, uvicorn's
    included, to one handler on stderr in ``fmt``; uvicorn's access log silenced (see the
    module docstring), gridwork's on."""
    formatter = {"()": f"{__name__}.{'JsonFormatter' if fmt == 'json' else 'TextFormatter'}"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "filters": {"request_id": {"()": f"{__name__}.RequestIdFilter"}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "filters": ["request_id"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["default"], "level": level},
        "loggers": {
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
            ACCESS.name: {"handlers": [], "level": "INFO", "propagate": True},
        },
    }
