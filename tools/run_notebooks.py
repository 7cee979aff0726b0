#!/usr/bin/env python3
"""Re-execute the course notebooks in place, so their stored outputs are fresh.

    .venv/bin/python tools/run_notebooks.py                  # every notebooks/*.ipynb
    .venv/bin/python tools/run_notebooks.py 02 notebooks/05_server.ipynb

A name may be a path or the start of a file name in ``notebooks/`` ("02").
Each notebook runs top to bottom in a fresh kernel started from this Python,
with ``notebooks/`` as its working directory -- exactly as ``pytest --nbval``
runs it.  A cell that raises stops that notebook and nothing is written.

The stored outputs are what ``pytest --nbval`` compares against, so run this
after changing a notebook or the code it shows, then look at the diff.

Only what matters is kept in the JSON: the kernel's name and the language, no
Python version, no execution times, no widget state (its ids are random), so
that re-running on another machine changes nothing that was not meant to change.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"

#: Seconds one cell may take before the run fails (as --nbval-cell-timeout).
CELL_TIMEOUT = 60

#: The only notebook-level metadata kept.
CLEAN_METADATA = {
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}


def find(names: list[str]) -> list[Path]:
    if not names:
        return sorted(NOTEBOOKS.glob("[0-9]*.ipynb"))
    found = []
    for name in names:
        path = Path(name)
        if path.suffix == ".ipynb" and path.exists():
            found.append(path.resolve())
            continue
        matches = sorted(NOTEBOOKS.glob(f"{name}*.ipynb"))
        if len(matches) != 1:
            sys.exit(f"{name!r} matches {len(matches)} notebooks in {NOTEBOOKS}")
        found.extend(matches)
    return found


def clean(nb: nbformat.NotebookNode) -> None:
    """Drop machine- and run-specific metadata; keep cell tags and ids.

    Consecutive pieces of the same stream are joined into one output: where the
    kernel happened to flush ``stdout`` mid-line is an accident of timing.
    """
    nb.metadata = nbformat.from_dict(CLEAN_METADATA)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("ExecuteTime", None)
        cell.metadata.pop("collapsed", None)
        cell.metadata.pop("scrolled", None)
        if cell.cell_type == "code":
            cell.outputs = _join_streams(cell.outputs)


def _join_streams(outputs: list) -> list:
    joined: list = []
    for output in outputs:
        previous = joined[-1] if joined else None
        if (
            previous is not None
            and output.output_type == previous.output_type == "stream"
            and output.name == previous.name
        ):
            previous.text = "".join(previous.text) + "".join(output.text)
        else:
            joined.append(output)
    return joined


def run(path: Path, timeout: int = CELL_TIMEOUT) -> float:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
        record_timing=False,
        store_widget_state=False,
    )
    start = time.monotonic()
    client.execute()
    elapsed = time.monotonic() - start
    clean(nb)
    nbformat.validate(nb)
    with path.open("w", encoding="utf-8", newline="\n") as file:
        nbformat.write(nb, file)
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebooks (paths or number prefixes)")
    parser.add_argument(
        "--timeout",
        type=int,
        default=CELL_TIMEOUT,
        help="seconds one cell may take (default: %(default)s, as pytest --nbval-cell-timeout)",
    )
    args = parser.parse_args(argv)
    total = 0.0
    for path in find(args.names):
        print(f"{path.relative_to(ROOT)} ...", end=" ", flush=True)
        try:
            elapsed = run(path, args.timeout)
        except Exception as exc:
            print("FAILED")
            print(f"  {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        total += elapsed
        print(f"{elapsed:.1f} s")
    print(f"total {total:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
