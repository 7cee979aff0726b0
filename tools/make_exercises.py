#!/usr/bin/env python3
"""Generate the learner's exercise files from the reference solutions.

Each ``solutions/exNN_name.py`` is complete, commented code.  The parts a
learner writes are marked, as nbgrader marks them::

    def feed(self, data: bytes) -> list[dict]:
        \"\"\"The docstring stays: it tells the learner what to build.\"\"\"
        ### BEGIN SOLUTION
        ### TODO: add the bytes to the buffer, then cut out every complete line.
        ###       (More "###" lines continue the task.)
        self._buffer += data
        ...
        ### END SOLUTION

In ``exercises/exNN_name.py`` each marked region becomes its task -- the
``###`` lines that open it, as ordinary ``#`` comments -- and a ``raise
NotImplementedError`` naming the function to write.  Everything outside the regions (imports,
docstrings, given classes and constants) is copied unchanged, so the two files
can never disagree about the interface.

    python tools/make_exercises.py           write exercises/ from solutions/
    python tools/make_exercises.py --check   exit 1 if exercises/ is out of date

Only the ``exNN_*.py`` files are generated; ``exercises/__init__.py``,
``__main__.py`` and ``_runner.py`` (the checker) and ``hints.py`` are written
by hand.  Each solution has exactly one region (one concept, one ``TODO``;
``tests/test_exercises_meta.py`` checks it).  Standard library only.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
EXERCISES = ROOT / "exercises"

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
TODO = "### TODO"

EXERCISE_FILE = re.compile(r"ex\d\d_\w+\.py")
_DEF = re.compile(r"^(\s*)(?:async\s+)?(def|class)\s+(\w+)")


class RegionError(ValueError):
    """A solution file's markers are malformed; the message says where."""


def _owner(lines: list[str], index: int, indent: int) -> str:
    """The dotted name of the function enclosing line ``index``: ``Decoder.feed``."""
    names: list[str] = []
    for line in reversed(lines[:index]):
        match = _DEF.match(line)
        if match and len(match.group(1)) < indent:
            names.append(match.group(3))
            indent = len(match.group(1))
    return ".".join(reversed(names))


def make_exercise(source: str, filename: str = "<solution>") -> str:
    """Return the exercise text for one solution text."""
    lines = source.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip() == END:
            raise RegionError(f"{filename}:{i + 1}: {END} without {BEGIN}")
        if line.strip() != BEGIN:
            if line.lstrip().startswith(TODO):
                raise RegionError(f"{filename}:{i + 1}: {TODO} outside a solution region")
            out.append(line)
            i += 1
            continue
        start, indent = i, line[: len(line) - len(line.lstrip())]
        if not indent:
            raise RegionError(f"{filename}:{i + 1}: a solution region must be inside a function")
        # The region opens with its task: "### TODO: ..." and "###" continuation lines.
        todo: list[str] = []
        i += 1
        while i < len(lines) and lines[i].strip().startswith("###") and lines[i].strip() != END:
            stripped = lines[i].strip()
            if not todo and not stripped.startswith(TODO):
                raise RegionError(f"{filename}:{i + 1}: a region's task starts with {TODO}")
            if stripped == BEGIN:
                raise RegionError(f"{filename}:{i + 1}: nested {BEGIN}")
            todo.append(indent + stripped[2:])
            i += 1
        while i < len(lines) and lines[i].strip() != END:
            if lines[i].strip() == BEGIN:
                raise RegionError(f"{filename}:{i + 1}: nested {BEGIN}")
            if lines[i].lstrip().startswith(TODO):
                raise RegionError(f"{filename}:{i + 1}: {TODO} belongs at the region's start")
            i += 1
        if i == len(lines):
            raise RegionError(f"{filename}:{start + 1}: {BEGIN} without {END}")
        if not todo:
            raise RegionError(f"{filename}:{start + 1}: region has no {TODO} line for the learner")
        owner = _owner(lines, start, len(indent)) or "this"
        out += todo
        out.append(f'{indent}raise NotImplementedError("TODO: write {owner}()")')
        i += 1  # skip the END line
    return "\n".join(out) + "\n"


def solution_files() -> list[Path]:
    return sorted(p for p in SOLUTIONS.glob("ex*.py") if EXERCISE_FILE.fullmatch(p.name))


def generate() -> dict[Path, str]:
    """Every exercise file's path and the text it should have."""
    return {
        EXERCISES / path.name: make_exercise(path.read_text(encoding="utf-8"), str(path))
        for path in solution_files()
    }


def drift() -> list[str]:
    """Differences between exercises/ and what the solutions generate, as diff lines."""
    problems: list[str] = []
    wanted = generate()
    for path, text in wanted.items():
        have = path.read_text(encoding="utf-8") if path.exists() else ""
        if have != text:
            rel = path.relative_to(ROOT).as_posix()
            old, new = f"{rel} (in the repository)", f"{rel} (generated)"
            diff = difflib.unified_diff(have.splitlines(), text.splitlines(), old, new, n=1)
            problems += (line.rstrip("\n") for line in diff)
    for path in sorted(EXERCISES.glob("ex*.py")):
        if EXERCISE_FILE.fullmatch(path.name) and path not in wanted:
            rel = path.relative_to(ROOT).as_posix()
            problems.append(f"{rel} has no solution in solutions/")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="only compare; exit 1 if exercises/ is out of date"
    )
    args = parser.parse_args(argv)
    try:
        if args.check:
            problems = drift()
            if problems:
                print("\n".join(problems))
                print("\nexercises/ is out of date: run python tools/make_exercises.py")
                return 1
            print(f"exercises/ matches solutions/ ({len(solution_files())} exercises)")
            return 0
        for path, text in generate().items():
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                path.write_text(text, encoding="utf-8")
                print(f"wrote {path.relative_to(ROOT).as_posix()}")
    except RegionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
