"""`make release VERSION=x.y.z` (issue 11, item 4; no row of RELIABILITY.md): debian/changelog
gets a finalized entry, and every other place takes the version from there."""

from __future__ import annotations

import email.utils
import os
from pathlib import Path

import pytest
from support import render, require_tool, run

MAINTAINER = "Platform Team <platform@example.com>"


@pytest.fixture
def generated(tmp_path: Path) -> Path:
    return render(tmp_path, version="1.4.0")


def release(project: Path, *args: str):  # type: ignore[no-untyped-def]
    return run(["make", "-C", str(project), "--no-print-directory", "release", *args])


def make_variable(project: Path, name: str) -> str:
    result = run(["make", "-C", str(project), "-s", f"--eval=show: ; @echo $({name})", "show"])
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def entries(project: Path) -> list[str]:
    return (project / "debian" / "changelog").read_text(encoding="utf-8").split("\n\n" + project.name + " (")


def test_release_writes_a_finalized_entry_that_every_version_follows(generated: Path) -> None:
    first = (generated / "debian" / "changelog").read_text(encoding="utf-8")
    result = release(generated, "VERSION=1.5.0~rc1")
    assert result.returncode == 0, result.stderr

    top, rest = entries(generated)
    lines = top.split("\n")
    assert lines[:3] == [
        f"{generated.name} (1.5.0~rc1) unstable; urgency=medium",
        "",
        "  * Release 1.5.0~rc1.",
    ]
    maintainer, date = lines[4].removeprefix(" -- ").split("  ")
    assert lines[4].startswith(" -- ") and maintainer == MAINTAINER
    parsed = email.utils.parsedate_to_datetime(date)
    assert email.utils.format_datetime(parsed) == date  # RFC 2822, as dpkg-parsechangelog reads it
    assert generated.name + " (" + rest == first  # the history below is kept byte for byte
    assert make_variable(generated, "VERSION") == "1.5.0~rc1"
    assert make_variable(generated, "DEB") == f"dist/{generated.name}_1.5.0~rc1_all.deb"
    assert run(["make", "-C", str(generated), "build"]).returncode == 0
    man = (generated / "build" / "man" / f"{generated.name}.8").read_text(encoding="utf-8")
    assert f'"{generated.name} 1.5.0~rc1"' in man.split("\n")[0]
    version = run(
        ["python3", "-m", "my_service", "--version"], env={**os.environ, "PYTHONPATH": str(generated / "src")}
    )
    assert version.stdout == f"{generated.name} 1.5.0~rc1\n", version.stderr


def test_release_finalizes_an_unreleased_entry_with_its_notes(generated: Path) -> None:
    changelog = generated / "debian" / "changelog"
    draft = (
        f"{generated.name} (1.4.1) UNRELEASED; urgency=medium\n\n  * Faster health checks.\n"
        "    Continued on a second line.\n\n"
        " -- Dev One <dev@example.org>  Mon, 30 Nov 2026 10:00:00 +0000\n\n"
    )
    changelog.write_text(draft + changelog.read_text(encoding="utf-8"), encoding="utf-8")
    result = release(generated, "VERSION=1.5.0")
    assert result.returncode == 0, result.stderr

    top, rest = entries(generated)
    lines = top.split("\n")
    assert lines[:5] == [
        f"{generated.name} (1.5.0) unstable; urgency=medium",
        "",
        "  * Faster health checks.",
        "    Continued on a second line.",
        "",
    ]
    assert lines[5].startswith(" -- Dev One <dev@example.org>  ")
    assert "Mon, 30 Nov 2026" not in lines[5]
    assert rest.startswith("1.4.0) unstable;")
    assert "UNRELEASED" not in changelog.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("version", "reason"),
    [
        (None, "usage: make release VERSION=x.y.z"),
        ("", "VERSION='' is not a version Debian and RPM both take"),
        ("1.5.0-1", "VERSION='1.5.0-1' is not a version Debian and RPM both take"),
        ("v1.5.0", "VERSION='v1.5.0' is not a version"),
        ("1.5'0", "VERSION='1.5'0' is not a version"),
        ("1.5.0\n2", "is not a version"),
        ("1.4.0", "VERSION=1.4.0 is not newer than 1.4.0, the last release in debian/changelog"),
        ("1.3.9", "VERSION=1.3.9 is not newer than 1.4.0"),
        ("1.4.0~rc1", "VERSION=1.4.0~rc1 is not newer than 1.4.0"),
    ],
)
def test_release_refuses_a_bad_version_and_writes_nothing(
    generated: Path, version: str | None, reason: str
) -> None:
    before = {p: p.read_bytes() for p in generated.rglob("*") if p.is_file()}
    result = release(generated, *([] if version is None else [f"VERSION={version}"]))
    assert result.returncode == 2
    assert reason in result.stderr
    assert {p: p.read_bytes() for p in generated.rglob("*") if p.is_file()} == before


def test_release_prints_the_git_commands_only_in_a_git_repository(generated: Path) -> None:
    result = release(generated, "VERSION=1.5.0")
    assert result.returncode == 0, result.stderr
    assert "git" not in result.stdout
    assert run(["git", "init", "-q", str(generated)]).returncode == 0
    result = release(generated, "VERSION=1.6.0")
    assert result.returncode == 0, result.stderr
    assert "git tag -a v1.6.0 -m 'Release 1.6.0'" in result.stdout


def test_release_spec_has_no_version_of_its_own(generated: Path) -> None:
    """The answered version is not in the spec: without `make rpm`'s, rpm stops with why."""
    require_tool("rpmspec")
    spec = generated / "rpm" / f"{generated.name}.spec"
    assert "1.4.0" not in spec.read_text(encoding="utf-8")
    result = run(["rpmspec", "-P", str(spec)], env={**os.environ, "HOME": str(generated / "build")})
    assert result.returncode != 0
    assert "the version comes from debian/changelog: build with `make rpm`" in result.stderr
