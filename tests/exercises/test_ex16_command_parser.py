"""Exercise 16: parse() tells messages from commands, as the table in the exercise says."""

from __future__ import annotations

from types import ModuleType

import pytest


@pytest.fixture
def ex(load) -> ModuleType:
    return load("ex16_command_parser")


@pytest.mark.parametrize(
    "line, name, text",
    [
        ("hello there", "say", "hello there"),
        ("  hello  \n", "say", "hello"),
        ("héllo 👋", "say", "héllo 👋"),
        ("hello /quit", "say", "hello /quit"),
        ("//shrug", "say", "/shrug"),
        ("// spaced", "say", "/ spaced"),
    ],
)
def test_a_line_that_is_not_a_command_is_said(ex, line, name, text):
    assert ex.parse(line) == ex.Command(name, text)


@pytest.mark.parametrize("line", ["/quit", "/exit", "/q"])
def test_three_ways_to_quit(ex, line):
    assert ex.parse(line) == ex.Command("quit")


@pytest.mark.parametrize("word", ["ping", "users", "help"])
def test_each_command_is_recognised(ex, word):
    assert ex.parse(f"/{word}") == ex.Command(word)


@pytest.mark.parametrize("line", ["/QUIT", "/Ping", "  /help  "])
def test_commands_ignore_case_and_surrounding_spaces(ex, line):
    assert ex.parse(line).name == line.strip()[1:].lower()


def test_words_after_a_command_are_ignored(ex):
    assert ex.parse("/ping   now please") == ex.Command("ping")


@pytest.mark.parametrize(
    "line, word", [("/dance", "/dance"), ("/Dance wildly", "/Dance"), ("/", "/")]
)
def test_an_unknown_command_is_named_as_typed(ex, line, word):
    assert ex.parse(line) == ex.Command("unknown", word)


@pytest.mark.parametrize("line", ["", "   ", "\n", "\t \n"])
def test_an_empty_line_asks_for_nothing(ex, line):
    assert ex.parse(line) is None
