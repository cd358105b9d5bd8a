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
from support import render
from sysv import SysvRoot

if TYPE_CHECKING:
    from conftest import ServiceDebs

pytestmark = pytest.mark.usefixtures("system_host")

PROJECT = "/var/tmp/project"
# Releases whose lintian still takes files in /lib. From Debian 13 on, /lib is only an alias of
# /usr/lib and lintian names each file there an error (aliased-location). A .deb built on 12 keeps
# its units in /lib/systemd/system, where 12's systemd.pc puts them and 12's debhelper alone looks
# (Debian moves no file to /usr before 13: dh_movetousr(1)); built on 13 they go to /usr/lib
# (test_deb.py, test_units_go_where_the_build_hosts_systemd_pc_says). So on the later releases
# that tag, on exactly those paths, is all lintian may say.
LIB_NOT_YET_ALIASED = ("bullseye", "bookworm")
ALIASED_DIRS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")


def copy_project(root: SysvRoot, project: Path) -> None:
    shutil.copytree(project, root.path(PROJECT), symlinks=True)


def aliased_paths(entries: dict[str, tuple[str, str]]) -> set[str]:
    """The .deb's entries under an aliased directory, as lintian points at them."""
    return {
        path.lstrip("/") + ("/" if mode.startswith("d") else "")
        for path, (mode, _) in entries.items()
        if path.lstrip("/").split("/")[0] in ALIASED_DIRS
    }


@pytest.mark.releases(*roots.RELEASES)
def test_P9_the_releases_lintian_passes_on_the_deb_built_here(
    sysv_root: Callable[..., SysvRoot], service_debs: ServiceDebs, release: str
) -> None:
    """The project's own `make lint-deb` (the package tier's rule: no error, no warning), run by the
    release's lintian on the 0.1.0 .deb built on this host."""
    root = sysv_root(roots.CHECK)
    # As the build host left it: the sources, build/ and dist/ with its .debs.
    copy_project(root, service_debs.project)
    deb = f"dist/{service_debs.v1.name}"
    began = time.monotonic()
    # -o: the .deb is what the host built; the root has no debhelper to build it again.
    result = root.run(["make", "-C", PROJECT, "-o", deb, f"DEB={deb}", "lint-deb"], timeout=300)
    took = time.monotonic() - began
    version = root.run(["lintian", "--version"]).stdout.strip()
    print(f"FIGURE: P9 {version} on {release}, {service_debs.v1.name}: rc {result.returncode} ({took:.1f} s)")
    print(result.stdout)
    hints = re.findall(r"^([EW]): \S+: (\S+)(?: (.*))?$", result.stdout, re.M)
    expected = set()
    if release not in LIB_NOT_YET_ALIASED:
        aliased = aliased_paths(deb_entries(service_debs.v1))
        expected = {("E", "aliased-location", f"[{path}]") for path in aliased}
    assert set(hints) == expected, result.stdout[-6000:] + result.stderr[-2000:]
    assert len(hints) == len(expected)
    assert (result.returncode == 0) == (not expected), result.stdout[-6000:] + result.stderr[-2000:]


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
