"""Structured logging: one JSON object per line in production, readable lines locally."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog
from opentelemetry import trace


def configure_logging(service: str, log_format: str = "json", level: str = "INFO") -> None:
    """Route stdlib and structlog output through one renderer, tagged with the service name."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_service(service),
        _add_trace_ids,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    handler.addFilter(ExpectedFetchTimeout())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access", "faststream.access", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class ExpectedFetchTimeout(logging.Filter):
    """A pull consumer's fetch that found nothing before its timeout is not an error.

    FastStream's task supervisor logs any exception that ends a subscriber task at ERROR with a
    traceback ("Task-NN raised an exception, retrying...") and restarts the task. When that
    exception is a timeout (an idle fetch, or NATS slow to answer one), the restart is the
    whole remedy: the record becomes one INFO line without the traceback. Other exceptions
    keep their level and traceback.
    """

    MARKER = "raised an exception, retrying"

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and record.exc_info and self.MARKER in str(record.msg):
            exc = record.exc_info[1]
            if isinstance(exc, TimeoutError):
                record.levelno, record.levelname = logging.INFO, "INFO"
                record.msg = "consumer fetch timed out; fetching again"
                record.args = None
                record.exc_info = None
                record.exc_text = None
        return True


def _add_service(service: str) -> Any:
    def processor(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
        event.setdefault("service", service)
        return event

    return processor


def _add_trace_ids(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    """With tracing on, every line logged inside a span names its trace (log ↔ trace)."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event.setdefault("trace_id", format(context.trace_id, "032x"))
        event.setdefault("span_id", format(context.span_id, "016x"))
    return event


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger. Inside an event handler every line carries the event's
    generation_id and event_id (bound by `genbus.runtime.consumer`)."""
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
