"""Exercise 13: setup_logging() sends a logger's records to a stream, as LOG_FORMAT lines, once."""

from __future__ import annotations

import io
import itertools
import logging
import re
from collections.abc import Iterator
from types import ModuleType

import pytest

LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} - (DEBUG|INFO|WARNING|ERROR) - (.*)")
_names = itertools.count()


@pytest.fixture
def ex(load) -> ModuleType:
    return load("ex13_logging")


@pytest.fixture
def name() -> Iterator[str]:
    """A logger name no other test uses; its handlers are removed afterwards."""
    name = f"ex13test{next(_names)}"
    yield name
    logger = logging.getLogger(name)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.setLevel(logging.NOTSET)


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_a_record_becomes_one_line_with_time_level_and_message(ex, name):
    stream = io.StringIO()
    ex.setup_logging(stream, name=name)
    logging.getLogger(name).info("alice joined from %s", "127.0.0.1:40118")
    (line,) = lines(stream)
    match = LINE.fullmatch(line)
    assert match, f"not in LOG_FORMAT: {line!r}"
    assert match.groups() == ("INFO", "alice joined from 127.0.0.1:40118")


def test_records_of_loggers_below_the_name_are_included(ex, name):
    stream = io.StringIO()
    ex.setup_logging(stream, name=name)
    logging.getLogger(f"{name}.server.engine").warning("Excess flood")
    assert [LINE.fullmatch(line).group(2) for line in lines(stream)] == ["Excess flood"]


def test_records_of_other_loggers_are_not(ex, name):
    stream = io.StringIO()
    ex.setup_logging(stream, name=name)
    logging.getLogger(f"not{name}").warning("someone else's business")
    assert lines(stream) == []


def test_records_below_the_level_are_dropped(ex, name):
    stream = io.StringIO()
    ex.setup_logging(stream, logging.WARNING, name=name)
    log = logging.getLogger(name)
    log.info("routine")
    log.warning("problem")
    assert [LINE.fullmatch(line).group(1) for line in lines(stream)] == ["WARNING"]


def test_debug_lines_appear_at_debug_level(ex, name):
    stream = io.StringIO()
    ex.setup_logging(stream, logging.DEBUG, name=name)
    logging.getLogger(name).debug("details")
    assert len(lines(stream)) == 1


def test_a_second_call_replaces_the_first_instead_of_doubling_every_line(ex, name):
    first, second = io.StringIO(), io.StringIO()
    ex.setup_logging(first, name=name)
    ex.setup_logging(second, name=name)
    logging.getLogger(name).info("once")
    assert lines(first) == []
    assert len(lines(second)) == 1


def test_the_handler_is_returned_and_can_be_removed(ex, name):
    stream = io.StringIO()
    handler = ex.setup_logging(stream, name=name)
    assert isinstance(handler, logging.Handler)
    logging.getLogger(name).removeHandler(handler)
    logging.getLogger(name).info("nobody hears this")
    assert lines(stream) == []


def test_the_root_logger_is_left_alone(ex, name):
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    ex.setup_logging(io.StringIO(), name=name)
    assert root.handlers == handlers
    assert root.level == level
