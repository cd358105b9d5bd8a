"""H8 (RELIABILITY.md) in the packages: legitimate text that the hooks refused before
arrives byte-exact in `dpkg-deb -f` and `rpm -qi`, passes lintian, and runs nowhere."""

from __future__ import annotations

import email.utils
import os
import subprocess
from pathlib import Path

import pytest
from conftest import BUILD_TOOLS
from pkgbuild import make
from support import render, require_tool, run

CANARY = "h8-canary"
ANSWERS = {
    "project_name": f'Bob\'s "fast" $(touch {CANARY}) cache 100%',
    "description": f'Keeps 100% uptime for $HOME, `touch {CANARY}` <b> "q" C:\\data ~^-x',
    "maintainer_name": 'Zoë "Q" O\'Neil 100% $(touch h8-canary)',
    "maintainer_email": "zoë@exämple.de",
    "version": "2.0+really1.9~rc1",
    "project_slug": "my-service",
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tool(*BUILD_TOOLS, "lintian")
    out = tmp_path_factory.mktemp("h8-package")
    project = render(out, **ANSWERS)
    home = out / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "TMPDIR": str(home)}
    result = make(project, "deb", "rpm", "lint-deb", env=env)
    assert result.returncode == 0, result.stdout[-6000:]
    assert [path for path in out.rglob(f"{CANARY}*")] == [], "an answer ran as a command"
    return project


def field(deb: Path, name: str) -> str:
    result = run(["dpkg-deb", "-f", str(deb), name])
    assert result.returncode == 0, result.stderr
    return result.stdout.rstrip("\n")


def test_h8_deb_fields_hold_the_answers_byte_exact(project: Path) -> None:
    (deb,) = (project / "dist").glob("*.deb")
    assert field(deb, "Description").splitlines()[0] == ANSWERS["description"]
    assert field(deb, "Version") == ANSWERS["version"]
    maintainer = field(deb, "Maintainer")
    # The domain IDNA-encoded (the same address), as lintian requires.
    assert email.utils.parseaddr(maintainer) == (ANSWERS["maintainer_name"], "zoë@xn--exmple-cua.de")


def test_h8_rpm_header_holds_the_answers_byte_exact(project: Path) -> None:
    (rpm,) = (project / "dist").glob("*.rpm")
    tags = "%{SUMMARY}\\n%{VERSION}\\n%{PACKAGER}\\n%{URL}\\n"
    result = run(["rpm", "-qp", "--qf", tags, str(rpm)], env={**os.environ, "HOME": str(project)})
    assert result.returncode == 0, result.stderr
    description = ANSWERS["description"]
    assert result.stdout.splitlines() == [
        description[0].upper() + description[1:],
        ANSWERS["version"],
        f"{ANSWERS['maintainer_name']} <zoë@xn--exmple-cua.de>",
        "https://xn--exmple-cua.de/",
    ]
    info = subprocess.run(["rpm", "-qip", str(rpm)], capture_output=True, text=True, check=False)
    assert f"Summary     : {description[0].upper() + description[1:]}\n" in info.stdout


def test_h8_rpm_pre_script_gives_useradd_the_name_as_typed(project: Path) -> None:
    """The comment of the service user, as sh parses %pre after rpm's macros."""
    (rpm,) = (project / "dist").glob("*.rpm")
    scripts = run(["rpm", "-qp", "--scripts", str(rpm)], env={**os.environ, "HOME": str(project)}).stdout
    (line,) = [line.strip() for line in scripts.splitlines() if line.strip().startswith("-c ")]
    word = line.removeprefix("-c ").rsplit(" ", 1)[0]
    result = run(["sh", "-c", f"printf %s {word}"], cwd=project)
    assert result.stdout == ANSWERS["project_name"]
