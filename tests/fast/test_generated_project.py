"""The generated project keeps its promises: its own tests pass, and `make install`
lays out a service that starts, answers and stops."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from support import render, require_tool, run

# DESIGN.md's paths: (path, mode). Everything installed is root's: make install
# runs as root or into a DESTDIR, and the packages set owners of their own.
LAYOUT = {
    "usr/sbin/my-service": 0o755,
    "etc/my-service/my-service.conf": 0o644,
    "etc/default/my-service": 0o644,
    "etc/logrotate.d/my-service": 0o644,
    "usr/share/man/man8/my-service.8": 0o644,
}
INIT_LAYOUT = {
    "sysv": {"etc/init.d/my-service": 0o755},
    "upstart": {"etc/init/my-service.conf": 0o644},
    "systemd": {
        "lib/systemd/system/my-service.service": 0o644,
        "lib/systemd/system/my-service.socket": 0o644,
        "usr/lib/systemd/system-generators/my-service-generator": 0o755,
    },
    "daemontools": {"etc/sv/my-service/run": 0o755},
}


def test_make_test_of_the_generated_project_passes(project: Path) -> None:
    require_tool("bats", "make")
    result = run(["make", "-C", str(project), "test", f"PYTHON={sys.executable}"])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert " passed" in result.stdout
    assert "not ok" not in result.stdout


def test_make_lint_of_the_generated_project_passes(project: Path) -> None:
    require_tool("shellcheck", "dash", "make")
    result = run(["make", "-C", str(project), "lint"])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_install_lays_out_the_fhs_paths(project: Path, installed: Path) -> None:
    choice = json.loads((project / ".cookiecutter.json").read_text())["cookiecutter"]["init_system"]
    expected = dict(LAYOUT)
    for module in (project / "src/my_service").glob("*.py"):
        expected[f"usr/lib/my-service/my_service/{module.name}"] = 0o644
    for name, files in INIT_LAYOUT.items():
        if choice in ("all", name):
            expected.update(files)
    found = {
        str(p.relative_to(installed)): p.stat().st_mode & 0o7777 for p in installed.rglob("*") if p.is_file()
    }
    assert {path: found.get(path) for path in expected} == expected
    assert (
        not set(found)
        - set(expected)
        - {f"usr/lib/my-service/my_service/{m}.py" for m in ("__init__", "__main__")}
    )
    assert not any(part in ("var", "run") for path in found for part in Path(path).parts[:1])


def test_installed_daemon_serves_health_and_exits_zero_on_sigterm(installed: Path, tmp_path: Path) -> None:
    config = tmp_path / "service.conf"
    log = tmp_path / "service.log"
    config.write_text(f"[service]\nport = 0\nlog_file = {log}\n", encoding="utf-8")
    process = subprocess.Popen([str(installed / "usr/sbin/my-service"), "--config", str(config)])
    try:
        deadline = time.monotonic() + 10
        while "ready" not in (log.read_text() if log.exists() else "") and time.monotonic() < deadline:
            time.sleep(0.05)
        port = int(log.read_text().split("listening on 127.0.0.1:", 1)[1].split(",", 1)[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            assert json.load(response) == {
                "status": "ok",
                "message": "ok",
                "pid": process.pid,
                "name": "my-service",
                "version": "0.1.0",
            }
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_install_takes_the_whole_package_tree(tmp_path: Path) -> None:
    project = render(tmp_path / "render")
    (project / "src/my_service/exporters").mkdir()
    (project / "src/my_service/exporters/__init__.py").write_text("NAME = 'csv'\n")
    (project / "src/my_service/schema.json").write_text("{}\n")
    destdir = tmp_path / "root"
    result = run(["make", "-C", str(project), "install", f"DESTDIR={destdir}", "prefix=/usr"])
    assert result.returncode == 0, result.stderr
    code = destdir / "usr/lib/my-service/my_service"
    assert (code / "exporters/__init__.py").read_text() == "NAME = 'csv'\n"
    assert (code / "schema.json").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("prefix=relative/dir", "prefix='relative/dir' is relative; give an absolute path"),
        ("sysconfdir=/etc/my dir", "a path with spaces or an empty one"),
        ("unitdir=", "a path with spaces or an empty one"),
    ],
)
def test_install_refuses_paths_it_cannot_write_into_init_files(
    project: Path, setting: str, message: str
) -> None:
    result = run(["make", "-C", str(project), "install", "DESTDIR=/nonexistent", setting])
    assert result.returncode == 2
    assert message in result.stderr


def test_uninstall_removes_only_what_install_installed(tmp_path: Path) -> None:
    project = render(tmp_path / "render", init_system="systemd")
    destdir = tmp_path / "root"
    admins = destdir / "etc/init.d/my-service"
    admins.parent.mkdir(parents=True)
    admins.write_text("#!/bin/sh\n# the admin's own\n")
    paths = ["prefix=/usr", "unitdir=/lib/systemd/system"]
    assert run(["make", "-C", str(project), "install", f"DESTDIR={destdir}", *paths]).returncode == 0
    assert run(["make", "-C", str(project), "uninstall", f"DESTDIR={destdir}", *paths]).returncode == 0
    left = {str(p.relative_to(destdir)) for p in destdir.rglob("*") if p.is_file()}
    assert left == {"etc/init.d/my-service", "etc/my-service/my-service.conf", "etc/default/my-service"}
