"""Settings for every tier of the template's tests."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

# The venv's tools (ruff, ansible-playbook, cookiecutter) for the generated projects'
# Makefiles and for require_tool, however pytest was started.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
# The generated projects' make lint and test run those same pinned tools (test_tools.py
# checks the pins match), rather than `make deps` a venv for every rendered project.
os.environ.update(SHELLCHECK="shellcheck", RUFF="ruff", PYTEST="pytest")

_OWNED_TMP = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    """One temporary directory for the whole run, xdist workers included, removed at the end:
    cookiecutter never deletes the copies of its hooks, nor lintian its mldbm files."""
    if "PLATFORM_SKEL_TMP" not in os.environ:
        os.environ["PLATFORM_SKEL_TMP"] = tempfile.mkdtemp(prefix="platform-skel-tests-")
        config.stash[_OWNED_TMP] = os.environ["PLATFORM_SKEL_TMP"]
    os.environ["TMPDIR"] = os.environ["PLATFORM_SKEL_TMP"]
    tempfile.tempdir = None


def pytest_unconfigure(config: pytest.Config) -> None:
    if _OWNED_TMP in config.stash:
        shutil.rmtree(config.stash[_OWNED_TMP], ignore_errors=True)
