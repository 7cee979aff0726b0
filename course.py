#!/usr/bin/env python3
"""The course's two commands, with all set-up done for you.

    python3 course.py lab     open the course in JupyterLab (first notebook)
    python3 course.py test    run the whole test suite (what CI runs)

Both first make sure a virtual environment in ``.venv`` holds everything in
``requirements.txt`` (the chat package itself included, editable).  The
environment is rebuilt only when ``requirements.txt`` or ``pyproject.toml``
change, so the second run starts at once.  Anything after ``test`` goes to
pytest (``python3 course.py test -k protocol -x``); anything after ``lab`` goes
to JupyterLab.

Only the Python standard library is used here: this script must run on a fresh
machine with nothing but Python 3.10+.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".course-installed"
INPUTS = (ROOT / "requirements.txt", ROOT / "pyproject.toml")
FIRST_NOTEBOOK = "notebooks/00_welcome.ipynb"


def venv_python() -> Path:
    """The interpreter inside .venv (Scripts\\python.exe on Windows)."""
    if os.name == "nt":
        return VENV / "Scripts" / "python.exe"
    return VENV / "bin" / "python"


def fingerprint() -> str:
    digest = hashlib.sha256()
    for path in INPUTS:
        digest.update(path.read_bytes())
    digest.update(sys.version.encode())
    return digest.hexdigest()


def ensure_environment() -> Path:
    """Create .venv and install the requirements, unless already up to date."""
    if sys.version_info < (3, 10):  # noqa: UP036 -- say so clearly on old Pythons
        sys.exit(f"Python 3.10 or newer is needed; this is {sys.version.split()[0]}.")
    python = venv_python()
    wanted = fingerprint()
    if python.exists() and STAMP.exists() and STAMP.read_text() == wanted:
        return python
    if not python.exists():
        print(f"Creating a virtual environment in {VENV} ...", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    print("Installing requirements (first run only; a few minutes) ...", flush=True)
    pip = [str(python), "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*pip, "install", "--quiet", "--upgrade", "pip"], cwd=ROOT, check=True)
    subprocess.run([*pip, "install", "--quiet", "-r", "requirements.txt"], cwd=ROOT, check=True)
    STAMP.write_text(wanted)
    return python


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"lab", "test"}:
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    python = ensure_environment()
    if command == "test":
        args = [str(python), "-m", "pytest", *rest]
    else:
        args = [str(python), "-m", "jupyter", "lab", FIRST_NOTEBOOK, *rest]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            # Containers often run as root; JupyterLab then refuses to start unless told.
            args.append("--allow-root")
    try:
        return subprocess.run(args, cwd=ROOT).returncode
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
