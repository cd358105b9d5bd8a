"""The listen address and the port live in one place, conf/<slug>.conf (on a host,
/etc/<slug>/<slug>.conf): change them there, and `make run`, the installed files, the deploy
health check and the playbook's health gate follow. No other file holds a copy."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import render, require_tool, run

# An unusual port to render with, so that a leftover copy of it stands out.
PORT = "18123"
LISTEN = "127.0.0.2"
# The answers' record, which cruft and re-rendering read, is not a use of the port.
ANSWERS = {".cookiecutter.json", ".cruft.json"}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render(tmp_path_factory.mktemp("one-place"), port=PORT)


def files_holding(root: Path, needle: str) -> list[str]:
    word = re.compile(rb"(?<![0-9])" + re.escape(needle.encode()) + rb"(?![0-9])")
    return sorted(
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path.is_file() and path.name not in ANSWERS and word.search(path.read_bytes())
    )


def free_port(address: str) -> int:
    with socket.socket() as probe:
        probe.bind((address, 0))
        return probe.getsockname()[1]


def test_only_the_config_holds_the_port(rendered: Path) -> None:
    assert files_holding(rendered, PORT) == ["conf/my-service.conf"]


def test_make_run_the_installed_config_and_the_deploy_check_follow_an_edited_config(
    tmp_path: Path,
) -> None:
    require_tool("make")
    project = render(tmp_path / "project", port=PORT)
    port = free_port(LISTEN)
    config = project / "conf" / "my-service.conf"
    text = config.read_text()
    assert f"\nport = {PORT}\n" in text and "\nlisten = 127.0.0.1\n" in text
    config.write_text(text.replace(f"\nport = {PORT}\n", f"\nport = {port}\n").replace("127.0.0.1", LISTEN))

    stderr = tmp_path / "stderr"
    with stderr.open("w") as sink:
        make = subprocess.Popen(
            ["make", "-C", str(project), "run", f"PYTHON={sys.executable}"],
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
    pid = None
    try:
        deadline = time.monotonic() + 10
        while not (ready := re.search(r"ready: listening on (\S+), pid (\d+)", stderr.read_text())):
            assert make.poll() is None and time.monotonic() < deadline, stderr.read_text()
            time.sleep(0.05)
        pid = int(ready.group(2))
        assert ready.group(1) == f"{LISTEN}:{port}"
        # The config the packages install as the host's, read as make deploy and the play read it.
        assert run(["make", "-C", str(project), "build/conf/my-service.conf"]).returncode == 0
        check = run([sys.executable, "deploy/check-health", "build/conf/my-service.conf", "5"], cwd=project)
        assert (check.returncode, check.stdout) == (0, f"http://{LISTEN}:{port}/health: 200\n"), check.stderr
        os.kill(pid, signal.SIGTERM)
        assert make.wait(timeout=10) == 0
    finally:
        if make.poll() is None:
            if pid is None:
                make.kill()
            else:
                os.kill(pid, signal.SIGTERM)
            make.wait(timeout=10)

    destdir = tmp_path / "root"
    result = run(
        ["make", "-C", str(project), "install", f"DESTDIR={destdir}", "prefix=/usr", "sysconfdir=/etc"]
    )
    assert result.returncode == 0, result.stderr
    assert files_holding(destdir, PORT) == []
    installed = (destdir / "etc/my-service/my-service.conf").read_text()
    assert f"\nlisten = {LISTEN}\nport = {port}\n" in installed


def test_the_playbooks_health_gate_reads_the_hosts_config(rendered: Path) -> None:
    import yaml

    (play,) = yaml.safe_load((rendered / "deploy/ansible/site.yml").read_text())
    assert (play["vars"]["package"], play["vars"]["config"]) == (
        "my-service",
        "/etc/{{ package }}/{{ package }}.conf",
    )
    block = next(task for task in play["tasks"] if "block" in task)
    gates = [
        task["ansible.builtin.script"]["cmd"]
        for task in block["block"] + block["rescue"]
        if "ansible.builtin.script" in task
    ]
    assert gates == ["{{ playbook_dir }}/../check-health {{ config }} {{ health_timeout | default(10) }}"] * 2


@pytest.mark.parametrize("key", ["listen", "port"])
def test_a_config_without_listen_or_port_is_refused_by_the_daemon_and_the_deploy_check(
    rendered: Path, tmp_path: Path, key: str
) -> None:
    config = tmp_path / "service.conf"
    lines = ["[service]", "listen = 127.0.0.1", "port = 0", "log_file = -"]
    config.write_text("\n".join(line for line in lines if not line.startswith(key)) + "\n")
    daemon = run(
        [sys.executable, "-m", "my_service", "--config", str(config), "--check-config"],
        env={"PYTHONPATH": str(rendered / "src"), "PYTHONDONTWRITEBYTECODE": "1"},
    )
    allowed = {"listen": "an IP address, such as 127.0.0.1", "port": "a TCP port, 0-65535"}[key]
    assert (daemon.returncode, daemon.stderr.splitlines()[-1:]) == (
        1,
        [f"my-service: {config}: [service] has no {key}; give {allowed}"],
    ), daemon.stderr
    check = run([sys.executable, str(rendered / "deploy/check-health"), str(config), "1"])
    assert check.returncode == 1
    assert check.stderr.startswith(f"{config}: no usable listen and port in [service]"), check.stderr
