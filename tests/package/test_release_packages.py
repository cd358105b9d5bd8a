"""The packages after `make release VERSION=x.y.z` (issue 11, item 4): both carry the
released version and its finalized changelog entry, and lintian stays clean (P4)."""

from __future__ import annotations

import gzip
import re
import subprocess
from pathlib import Path

from pkgbuild import Built, copy_project, make
from support import require_tool, run

RELEASED = "0.2.0"
# The first release, a month before: lintian wants each entry newer than the one below.
LAST_MONTH = "Mon, 02 Nov 2026 10:00:00 +0000"


def test_P4_released_packages_carry_the_version_and_a_finalized_entry(default: Built, tmp_path: Path) -> None:
    require_tool("lintian")
    project = copy_project(default, tmp_path)
    changelog = project / "debian" / "changelog"
    first = re.sub(r"(?m)^( -- .*>  ).*$", r"\g<1>" + LAST_MONTH, changelog.read_text(encoding="utf-8"))
    changelog.write_text(first, encoding="utf-8")

    result = make(project, "release", f"VERSION={RELEASED}", env=default.env())
    assert result.returncode == 0, result.stdout
    result = make(project, "deb", "rpm", "lint-deb", env=default.env())
    assert result.returncode == 0, result.stdout[-6000:]

    deb = project / "dist" / f"{default.slug}_{RELEASED}_all.deb"
    assert run(["dpkg-deb", "-f", str(deb), "Version"]).stdout == RELEASED + "\n"
    (rpm,) = (project / "dist").glob(f"{default.slug}-{RELEASED}-1*.noarch.rpm")
    query = run(["rpm", "-qp", "--qf", "%{VERSION}\n", str(rpm)], env=default.env())
    assert query.stdout == RELEASED + "\n", query.stderr

    shipped = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True).stdout
    member = f"./usr/share/doc/{default.slug}/changelog.gz"
    extracted = subprocess.run(["tar", "-xOf", "-", member], input=shipped, capture_output=True, check=True)
    shipped_changelog = gzip.decompress(extracted.stdout).decode()
    assert shipped_changelog.startswith(f"{default.slug} ({RELEASED}) unstable; urgency=medium\n")
    assert LAST_MONTH in shipped_changelog and "UNRELEASED" not in shipped_changelog

    rpm_changelog = run(["rpm", "-qp", "--changelog", str(rpm)], env=default.env()).stdout
    assert rpm_changelog.split("\n")[0].endswith(f"> - {RELEASED}-1")
    assert "> - 0.1.0-1" in rpm_changelog
