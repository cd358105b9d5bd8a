"""Fixtures of the fast tier: one rendered and built project per init-system choice."""

from __future__ import annotations

from pathlib import Path

import pytest
from pre_gen_project import INIT_SYSTEMS
from support import PACKAGE_PATHS, render, run


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`project` runs each test for every init-system choice, or for those whose files
    the test's `ships` mark names (`@pytest.mark.ships("systemd")`)."""
    if "project" in metafunc.fixturenames:
        mark = metafunc.definition.get_closest_marker("ships")
        choices = [c for c in INIT_SYSTEMS if mark is None or c in ("all", *mark.args)]
        metafunc.parametrize("project", choices, indirect=True, scope="session")


@pytest.fixture(scope="session")
def project(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The defaults and this init system, rendered and built with the packages' paths."""
    path = render(tmp_path_factory.mktemp(f"render-{request.param}"), init_system=request.param)
    result = run(["make", "-C", str(path), "build", *PACKAGE_PATHS])
    assert result.returncode == 0, result.stderr
    return path


@pytest.fixture(scope="session")
def installed(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project installed the way the .deb does, into an empty DESTDIR."""
    destdir = tmp_path_factory.mktemp("destdir")
    result = run(["make", "-C", str(project), "install", f"DESTDIR={destdir}", *PACKAGE_PATHS])
    assert result.returncode == 0, result.stderr
    return destdir
