"""P9 with each promised release's own tools (roots.RELEASES), in a root of that release
(roots.CHECK): its lintian on the .deb built here, its python3 and pytest on the daemon's tests.

Installing, running, upgrading and purging on each release are P2 and P6 (test_lifecycle.py).
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import roots
from pkgbuild import deb_entries
from service import UNIT
from support import render
from sysv import SysvRoot

if TYPE_CHECKING:
    from conftest import ServiceDebs

pytestmark = pytest.mark.usefixtures("system_host")

PROJECT = "/var/tmp/project"
# The releases whose hosts install the .deb built here, on the build machines' own (roots.SUITE).
# A newer release's hosts build it themselves (README.md's first command works on both): a .deb
# built on 12 keeps its units in /lib, where 12's systemd.pc and debhelper put them, and from 13
# on /lib is only an alias of /usr/lib, which 13's lintian names an error (aliased-location).
HOST_BUILT_FOR = roots.RELEASES[: roots.RELEASES.index(roots.SUITE) + 1]


def copy_project(root: SysvRoot, project: Path) -> None:
    shutil.copytree(project, root.path(PROJECT), symlinks=True)


@pytest.mark.releases(*roots.RELEASES)
def test_P9_the_releases_lintian_passes_on_the_deb_its_hosts_install(
    sysv_root: Callable[..., SysvRoot], service_debs: ServiceDebs, tmp_path: Path, release: str
) -> None:
    """The project's own `make lint-deb` (the package tier's rule: no error, no warning), run by the
    release's lintian: on the 0.1.0 .deb built on this host, or for a newer release on the .deb its
    own debhelper builds, with the units where its systemd.pc says."""
    builds = release not in HOST_BUILT_FOR
    root = sysv_root(roots.BUILD if builds else roots.CHECK)
    if builds:
        copy_project(root, render(tmp_path))
        deb_option: list[str] = []
    else:
        # As the build host left it: the sources, build/ and dist/ with its .debs; -o: the .deb is
        # what the host built, the root has no debhelper to build it again.
        copy_project(root, service_debs.project)
        deb = f"dist/{service_debs.v1.name}"
        deb_option = ["-o", deb, f"DEB={deb}"]
    began = time.monotonic()
    result = root.run(["make", "-C", PROJECT, *deb_option, "lint-deb"], timeout=300)
    took = time.monotonic() - began
    version = root.run(["lintian", "--version"]).stdout.strip()
    built = "built there" if builds else "built here"
    print(f"FIGURE: P9 {version} on {release}, .deb {built}: rc {result.returncode} ({took:.1f} s)")
    print(result.stdout)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert not re.findall(r"^[EW]: ", result.stdout, re.M), result.stdout[-6000:]
    if builds:
        (deb_path,) = root.path(f"{PROJECT}/dist").glob("*.deb")
        unitdir = root.run(["pkg-config", "--variable=systemdsystemunitdir", "systemd"]).stdout.strip()
        assert unitdir == "/usr/lib/systemd/system"
        assert f"{unitdir}/{UNIT}" in deb_entries(deb_path)


@pytest.mark.releases(*roots.RELEASES)
def test_P9_the_daemons_tests_pass_on_the_releases_python3_and_pytest(
    sysv_root: Callable[..., SysvRoot], tmp_path: Path, release: str
) -> None:
    """tests/test_daemon.py of the default project, freshly generated, run by the release's
    python3 -m pytest (its python3-pytest) in the root's own network namespace: only loopback."""
    root = sysv_root(roots.CHECK)
    copy_project(root, render(tmp_path))
    began = time.monotonic()
    result = root.sh(
        f"cd {PROJECT} && exec python3 -m pytest -p no:cacheprovider tests/test_daemon.py",
        env={"PYTHONDONTWRITEBYTECODE": "1"},
        timeout=300,
    )
    took = time.monotonic() - began
    header = re.search(r"^platform \S+ -- Python (\d+\.\d+)\.\d+, pytest-", result.stdout, re.M)
    collected = re.search(r"^collected (\d+) items?$", result.stdout, re.M)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    print(f"FIGURE: P9 daemon tests {release}: {summary.strip('= ')} ({took:.1f} s)")
    assert header and collected, result.stdout[-6000:] + result.stderr[-2000:]
    # Testing's python3 (`make test-next`) is whatever it is this week: only a release's is promised.
    if release in roots.PYTHON_VERSION:
        assert header.group(1) == roots.PYTHON_VERSION[release], header.group(0)
    # Every test collected passed: none failed, errored or was skipped.
    assert re.fullmatch(rf"=+ {collected.group(1)} passed in [\d.]+s(?: \([\d:]+\))? =+", summary), (
        result.stdout[-6000:] + result.stderr[-2000:]
    )
    assert int(collected.group(1)) > 0
    assert result.returncode == 0
