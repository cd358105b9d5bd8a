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

from support import require_tool, run

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
    "systemd": {"lib/systemd/system/my-service.service": 0o644},
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
            assert json.load(response) == {"status": "ok", "message": "ok", "pid": process.pid}
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
