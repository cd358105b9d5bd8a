"""The generated docs follow the answers: only the chosen init systems, values not variables,
every target documented; a refused slug is reported once; and the README promises the Debian
releases and the Pythons that the system tier runs."""

from __future__ import annotations

import re
from pathlib import Path

import pre_gen_project
import pytest
import roots
from support import TEMPLATE, run

# What names each init choice in the generated README.
MENTIONS = {
    "systemd": r"systemd|unitdir",
    "sysv": r"SysV|init script|init\.d",
    "upstart": r"Upstart",
    "daemontools": r"daemontools|runit|run script",
    "supervisor": r"supervisord|supervisorctl",
}
# The host table's row of each init file.
INIT_ROWS = {
    "systemd": "`/lib/systemd/system/my-service.service`",
    "sysv": "`/etc/init.d/my-service`",
    "upstart": "`/etc/init/my-service.conf`",
    "daemontools": "`/etc/sv/my-service/run`",
    "supervisor": "`/etc/supervisor/conf.d/my-service.conf`",
}


def readme(project: Path) -> str:
    return (project / "README.md").read_text()


def test_readme_names_only_the_chosen_init_systems_and_tables_their_files(project: Path) -> None:
    chosen = {path.name for path in (project / "init").iterdir()}
    assert chosen <= set(MENTIONS)
    text = readme(project)
    for init, pattern in MENTIONS.items():
        found = re.findall(pattern, text)
        assert bool(found) == (init in chosen), (init, found)
    table = text.split("## Where things are on a host", 1)[1].split("\n## ", 1)[0]
    rows = [row for init, row in INIT_ROWS.items() if row in table]
    assert rows == [INIT_ROWS[init] for init in INIT_ROWS if init in chosen]


def test_make_help_prints_values_not_variable_names(project: Path) -> None:
    result = run(["make", "-C", str(project), "--no-print-directory", "help", "sysconfdir=/opt/etc"])
    assert result.returncode == 0, result.stderr
    assert "$(" not in result.stdout, result.stdout
    (uninstall,) = [line for line in result.stdout.splitlines() if line.startswith("  uninstall ")]
    assert "the files in /opt/etc that an admin edits stay" in uninstall


def test_config_says_that_ip_address_allow_widens_with_listen(project: Path) -> None:
    lines = (project / "conf" / "my-service.conf").read_text().splitlines()
    listen = lines.index("listen = 127.0.0.1")
    comment = " ".join(lines[listen - 3 : listen])
    has_unit = (project / "init" / "systemd").exists()
    assert ("IPAddressAllow=" in comment) == has_unit, comment


@pytest.mark.ships()
def test_template_readme_lists_every_target_of_the_generated_makefile(project: Path) -> None:
    targets = re.findall(r"(?m)^([a-z][a-z-]*):.*## ", (project / "Makefile").read_text())
    assert "publish" in targets and "lint-rpm" in targets
    (row,) = [
        line for line in (TEMPLATE / "README.md").read_text().splitlines() if line.startswith("| `Makefile`")
    ]
    listed = row.split("|")[3].replace(",", " ").split()
    assert sorted(listed) == sorted(targets)


def spoken(words: list[str]) -> str:
    return ", ".join(words[:-1]) + " and " + words[-1]


@pytest.mark.ships()
def test_readme_promises_the_releases_and_pythons_the_system_tier_runs(project: Path) -> None:
    assert tuple(roots.DEBIAN_VERSION) == tuple(roots.PYTHON_VERSION) == roots.RELEASES
    debian = spoken([f"{roots.DEBIAN_VERSION[release]} ({release})" for release in roots.RELEASES])
    pythons = spoken([roots.PYTHON_VERSION[release] for release in roots.RELEASES])
    text = " ".join((TEMPLATE / "README.md").read_text().split())
    assert f"The package runs on Debian {debian}, the daemon on their python3: {pythons}." in text
    # The generated project asks for the oldest of them, and vendors wheels that run there.
    oldest = roots.PYTHON_VERSION[roots.RELEASES[0]]
    pyproject = (project / "pyproject.toml").read_text()
    assert f'\nrequires-python = ">={oldest}"\n' in pyproject
    assert f'\ntarget-version = "py{oldest.replace(".", "")}"\n' in pyproject
    assert f"\nVENDOR_PYTHON_VERSION ?= {oldest}\n" in (project / "Makefile").read_text()


def test_a_refused_slug_is_reported_once_not_again_for_the_names_derived_from_it() -> None:
    errors = pre_gen_project.validate(
        {"project_name": "7 Service", "project_slug": "7-service", "package_name": "7_service",
         "service_user": "7-service"}
    )  # fmt: skip
    assert [error.split()[0] for error in errors] == ["project_slug"], errors


def test_names_the_user_typed_are_still_checked_when_the_slug_is_refused() -> None:
    errors = pre_gen_project.validate(
        {"project_slug": "7-service", "package_name": "class", "service_user": "root"}
    )
    assert [error.split()[0] for error in errors] == ["project_slug", "package_name", "service_user"], errors
