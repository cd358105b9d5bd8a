"""Day two in the generated project: `make run` from the source tree, `--version`, and the
README's worked example of an application endpoint."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from support import render, require_tool, run

VERSION = "2.3.4"
READY = re.compile(r"ready: listening on 127\.0\.0\.1:(\d+), pid (\d+)")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render(tmp_path_factory.mktemp("run"), version=VERSION)


def outside_build(generated: Path) -> dict[str, tuple[int, int]]:
    """Every file of the project but build/'s, with its size and modification time."""
    return {
        str(path.relative_to(generated)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in generated.rglob("*")
        if path.is_file() and path.relative_to(generated).parts[0] != "build"
    }


def get(port: int, path: str) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return json.load(response)


def test_make_run_serves_from_the_source_tree_and_exits_zero_on_term(generated: Path, tmp_path: Path) -> None:
    require_tool("make")
    before = outside_build(generated)
    stderr = tmp_path / "stderr"
    with stderr.open("w") as sink:
        make = subprocess.Popen(
            ["make", "-C", str(generated), "run", "RUN_PORT=0", f"PYTHON={sys.executable}"],
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
    try:
        deadline = time.monotonic() + 10
        while not (ready := READY.search(stderr.read_text())) and make.poll() is None:
            assert time.monotonic() < deadline, stderr.read_text()
            time.sleep(0.05)
        assert ready, stderr.read_text()
        port, pid = int(ready.group(1)), int(ready.group(2))
        assert get(port, "/health") == {
            "status": "ok",
            "message": "ok",
            "pid": pid,
            "name": "my-service",
            "version": VERSION,
        }
        assert get(port, "/hello") == {"hello": "ok"}
        os.kill(pid, signal.SIGTERM)
        assert make.wait(timeout=10) == 0
    finally:
        if make.poll() is None:
            make.kill()
            make.wait()
    log = stderr.read_text()
    assert "stopping on SIGTERM" in log and "'GET /hello HTTP/1.1' 200" in log
    assert outside_build(generated) == before
    # The development config is the installed one, but for where it logs and listens.
    assert run(["make", "-C", str(generated), "build/conf/my-service.conf"]).returncode == 0
    installed = (generated / "build/conf/my-service.conf").read_text().splitlines()
    development = (generated / "build/run/my-service.conf").read_text().splitlines()
    changed = [(a, b) for a, b in zip(installed, development) if a != b]
    assert len(installed) == len(development)
    assert changed == [
        ("port = 8080", "port = 0"),
        ("log_file = /var/log/my-service/my-service.log", "log_file = -"),
    ]


def test_version_prints_the_slug_and_the_version(generated: Path) -> None:
    result = run(
        [sys.executable, "-m", "my_service", "--version"],
        env={**os.environ, "PYTHONPATH": str(generated / "src"), "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, f"my-service {VERSION}\n", "")


def test_readme_example_is_the_code_and_the_test_that_ship(generated: Path) -> None:
    readme = (generated / "README.md").read_text()
    section = readme.split("## Working on the code", 1)[1].split("\n## ", 1)[0]
    code, test = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    assert code in (generated / "src/my_service/health.py").read_text()
    assert test in (generated / "tests/test_daemon.py").read_text()
    name = re.search(r"def (test_\w+)", test).group(1)  # type: ignore[union-attr]
    result = run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"tests/test_daemon.py::{name}"],
        cwd=generated,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert result.returncode == 0 and "1 passed" in result.stdout, result.stdout + result.stderr
