"""Fixtures of the system tier: real Debian roots (roots.py) run as sysvinit hosts (sysv.py), booted
containers (nspawn.py) and supervisors (supervisors.py).

Every fixture here is a factory, so that a test can ask for several roots (say, a fleet of hosts);
all of them are torn down when the test ends, whether it passed or not. When it failed, the logs
of what ran inside are printed first (pytest shows them under "Captured stdout teardown").

The roots are of one Debian release, the test's `release` parameter: a test that uses a root runs
on bookworm and trixie (MATRIX), or on the releases its `@pytest.mark.releases(...)` names. With
PLATFORM_SKEL_NEXT=1 (`make test-next`) the trixie tests run on testing (roots.NEXT) instead, and
nothing else runs.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import nspawn
import pytest
import sysv
from nspawn import Container
from roots import NEXT, RELEASE_TESTED_ON_NEXT, SYSTEMD, SYSV, Flavour
from sandbox import Sandbox
from supervisors import KINDS, Supervisor
from support import render, require_root, require_tool, run
from sweep import sweep_stale
from sysv import SysvRoot

HOST_TOOLS = ("debootstrap", "unshare", "nsenter", "setpriv", "tar", "dpkg-deb")

_FAILED = pytest.StashKey[bool]()

# Where a test that takes a root runs, unless its `releases` marker says otherwise.
MATRIX = ("bookworm", "trixie")
NEXT_RUN = os.environ.get("PLATFORM_SKEL_NEXT") == "1"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "release" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("releases")
    releases = marker.args if marker else MATRIX
    if NEXT_RUN:
        releases = (NEXT,) if RELEASE_TESTED_ON_NEXT in releases else ()
    metafunc.parametrize("release", releases)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under `make test-next`, only the tests that run on testing are collected."""
    if not NEXT_RUN:
        return

    def on_next(item: pytest.Item) -> bool:
        return getattr(item, "callspec", None) is not None and item.callspec.params.get("release") == NEXT

    keep = [item for item in items if on_next(item)]
    config.hook.pytest_deselected(items=[item for item in items if item not in keep])
    items[:] = keep


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        item.stash[_FAILED] = True
    return report


@pytest.fixture(scope="session")
def system_host() -> None:
    """Root and the host tools, or fail (CI) / skip; removes what killed runs left behind."""
    require_root()
    require_tool(*HOST_TOOLS)
    sweep_stale()


def _print_logs(request: pytest.FixtureRequest, sandboxes: list[Sandbox]) -> None:
    if not request.node.stash.get(_FAILED, False):
        return
    for sandbox in sandboxes:
        for log in sorted(sandbox.work.glob("*.log")):
            text = log.read_text(errors="replace")
            if isinstance(sandbox, Container) and log == sandbox.console:
                text = sandbox.boot_log()
            print(f"----- {log} (last 4000 characters)\n{text[-4000:]}")
        if isinstance(sandbox, Container) and sandbox.leader:
            journal = sandbox.run(["journalctl", "-b", "-n", "200", "--no-pager"]).stdout
            print(f"----- journal of {sandbox.machine} (last 200 lines)\n{journal}")


@pytest.fixture
def sysv_root(
    system_host: None, release: str, request: pytest.FixtureRequest
) -> Iterator[Callable[..., SysvRoot]]:
    """`sysv_root(flavour=SYSV, hostname="testhost")`: a fresh root of the test's release run as a
    sysvinit host."""
    made: list[Sandbox] = []
    with contextlib.ExitStack() as stack:

        def make(flavour: Flavour = SYSV, hostname: str = "testhost") -> SysvRoot:
            root = stack.enter_context(sysv.sysv_root(flavour, hostname, release))
            made.append(root)
            return root

        yield make
        _print_logs(request, made)


@pytest.fixture
def systemd_container(
    system_host: None, release: str, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Container]]:
    """`systemd_container(flavour=SYSTEMD, private_network=True, allow_degraded=False)`: a booted
    root of the test's release."""
    require_tool("systemd-nspawn")
    made: list[Sandbox] = []
    with contextlib.ExitStack() as stack:

        def make(
            flavour: Flavour = SYSTEMD,
            *,
            private_network: bool = True,
            allow_degraded: bool = False,
        ) -> Container:
            container = stack.enter_context(
                nspawn.booted_container(
                    flavour, private_network=private_network, allow_degraded=allow_degraded, suite=release
                )
            )
            made.append(container)
            return container

        yield make
        _print_logs(request, made)


@pytest.fixture
def supervised(sysv_root: Callable[..., SysvRoot]) -> Iterator[Callable[..., Supervisor]]:
    """`supervised(root, KIND, "/etc/sv/foo")`: a started supervisor of a kind in supervisors.KINDS.

    It is stopped (svc -dx / sv exit) before its root is torn down.
    """
    with contextlib.ExitStack() as stack:

        def make(root: SysvRoot, kind: str, service_dir: str) -> Supervisor:
            return stack.enter_context(KINDS[kind](root, service_dir))

        yield make


@dataclass(frozen=True)
class ServiceDebs:
    """The default project built twice, as users do: 0.1.0, then 0.2.0 after `dch -v 0.2.0`."""

    project: Path
    v1: Path
    v2: Path


def _make_deb(project: Path) -> Path:
    result = run(["make", "-C", str(project), "deb"])
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    (deb,) = sorted((project / "dist").glob("*.deb"), key=lambda p: p.stat().st_mtime)[-1:]
    return deb


@pytest.fixture(scope="session")
def service_debs(tmp_path_factory: pytest.TempPathFactory) -> ServiceDebs:
    require_tool("make", "dpkg-buildpackage", "dch")
    project = render(tmp_path_factory.mktemp("service"))
    v1 = _make_deb(project)
    result = run(
        ["dch", "-v", "0.2.0", "--distribution", "unstable", "--force-distribution", "Second release."],
        cwd=project,
        env={"DEBFULLNAME": "Platform Team", "DEBEMAIL": "platform@example.com", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    v2 = _make_deb(project)
    assert re.search(r"_0\.1\.0_all\.deb$", v1.name) and re.search(r"_0\.2\.0_all\.deb$", v2.name)
    return ServiceDebs(project, v1, v2)
