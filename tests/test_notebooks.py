"""The notebooks as files: clean JSON, stored outputs, and the promises the course makes.

Running the notebooks is nbval's job (``pytest --nbval``, see pyproject.toml): every code
cell is re-run and compared with its stored output.  These tests check what nbval does not:
that the JSON holds nothing machine-specific, that every notebook was executed and stored
without errors, that no notebook uses a fixed port, and that each notebook of the course
points to its exercise.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import nbformat
import pytest
from nbval.plugin import get_sanitize_patterns

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
EXERCISES = {
    "01": "ex01_echo_server",
    "02": "ex02_frame_decoder",
    "03": "ex03_validate_message",
    "04": "ex04_user_registry",
    "05": "ex05_client_outbox",
    "06": "ex06_receive_loop",
    "07": "ex07_token_bucket",
}


def load(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def code_cells(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def run_notebooks_module():
    spec = importlib.util.spec_from_file_location("run_notebooks", ROOT / "tools/run_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_course_has_its_notebooks_in_order():
    names = [path.stem for path in NOTEBOOKS]
    assert names[:9] == [
        "00_welcome",
        "01_sockets",
        "02_framing",
        "03_protocol",
        "04_threads",
        "05_server",
        "06_client",
        "07_robustness",
        "08_next_steps",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_valid_and_keeps_only_clean_metadata(path):
    notebook = load(path)
    nbformat.validate(notebook)
    assert set(notebook.metadata) <= {"kernelspec", "language_info"}
    assert notebook.metadata.get("language_info", {}) in ({}, {"name": "python"})
    for cell in notebook.cells:
        assert not {"execution", "ExecuteTime", "collapsed", "scrolled"} & set(cell.metadata)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_was_run_top_to_bottom_and_stored_without_errors(path):
    cells = code_cells(load(path))
    counts = [cell.execution_count for cell in cells]
    assert None not in counts, "run tools/run_notebooks.py to store outputs"
    assert counts == sorted(counts), "cells were run out of order"
    errors = [out for cell in cells for out in cell.outputs if out.output_type == "error"]
    assert not errors


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_code_never_uses_the_default_port(path):
    for cell in code_cells(load(path)):
        assert not re.search(r"\b12345\b", cell.source), cell.source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_nbval_marker_stands_alone_on_its_line_with_a_reason_below(path):
    # nbval only honours "# NBVAL_IGNORE_OUTPUT" when the comment is exactly the marker;
    # "# NBVAL_IGNORE_OUTPUT -- because ..." is silently ignored.  The reason goes on the
    # next comment line, so a reader sees why this output is not compared.
    for cell in code_cells(load(path)):
        lines = [line.strip() for line in cell.source.splitlines()]
        for number, line in enumerate(lines):
            if "NBVAL_" in line:
                assert re.fullmatch(r"# NBVAL_[A-Z_]+", line), line
                following = lines[number + 1] if number + 1 < len(lines) else ""
                assert following.startswith("#"), f"no reason given below {line!r}"


@pytest.mark.parametrize("number", sorted(EXERCISES))
def test_course_notebook_points_to_its_exercise_and_the_exercise_exists(number):
    (path,) = [p for p in NOTEBOOKS if p.name.startswith(number)]
    text = "\n".join(cell.source for cell in load(path).cells)
    exercise = EXERCISES[number]
    assert f"exercises/{exercise}.py" in text
    assert f"-m exercises {number}" in text
    assert (ROOT / "exercises" / f"{exercise}.py").exists()


def test_readme_lists_every_notebook():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for path in NOTEBOOKS:
        assert f"`{path.stem}`" in readme


def test_sanitize_file_has_rules_that_compile():
    text = (ROOT / "notebooks" / "sanitize.cfg").read_text(encoding="utf-8")
    patterns = get_sanitize_patterns(text)
    assert len(patterns) >= 6
    for regex, replace in patterns:
        re.sub(regex, replace, "2026-11-25 21:51:15,123 127.0.0.1:43117 [21:51:15]")


def test_sanitize_rules_mask_ports_and_times():
    text = (ROOT / "notebooks" / "sanitize.cfg").read_text(encoding="utf-8")
    line = (
        "2026-11-25 21:51:15,123 - INFO - New connection from 127.0.0.1:43117 "
        "('127.0.0.1', 51234) [21:51:15] {'timestamp': 1795643717.45} --port 40000"
    )
    for regex, replace in get_sanitize_patterns(text):
        line = re.sub(regex, replace, line)
    assert not re.search(r"\d{4}", line.replace("127.0.0.1", "")), line


def test_run_notebooks_strips_machine_specific_metadata():
    clean = run_notebooks_module().clean
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("1 + 1"), nbformat.v4.new_markdown_cell("hi")]
    )
    notebook.metadata = {
        "kernelspec": {"name": "python3", "display_name": "my env", "language": "python"},
        "language_info": {"name": "python", "version": "3.11.2", "pygments_lexer": "ipython3"},
        "widgets": {"application/vnd.jupyter.widget-state+json": {}},
    }
    notebook.cells[0].metadata = {"execution": {"iopub.status.busy": "2026"}, "tags": ["keep"]}
    clean(notebook)
    assert notebook.metadata == run_notebooks_module().CLEAN_METADATA
    assert notebook.cells[0].metadata == {"tags": ["keep"]}


def test_run_notebooks_joins_pieces_of_one_stream():
    clean = run_notebooks_module().clean
    cell = nbformat.v4.new_code_cell("print('server running:', False)")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="server running:"),
        nbformat.v4.new_output("stream", name="stdout", text=" False\n"),
        nbformat.v4.new_output("stream", name="stderr", text="warning\n"),
    ]
    notebook = nbformat.v4.new_notebook(cells=[cell])
    clean(notebook)
    assert [(out.name, out.text) for out in notebook.cells[0].outputs] == [
        ("stdout", "server running: False\n"),
        ("stderr", "warning\n"),
    ]
