"""What every log line knows about its context: the job, the connector, the organisation.

`log_context(...)` sets those fields for the code it wraps (a sync job in the worker, a
request in the web process), and `ContextFilter` (installed on the console handler by
settings.LOGGING) copies them onto each record, so LOG_FORMAT=json prints them as keys of the
line's object and a plain line is unchanged. A contextvar, not a thread-local, so the job's
heartbeat and prefetch threads, which start with a copy of nothing, never mislabel a line.

Nothing here ever carries a connector's API key: only ids and the organisation's slug.
"""

from __future__ import annotations

import contextvars
import logging
from contextlib import contextmanager

_context: contextvars.ContextVar[dict | None] = contextvars.ContextVar("log_context", default=None)


@contextmanager
def log_context(**fields):
    """Add `fields` (None values are left out) to every record logged inside the block."""
    merged = {**(_context.get() or {}), **{k: v for k, v in fields.items() if v is not None}}
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_context.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class RequestLogContextMiddleware:
    """Labels a request's log lines with the organisation and connector its URL names."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # A fresh context per request, deliberately not reset on the way out: Django logs a
        # 4xx/5xx response ("Not Found: …") after every middleware has returned, and that
        # line belongs to this request. The next request on this thread starts afresh.
        _context.set({})
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        fields = _context.get()
        if fields is not None:
            if view_kwargs.get("org"):
                fields["organisation"] = view_kwargs["org"]
            if view_kwargs.get("connector"):
                fields["connector_id"] = view_kwargs["connector"]
            if view_kwargs.get("job"):
                fields["job_id"] = view_kwargs["job"]
        return None
