"""make deb and make rpm: reproducible bytes, and real file targets that rebuild only on change."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from pkgbuild import Built, copy_project, make


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def project(default: Built, tmp_path: Path) -> Path:
    """The default project, built, copied elsewhere: a rebuild here leaves the shared one alone."""
    return copy_project(default, tmp_path / "elsewhere")


def test_two_builds_in_different_directories_give_the_same_bytes(default: Built, project: Path) -> None:
    result = make(project, "clean", "deb", "rpm", env=default.env())
    assert result.returncode == 0, result.stdout[-4000:]
    assert "dpkg-buildpackage" in result.stdout and "rpmbuild" in result.stdout
    assert sha256(project / "dist" / default.deb.name) == sha256(default.deb)
    assert sha256(project / "dist" / default.rpm.name) == sha256(default.rpm)


def test_a_second_build_in_the_same_directory_gives_the_same_bytes(default: Built, project: Path) -> None:
    first = packages(project)
    result = make(project, "clean", "package", env=default.env())
    assert result.returncode == 0, result.stdout[-4000:]
    assert packages(project) == first
    assert sorted(first) == sorted([default.deb.name, default.rpm.name])


def packages(project: Path) -> dict[str, str]:
    built = (project / "dist").iterdir()
    return {path.name: sha256(path) for path in built if path.suffix in (".deb", ".rpm")}


def test_make_deb_with_nothing_changed_runs_nothing(default: Built, project: Path) -> None:
    deb = project / "dist" / default.deb.name
    before = deb.stat().st_mtime_ns
    assert make(project, "--question", "deb", "rpm").returncode == 0
    result = make(project, "deb", "rpm", env=default.env())
    assert result.returncode == 0
    assert "dpkg-buildpackage" not in result.stdout and "rpmbuild" not in result.stdout
    assert "Nothing to be done for 'deb'" in result.stdout
    assert deb.stat().st_mtime_ns == before


@pytest.mark.parametrize("changed", ["src", "debian/postinst", "conf", "pyproject.toml"])
def test_changing_a_source_file_rebuilds_the_packages(default: Built, project: Path, changed: str) -> None:
    path = {
        "src": project / "src" / default.package / "config.py",
        "debian/postinst": project / "debian" / f"{default.slug}.postinst",
        "conf": project / "conf" / f"{default.slug}.conf",
        "pyproject.toml": project / "pyproject.toml",
    }[changed]
    path.write_text(path.read_text() + "\n# changed\n")
    assert make(project, "--question", "deb").returncode == 1
    assert make(project, "--question", "rpm").returncode == 1
    result = make(project, "deb", env=default.env())
    assert result.returncode == 0, result.stdout[-4000:]
    assert "dpkg-buildpackage -us -uc -b" in result.stdout
    assert make(project, "--question", "deb").returncode == 0
