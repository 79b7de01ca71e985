"""structlog configured once per process: JSON lines, context bound per job.

Bind ids with ``structlog.contextvars.bound_contextvars(project_id=..., job_id=...)``;
every line logged inside carries them. Values of keys that look like credentials are
masked by :func:`redact_secrets` before anything is rendered.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

__all__ = ["configure_logging", "get_logger", "redact_secrets"]

_SECRET_KEY = re.compile(r"(authorization|token|secret|password|api_key|apikey|credential)", re.I)
_BEARER = re.compile(r"(puras_live_[A-Za-z0-9]+)\.[A-Za-z0-9_-]+")


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Mask credential-looking fields and any full API key that slipped into a message."""
    for key in list(event_dict):
        value = event_dict[key]
        if _SECRET_KEY.search(key) and value not in (None, "", False):
            event_dict[key] = "***"
        elif isinstance(value, str) and "puras_live_" in value:
            event_dict[key] = _BEARER.sub(r"\1.***", value)
    return event_dict


def configure_logging(service: str, level: str = "info", fmt: str = "json") -> None:
    """Route structlog and the stdlib's loggers to stderr in one format."""
    lvl = getattr(logging, level.upper(), logging.INFO)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(lvl, logging.INFO) if lvl < logging.INFO else lvl)
    # uvicorn's access log is one line per request on the hot path; errors still show.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
