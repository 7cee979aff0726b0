"""The notebooks as files: clean JSON, stored outputs, and the promises the course makes.

Running the notebooks is nbval's job (``pytest --nbval``, see pyproject.toml): every code
cell is re-run and compared with its stored output.  These tests check what nbval does not:
that the JSON holds nothing machine-specific, that every notebook was executed and stored
without errors, that no notebook uses a fixed port, that each notebook of the course ends by
naming its exercises, and that what the notebooks say stays true: every cell whose output is not
compared asserts its claim, no notebook shuts down a listening socket (ENOTCONN on macOS and
Windows), and the names and files the text points to exist.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
from pathlib import Path

import nbformat
import pytest
from nbval.plugin import get_sanitize_patterns

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
#: The course's notebooks, in order.
COURSE = [
    "00_welcome",
    "01_sockets",
    "02_framing",
    "03_protocol",
    "04_threads",
    "05_server",
    "06_client",
    "07_robustness",
    "08_event_loop",
    "09_performance",
    "10_extensions",
    "11_web",
    "12_scale_out",
    "13_next_steps",
]

#: The exercises each notebook ends with (the plan in exercises/: one concept, one TODO each).
EXERCISES = {
    "01": ["ex01_listen", "ex02_connect", "ex03_recv_all", "ex04_echo_server"],
    "02": ["ex05_sendall", "ex06_encode_frame", "ex07_frame_decoder"],
    "03": ["ex08_validate_message"],
    "04": ["ex09_accept_and_spawn", "ex10_user_registry", "ex11_broadcast"],
    "05": ["ex12_client_outbox", "ex13_logging", "ex14_graceful_shutdown"],
    "06": ["ex15_receive_loop", "ex16_command_parser"],
    "07": ["ex17_token_bucket", "ex18_timeouts"],
    "08": ["ex19_nonblocking", "ex20_selectors_loop", "ex21_capstone_server"],
    "10": ["ex22_room_routing", "ex23_history_query", "ex24_feature_negotiation"],
    "12": ["ex25_name_claim"],
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
    assert names == COURSE


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


def markdown_text(notebook: nbformat.NotebookNode) -> str:
    return "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")


def code_trees(notebook: nbformat.NotebookNode) -> list[tuple[str, ast.Module]]:
    """Each code cell's source and syntax tree (IPython's ``!`` lines left out)."""
    trees = []
    for cell in code_cells(notebook):
        lines = [line for line in cell.source.splitlines() if not line.lstrip().startswith("!")]
        trees.append((cell.source, ast.parse("\n".join(lines))))
    return trees


@pytest.mark.parametrize("number", sorted(EXERCISES))
def test_course_notebook_ends_by_naming_its_exercises_and_the_checker_command(number):
    (path,) = [p for p in NOTEBOOKS if p.name.startswith(number)]
    exercises, recap = load(path).cells[-2:]  # the exercises, then the recap
    assert exercises.source.startswith("## Exercise")
    assert recap.source.startswith("## Recap")
    for exercise in EXERCISES[number]:
        assert f"exercises/{exercise}.py" in exercises.source, exercise
        assert f"-m exercises {exercise[2:4]}" in exercises.source, exercise
    assert '!cd .. && "{sys.executable}" -m exercises' in exercises.source


@pytest.mark.parametrize("number", sorted(EXERCISES))
def test_the_exercises_a_notebook_names_exist(number):
    for exercise in EXERCISES[number]:
        assert (ROOT / "exercises" / f"{exercise}.py").exists(), exercise


def test_the_exercise_plan_numbers_each_exercise_once_in_order():
    numbers = [int(name[2:4]) for names in EXERCISES.values() for name in names]
    assert numbers == list(range(1, len(numbers) + 1))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_cell_whose_output_is_not_compared_asserts_what_it_shows(path):
    # nbval does not compare the output of such a cell, so an assert is all that checks the
    # claim the text makes about it (notebook 09's GIL demo once said the opposite of its text).
    for source, tree in code_trees(load(path)):
        if "# NBVAL_IGNORE_OUTPUT" in source:
            assert any(isinstance(node, ast.Assert) for node in ast.walk(tree)), source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_never_shuts_down_a_listening_socket(path):
    # shutdown() of a listening socket wakes accept() on Linux but raises ENOTCONN on macOS
    # and Windows.  The notebooks stop accept loops with a timeout and a flag instead.
    listeners: set[str] = set()
    calls: list[tuple[str, str]] = []
    for _, tree in code_trees(load(path)):
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                func = node.value.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name == "create_server":
                    listeners.update(t.id for t in node.targets if isinstance(t, ast.Name))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                target = node.func.value
                if isinstance(target, ast.Name) and node.func.attr in ("listen", "shutdown"):
                    calls.append((target.id, node.func.attr))
                    if node.func.attr == "listen":
                        listeners.add(target.id)
    shut = {name for name, method in calls if method == "shutdown"}
    assert not shut & listeners, f"shutdown() of a listening socket: {shut & listeners}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_text_names_no_private_name_it_does_not_define(path):
    # Private names of the package change without notice; the text names modules and public
    # names.  A private name the notebook defines itself (a method of its own class) is fine.
    notebook = load(path)
    defined = {
        node.name
        for _, tree in code_trees(notebook)
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.ClassDef))
    }
    for name in re.findall(r"`[\w.]*?\b(_[A-Za-z]\w*)", markdown_text(notebook)):
        assert name in defined, name


def resolve(dotted: str) -> object:
    """The object a dotted name such as ``chat.core.ChatCore.receive`` stands for."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            obj = getattr(obj, attribute)
        return obj
    raise ImportError(dotted)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_text_points_only_to_names_and_files_that_exist(path):
    text = markdown_text(load(path))
    for dotted in set(re.findall(r"`(chat(?:\.\w+)+)", text)):
        assert resolve(dotted) is not None, dotted
    for file in set(re.findall(r"`((?:chat|benchmarks|tests|tools)/[\w/]+\.\w+)`", text)):
        assert (ROOT / file).exists(), file


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_refers_only_to_notebooks_that_exist(path):
    text = markdown_text(load(path))
    stems = {p.stem for p in NOTEBOOKS}
    for stem in re.findall(r"\b\d\d_[a-z]+(?:_[a-z]+)*\b", text):
        assert stem in stems, stem
    for number in re.findall(r"[Nn]otebooks? \**(\d\d)\b", text):
        assert any(s.startswith(number) for s in stems), number


def test_readme_lists_every_notebook():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for path in NOTEBOOKS:
        assert f"`{path.stem}`" in readme


def test_readme_says_which_systems_ci_tests_and_which_are_supported():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Operating systems") :]
    section = section[: section.index("\n## ")]
    for system in ("Linux", "macOS", "Windows"):
        assert system in section
    assert "CI" in section


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
