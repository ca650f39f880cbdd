"""The JSON line of a standard-library record is the same whether the formatter writes it out
directly (the common line: service.observability.logs._JsonFormatter) or runs structlog's
processor chain, whatever the level, the extras and the context bound for the request."""

import logging
from typing import Any

import msgspec
import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st

from service.observability.logs import _json_formatter

EXTRA_NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12).filter(
    lambda name: name not in logging.LogRecord("n", 0, "p", 0, "m", (), None).__dict__
)
VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20))


def _record(level: int, message: str, args: tuple[Any, ...], extra: dict[str, Any]) -> logging.LogRecord:
    return logging.getLogger("service.access").makeRecord(
        "service.access", level, "telemetry.py", 1, message, args, None, extra=extra
    )


def _through_the_chain(record: logging.LogRecord) -> dict[str, Any]:
    formatter = _json_formatter()
    line = structlog.stdlib.ProcessorFormatter.format(formatter, record)  # the chain, bypassing the fast path
    return dict(msgspec.json.decode(line))


def _written_out(record: logging.LogRecord) -> dict[str, Any]:
    return dict(msgspec.json.decode(_json_formatter().format(record)))


@given(
    level=st.sampled_from([logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL]),
    message=st.text(max_size=30).map(lambda text: text.replace("%", "")),
    extra=st.dictionaries(EXTRA_NAMES, VALUES, max_size=5),
    bound=st.dictionaries(EXTRA_NAMES, st.text(max_size=10), max_size=2),
)
def test_a_line_written_out_is_the_chains_line(
    level: int, message: str, extra: dict[str, Any], bound: dict[str, str]
) -> None:
    tokens = structlog.contextvars.bind_contextvars(**bound)
    try:
        record = _record(level, message, (), extra)
        chain, direct = _through_the_chain(record), _written_out(record)
    finally:
        structlog.contextvars.reset_contextvars(**tokens)
    assert chain.pop("time")[:16] == direct.pop("time")[:16]  # both now(), to the minute
    assert list(chain) == list(direct)  # the same fields in the same order
    assert chain == direct


def test_arguments_colour_copies_and_exceptions() -> None:
    record = _record(logging.INFO, "%s - %s", ("a", 3), {"color_message": "\x1b[1mcoloured\x1b[0m"})
    line = _written_out(record)
    assert line["event"] == "a - 3" and "color_message" not in line
    try:
        raise ValueError("boom")
    except ValueError:
        failed = logging.getLogger("x").makeRecord(
            "x", logging.ERROR, "f", 1, "failed", (), __import__("sys").exc_info()
        )
    assert "ValueError: boom" in _written_out(failed)["exception"]


@pytest.mark.parametrize("level", ["WARNING", "ERROR"])
def test_the_level_is_named_as_structlog_names_it(level: str) -> None:
    record = _record(getattr(logging, level), "x", (), {})
    assert _written_out(record)["level"] == _through_the_chain(record)["level"] == level.lower()
