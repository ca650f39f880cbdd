"""Structured logs: one JSON object per line on stderr, through Litestar's structlog plugin.

Every logger writes through the standard library (the service's own, Litestar's, uvicorn's),
formatted by structlog's ProcessorFormatter, so that each line carries the context bound for
the request being served (its request id) wherever it was logged from. Handlers write
synchronously: a queue would format on another thread, where the request's context is gone."""

import logging
from datetime import UTC, datetime
from typing import Any

import msgspec
import structlog
from litestar.logging.config import LoggingConfig, StructlogEventFilter, StructLoggingConfig
from litestar.plugins.structlog import StructlogConfig, StructlogPlugin

# These log each statement with its parameters (clinical free text included) at DEBUG or INFO:
# they stay at WARNING whatever LOG_LEVEL says.
DATA_LOGGERS = ("aiosqlite", "sqlalchemy.engine", "asyncpg")

_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
]


def _dumps(event: Any, **_: Any) -> str:
    # msgspec renders a line several times faster than json.dumps (an access line per request);
    # anything it cannot encode is written as its str().
    return msgspec.json.encode(event, enc_hook=str).decode()


# What every LogRecord carries; anything else on a record was passed as `extra` (structlog's
# ExtraAdder draws the same line).
_RECORD_KEYS = frozenset(logging.LogRecord("name", 0, "pathname", 0, "msg", (), None).__dict__)
_DROPPED = frozenset({"color_message"})  # uvicorn's copy of the message with ANSI colours


class _JsonFormatter(structlog.stdlib.ProcessorFormatter):
    """structlog's formatter, with the chain below written out for the common line: a standard
    library record (the access line of every request, uvicorn's, Litestar's) without an
    exception or a stack. Through the chain each such line built a second LogRecord and ran nine
    processors, 20 us of CPU per request; the line is the same either way (tested against the
    chain in tests/unit/test_log_lines.py). Lines from structlog's own loggers, and any with an
    exception or a stack, take the chain."""

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info or record.stack_info or not isinstance(record.msg, str):
            return super().format(record)
        event: dict[str, Any] = {"event": record.getMessage()}
        for key, value in structlog.contextvars.get_contextvars().items():  # merge_contextvars
            event.setdefault(key, value)
        event["logger"] = record.name
        event["level"] = record.levelname.lower()
        event["time"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        for key, value in record.__dict__.items():  # ExtraAdder
            if key not in _RECORD_KEYS and key not in _DROPPED:
                event[key] = value
        return _dumps(event)


def _json_formatter() -> structlog.stdlib.ProcessorFormatter:
    return _JsonFormatter(
        foreign_pre_chain=[*_SHARED, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            StructlogEventFilter(list(_DROPPED)),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=_dumps),
        ],
    )


def _stdlib_config(level: str) -> LoggingConfig:
    # The root logger is left to attach_root_handler: dictConfig would remove every handler
    # already on it (a host's, or pytest's log capture).
    config = LoggingConfig(
        formatters={"json": {"()": _json_formatter}},
        handlers={"console": {"class": "logging.StreamHandler", "formatter": "json", "level": "DEBUG"}},
        configure_root_logger=False,
        loggers={
            "litestar": {"level": level, "handlers": ["console"], "propagate": False},
            # uvicorn's own handlers would print plain text; its lines go through the root's.
            "uvicorn": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.error": {"level": level, "handlers": [], "propagate": True},
            # Its line carries the query string; service.observability.telemetry writes the access line.
            "uvicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
            "alembic.runtime.plugins": {"level": "WARNING", "handlers": [], "propagate": True},
            **{name: {"level": "WARNING", "handlers": [], "propagate": True} for name in DATA_LOGGERS},
        },
        log_exceptions="never",
    )
    # Litestar adds a queue handler (formatting on a listener thread) that nothing here uses.
    config.handlers.pop("queue_listener", None)
    return config


class _JsonLines(logging.StreamHandler):  # type: ignore[type-arg]
    """The root handler of this service (marked so that configuring twice adds it once)."""


def attach_root_handler(level: str) -> None:
    root = logging.getLogger()
    if not any(isinstance(handler, _JsonLines) for handler in root.handlers):
        handler = _JsonLines()
        handler.setFormatter(_json_formatter())
        root.addHandler(handler)
    root.setLevel(level)


def structlog_plugin(level: str) -> StructlogPlugin:
    """The plugin, configured for JSON lines at `level`. Its request-logging middleware stays off:
    service.observability.telemetry writes the one access line per request, without bodies,
    headers or query strings."""
    config = StructLoggingConfig(
        processors=[
            *_SHARED,
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        standard_lib_logging_config=_stdlib_config(level),
        pretty_print_tty=False,
        # A 404 is not worth a traceback: service.errors logs what is (unhandled and database errors).
        log_exceptions="never",
    )
    return StructlogPlugin(StructlogConfig(structlog_logging_config=config, enable_middleware_logging=False))


def configure(level: str) -> None:
    """The same configuration outside an app (the CLI, and `serve` before its workers start)."""
    _stdlib_config(level).configure()
    attach_root_handler(level)
