"""Identities from the answers, paths from make's variables (DESIGN.md), and the state and log
directories made in one place: lib/prepare-dirs, which every init file and package runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from support import render, require_root, run

# Each caller of the helper, and how it names the installed one.
CALLERS = {
    "init/sysv/my-service": "@PREPARE_DIRS@ || return 2",
    "init/daemontools/run": "@PREPARE_DIRS@ || exit 1",
    "debian/my-service.postinst": '"$PREPARE_DIRS" || refuse',
    "rpm/my-service.spec": "%{_libexecdir}/%{name}/prepare-dirs\n",
}
OTHER_DIRS = ["prefix=/opt/x", "sysconfdir=/opt/etc", "localstatedir=/srv", "runstatedir=/srv/run"]


def test_the_four_callers_run_prepare_dirs_and_none_makes_the_dirs_itself(project: Path) -> None:
    for name, call in CALLERS.items():
        path = project / name
        if not path.exists():
            continue
        text = path.read_text()
        assert call in text, name
        # The spec only makes the empty directories in its buildroot, for its %files.
        makes = [line for line in text.splitlines() if "install -d" in line and "%{buildroot}" not in line]
        assert makes == [], name
    post = re.search(r"^%post\n(?:#.*\n)*(.*)\n", (project / "rpm/my-service.spec").read_text(), re.M)
    assert post is not None and post[1] == "%{_libexecdir}/%{name}/prepare-dirs"


def test_the_user_is_the_answers_and_no_make_variable(tmp_path: Path) -> None:
    project = render(tmp_path, service_user="billing")
    sources = [p for p in project.rglob("*") if p.is_file() and ".git" not in p.parts]
    assert [p for p in sources if "@USER@" in p.read_text(errors="replace")] == []
    assert "SERVICE_USER" not in (project / "Makefile").read_text()
    result = run(["make", "-C", str(project), "build", "prefix=/usr"])
    assert result.returncode == 0, result.stderr
    built = project / "build"
    assert 'USER="billing"' in (built / "init/sysv/my-service").read_text()
    assert 'USER="billing"' in (built / "lib/prepare-dirs").read_text()
    assert "chpst -u billing:billing" in (built / "init/daemontools/run").read_text()
    assert "User=billing\nGroup=billing\n" in (built / "init/systemd/my-service.service").read_text()
    assert "setuid billing\nsetgid billing\n" in (built / "init/upstart/my-service.conf").read_text()
    logrotate = (built / "conf/logrotate/my-service").read_text()
    assert "su billing billing\n\tcreate 0640 billing billing\n" in logrotate


def test_install_with_other_dirs_writes_them_into_every_installed_file(tmp_path: Path) -> None:
    project = render(tmp_path / "render")
    destdir = tmp_path / "root"
    result = run(["make", "-C", str(project), "install", f"DESTDIR={destdir}", *OTHER_DIRS])
    assert result.returncode == 0, result.stderr
    texts = {
        str(p.relative_to(destdir)): p.read_text()
        for p in destdir.rglob("*")
        if p.is_file() and p.suffix != ".py"
    }
    # Paths that are not the project's: the interpreter, the scanned dir of daemontools.
    theirs = re.compile(r"#!/usr/bin/python3|/etc/service/")
    default = re.compile(r"/var/|[ =]/etc/|/usr/")
    assert [name for name, text in texts.items() if default.search(theirs.sub("", text))] == []
    helper = texts["opt/x/libexec/my-service/prepare-dirs"]
    assert "\nSTATEDIR=/srv/lib/my-service\nLOGDIR=/srv/log/my-service\n" in helper
    assert "\t/opt/x/libexec/my-service/prepare-dirs || return 2\n" in texts["opt/etc/init.d/my-service"]
    assert "\n/opt/x/libexec/my-service/prepare-dirs || exit 1\n" in texts["opt/etc/sv/my-service/run"]
    assert "log_file = /srv/log/my-service/my-service.log\n" in texts["opt/etc/my-service/my-service.conf"]


@pytest.fixture()
def helper(tmp_path: Path) -> tuple[Path, Path]:
    """The built helper with its dirs under tmp_path/var, run as root for the service user."""
    require_root()
    project = render(tmp_path / "render", init_system="sysv")
    var = tmp_path / "var"
    result = run(["make", "-C", str(project), "build", f"localstatedir={var}"])
    assert result.returncode == 0, result.stderr
    script = tmp_path / "prepare-dirs"
    # The service user does not exist on the build host: root stands in for it.
    text = (project / "build/lib/prepare-dirs").read_text()
    script.write_text(text.replace('USER="my-service"', 'USER="root"'))
    return script, var


@pytest.mark.parametrize("mode", [0o777, 0o755])
def test_P8_prepare_dirs_gives_new_and_existing_dirs_their_owner_and_mode(
    helper: tuple[Path, Path], mode: int
) -> None:
    script, var = helper
    (var / "log/my-service").mkdir(parents=True)
    (var / "log/my-service").chmod(mode)
    (var / "log/my-service/my-service.log").write_text("kept\n")
    first, again = run(["sh", str(script)]), run(["sh", str(script)])
    assert (first.returncode, first.stderr, again.returncode) == (0, "", 0)
    for name in ("lib/my-service", "log/my-service"):
        assert (var / name).stat().st_mode & 0o7777 == 0o750, name
    assert (var / "log/my-service/my-service.log").read_text() == "kept\n"


def test_P8_prepare_dirs_leaves_a_symlinked_dir_alone_and_refuses_a_file(
    helper: tuple[Path, Path], tmp_path: Path
) -> None:
    script, var = helper
    target = tmp_path / "bigger-disk"
    target.mkdir(mode=0o770)
    target.chmod(0o770)
    (var / "log").mkdir(parents=True)
    (var / "log/my-service").symlink_to(target)
    result = run(["sh", str(script)])
    assert result.returncode == 0, result.stderr
    assert result.stderr == (
        f"my-service: {var}/log/my-service is a symlink: left as it is; its target must be writable by root\n"
    )
    assert target.stat().st_mode & 0o7777 == 0o770
    (var / "log/my-service").unlink()
    (var / "log/my-service").write_text("")
    result = run(["sh", str(script)])
    assert result.returncode == 1
    assert result.stderr == (
        f"my-service: {var}/log/my-service exists and is not a directory; allowed: a directory or nothing."
        " Move it away\n"
    )
