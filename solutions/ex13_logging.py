"""Exercise 13 (notebook 05_server): set up logging by hand.

A server runs unattended, so it writes down what happens: who connected, who
joined, what went wrong.  Python's :mod:`logging` separates the two halves of
that job.  Code everywhere *logs* -- ``log = logging.getLogger(__name__)``,
then ``log.info("alice joined")`` -- without knowing where the lines go.  The
program, once, at its start, decides *where* they go and what they look like.
Loggers form a tree by their dotted names: what ``chat.server.engine_threads``
logs passes up through ``chat.server`` and ``chat`` to the root, and a handler
attached anywhere on the way sees it.

Write :func:`setup_logging`, the few lines behind ``python -m chat.server``'s
log and the notebooks' ``LogBook``:

1. get the logger ``name`` (``"chat"``: every module of the package logs below it),
2. make a ``logging.StreamHandler(stream)``,
3. give it a ``logging.Formatter(LOG_FORMAT)``: time, level, message,
4. add the handler to the logger, and
5. set the logger's level (records below it are dropped at once, cheaply).

Return the handler, so that the caller can remove it again.

Calling it a second time -- a notebook cell run twice -- must not print every
line twice: first remove the handler an earlier call added (mark yours, say
``handler.set_name(HANDLER_NAME)``, and look for that name).  Leave the root
logger alone: it belongs to whatever program imports yours (pytest, JupyterLab).

Check your work:  python -m exercises 13
Stuck?            python -m exercises --hint 13
"""

from __future__ import annotations

import logging
from typing import TextIO

#: The format of every line: ``2026-11-25 21:54:06,565 - INFO - alice joined``.
LOG_FORMAT = "%(asctime)s - %(levelname)s - %(message)s"

#: The name our handler carries, so that a second call can find the first one's.
HANDLER_NAME = "exercise-13"


def setup_logging(stream: TextIO, level: int = logging.INFO, name: str = "chat") -> logging.Handler:
    """Send what the logger ``name`` and those below it log to ``stream``, as LOG_FORMAT lines."""
    ### BEGIN SOLUTION
    ### TODO: get the logger; remove a handler named HANDLER_NAME from an earlier call;
    ###       make a StreamHandler(stream) named HANDLER_NAME with a Formatter(LOG_FORMAT);
    ###       add it; set the logger's level; return the handler.
    logger = logging.getLogger(name)
    # A second call replaces the first one's handler instead of adding another:
    # two handlers would print every line twice.
    for old in [h for h in logger.handlers if h.get_name() == HANDLER_NAME]:
        logger.removeHandler(old)
    handler = logging.StreamHandler(stream)
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logger.addHandler(handler)
    # The logger's level filters before any handler runs: log.debug(...) costs
    # almost nothing when DEBUG is off.
    logger.setLevel(level)
    return handler
    ### END SOLUTION
