"""Package tier: build the generated project's .deb and .rpm once per variant and worker.

Every variant is rendered into the worker's own temporary directory and built with
`make deb rpm`; tests only read what the build left, so they share it. A test that
must rebuild works on its own copy of the project.
"""

from __future__ import annotations

import pytest
from pkgbuild import VARIANTS, Builds, Built
from support import require_tool

BUILD_TOOLS = ("make", "dpkg-buildpackage", "dh", "dh_python3", "dpkg-deb", "rpmbuild", "rpm")


@pytest.fixture(scope="session")
def builds(tmp_path_factory: pytest.TempPathFactory) -> Builds:
    return Builds(tmp_path_factory.mktemp("package"))


@pytest.fixture(scope="session", params=list(VARIANTS))
def built(request: pytest.FixtureRequest, builds: Builds) -> Built:
    require_tool(*BUILD_TOOLS)
    return builds[request.param]


@pytest.fixture(scope="session")
def default(builds: Builds) -> Built:
    require_tool(*BUILD_TOOLS)
    return builds["all"]
