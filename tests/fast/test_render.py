"""Rendering: every init-system choice gives exactly its files, fully rendered."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from pre_gen_project import INIT_SYSTEMS
from support import INIT_FILES, TEMPLATE, cookiecutter_cli, init_project_files, render

COMMON = {
    ".cookiecutter.json",
    ".cruft.json",
    ".gitignore",
    ".ci/install-tools",
    ".github/workflows/ci.yml",
    ".gitlab-ci.yml",
    "Makefile",
    "README.md",
    "pyproject.toml",
    "requirements-dev.txt",
    "bin/my-service",
    "lib/prepare-dirs",
    "conf/my-service.conf",
    "conf/default/my-service",
    "conf/logrotate/my-service",
    "debian/changelog",
    "debian/control",
    "debian/copyright",
    "debian/my-service.postinst",
    "debian/my-service.prerm",
    "debian/my-service.postrm",
    "debian/rules",
    "debian/source/format",
    "deploy/check-health",
    "deploy/deploy-host",
    "deploy/install-and-check",
    "deploy/ansible/site.yml",
    "deploy/ansible/hosts.example",
    "deploy/apt/distributions",
    "deploy/apt/my-service.sources",
    "docs/deploy.md",
    "docs/packaging.md",
    "man/my-service.8",
    "rpm/changelog.awk",
    "rpm/my-service.rpmlintrc",
    "rpm/my-service.spec",
    "rpm/rpmlint.toml",
    "tools/vendor.py",
    "wheels/requirements.txt",
    "src/my_service/__init__.py",
    "src/my_service/__main__.py",
    "src/my_service/config.py",
    "src/my_service/daemon.py",
    "src/my_service/health.py",
    "tests/conftest.py",
    "tests/test_daemon.py",
    "tests/bats/install.bats",
}
EXECUTABLES = {
    "bin/my-service",
    "lib/prepare-dirs",
    "deploy/check-health",
    "debian/rules",
    ".ci/install-tools",
} | {path for path, mode in init_project_files("all", "my-service").items() if mode == 0o755}


# What the generated .gitignore leaves out: build output and caches of the project's own tests.
IGNORED = {"build", "dist", "__pycache__", ".pytest_cache", ".ruff_cache"}


def source_files(project: Path) -> set[str]:
    return {
        str(path.relative_to(project))
        for path in project.rglob("*")
        if path.is_file() and not IGNORED.intersection(path.relative_to(project).parts)
    }


def test_defaults_render_my_service(tmp_path: Path) -> None:
    assert render(tmp_path) == tmp_path / "my-service"
    assert os.listdir(tmp_path) == ["my-service"]


@pytest.mark.parametrize("init_system", INIT_SYSTEMS)
def test_each_choice_renders_exactly_its_files(tmp_path: Path, init_system: str) -> None:
    project = render(tmp_path, init_system=init_system)
    assert source_files(project) == COMMON | set(init_project_files(init_system, "my-service"))


def test_the_tests_table_has_a_row_for_every_init_system_of_the_hook() -> None:
    assert {*INIT_FILES, "all"} == set(INIT_SYSTEMS)


def test_nothing_is_left_unrendered(project: Path) -> None:
    for name in source_files(project) | {str(p.relative_to(project)) for p in (project / "build").rglob("*")}:
        path = project / name
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert not re.search(r"\{\{-?\s*cookiecutter|\{%|\{#", text), path
            # Ansible's own expressions are the only {{ }} a project ships.
            if "ansible" not in path.parts:
                assert "{{" not in text, path


def test_built_files_have_every_path_substituted(project: Path) -> None:
    for path in (project / "build").rglob("*"):
        if path.is_file() and path.name != "paths":
            assert not re.search(r"@[A-Za-z_]+@", path.read_text(encoding="utf-8")), path


def test_scripts_are_executable_and_the_rest_is_not(project: Path) -> None:
    for name in source_files(project):
        mode = (project / name).stat().st_mode & 0o777
        assert mode == (0o755 if name in EXECUTABLES else 0o644), f"{name}: {oct(mode)}"


def test_answers_are_recorded_without_local_paths(project: Path) -> None:
    record = json.loads((project / ".cookiecutter.json").read_text(encoding="utf-8"))["cookiecutter"]
    assert record["project_slug"] == "my-service"
    assert record["service_user"] == "my-service"
    assert record["_template"] == str(TEMPLATE)
    assert not any(key.startswith("__") or key in ("_output_dir", "_repo_dir") for key in record)


def test_replaying_the_record_renders_the_same_project(tmp_path: Path) -> None:
    first = render(tmp_path / "first", project_name="Foo Bar", init_system="sysv", port="9000")
    result = cookiecutter_cli(
        "--replay-file", str(first / ".cookiecutter.json"), "-o", str(tmp_path / "again"), str(TEMPLATE)
    )
    assert result.returncode == 0, result.stderr
    again = tmp_path / "again" / "foo-bar"
    assert source_files(again) == source_files(first)
    for name in source_files(first) - {"debian/changelog", "debian/copyright"}:
        assert (again / name).read_bytes() == (first / name).read_bytes(), name
