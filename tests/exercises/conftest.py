"""Which code the exercise tests check: the reference solutions, or yours.

By default every test here imports its module from ``solutions/``, so the
normal test run stays green while the exercises are still unsolved.  To test
your own code in ``exercises/`` instead::

    python -m exercises                               # the checker: the easy way
    pytest tests/exercises --exercises                # pytest itself
    CHAT_EXERCISES=exercises pytest tests/exercises   # the same, set in the environment

(``--exercises`` is declared in ``tests/conftest.py``: pytest only reads
command-line options from the top conftest.)
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from types import ModuleType

import pytest

#: The environment variable that picks the package under test.
TARGET_ENV = "CHAT_EXERCISES"
PACKAGES = ("solutions", "exercises")


def target_package(config: pytest.Config) -> str:
    """``"exercises"`` with ``--exercises`` or CHAT_EXERCISES=exercises, else ``"solutions"``."""
    if config.getoption("exercises", default=False):
        return "exercises"
    package = os.environ.get(TARGET_ENV) or "solutions"
    if package not in PACKAGES:
        raise pytest.UsageError(f"{TARGET_ENV} must be one of {PACKAGES}, not {package!r}")
    return package


def pytest_report_header(config: pytest.Config) -> str:
    return f"exercise tests check: {target_package(config)}/"


@pytest.fixture
def load(request: pytest.FixtureRequest) -> Callable[[str], ModuleType]:
    """``load("ex02_frame_decoder")`` imports that module from the package under test."""
    package = target_package(request.config)

    def load(name: str) -> ModuleType:
        return importlib.import_module(f"{package}.{name}")

    return load
