"""Helpers shared by every tier of the template's tests."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

TEMPLATE = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
# The paths the packages install with on this Debian 12 host (debian/rules; unitdir from its systemd.pc).
PACKAGE_PATHS = ["prefix=/usr", "sysconfdir=/etc", "unitdir=/lib/systemd/system"]


def require_tool(*names: str) -> None:
    """Fail under CI, skip elsewhere, when a system tool is missing."""
    missing = [name for name in names if shutil.which(name) is None]
    if not missing:
        return
    reason = f"missing tools: {' '.join(missing)} (run `make deps` as root)"
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


def require_root() -> None:
    if os.geteuid() == 0:
        return
    if IN_CI:
        pytest.fail("this tier needs root")
    pytest.skip("this tier needs root")


def render(output_dir: Path, **answers: object) -> Path:
    """Render the template without prompts; returns the generated project's path."""
    from cookiecutter.main import cookiecutter

    extra = {
        key: (value if isinstance(value, (str, bool)) else json.dumps(value))
        for key, value in answers.items()
    }
    return Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(output_dir), extra_context=extra))


def run(cmd: list[str] | str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run a command, capture its output as text, never raise on exit code."""
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    return subprocess.run(cmd, check=False, **kwargs)  # type: ignore[call-overload]


@dataclass(frozen=True)
class InitFiles:
    """What one init system brings: files in the generated project, and what `make install`
    puts on the host; path -> mode, with {slug} and {unitdir} to fill in."""

    project: dict[str, int]
    installed: dict[str, int]


# The one table of the tests: what each init-system choice ships ("all" ships every one).
INIT_FILES = {
    "sysv": InitFiles(
        project={"init/sysv/{slug}": 0o755, "tests/bats/init_script.bats": 0o644,
                 "debian/{slug}.lintian-overrides": 0o644},
        installed={"/etc/init.d/{slug}": 0o755},
    ),
    "upstart": InitFiles(
        project={"init/upstart/{slug}.conf": 0o644, "debian/{slug}.lintian-overrides": 0o644},
        installed={"/etc/init/{slug}.conf": 0o644},
    ),
    "systemd": InitFiles(
        project={"init/systemd/{slug}.service": 0o644, "init/systemd/{slug}.socket": 0o644,
                 "init/systemd/{slug}-generator": 0o755, "tests/smoke": 0o755},
        installed={"{unitdir}/{slug}.service": 0o644, "{unitdir}/{slug}.socket": 0o644,
                   "/usr/lib/systemd/system-generators/{slug}-generator": 0o755},
    ),
    "daemontools": InitFiles(
        project={"init/daemontools/run": 0o755},
        installed={"/etc/sv/{slug}/run": 0o755},
    ),
    "supervisord": InitFiles(
        project={"init/supervisor/{slug}.conf": 0o644},
        installed={"/etc/supervisor/conf.d/{slug}.conf": 0o644},
    ),
}  # fmt: skip


def shipped(choice: str) -> list[str]:
    """The init systems whose files a choice ships."""
    return list(INIT_FILES) if choice == "all" else [choice]


def init_project_files(choice: str, slug: str) -> dict[str, int]:
    """Project path -> mode of the init files of a choice."""
    return {
        path.format(slug=slug): mode
        for init in shipped(choice)
        for path, mode in INIT_FILES[init].project.items()
    }


def init_installed_files(choice: str, slug: str, unitdir: str) -> dict[str, int]:
    """Installed path -> mode of the init files of a choice."""
    return {
        path.format(slug=slug, unitdir=unitdir): mode
        for init in shipped(choice)
        for path, mode in INIT_FILES[init].installed.items()
    }


def cookiecutter_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """cookiecutter's command line, as a user runs it."""
    import sys

    return run([sys.executable, "-m", "cookiecutter", *args], cwd=cwd)


@contextlib.contextmanager
def signing_key() -> Iterator[tuple[dict[str, str], str]]:
    """A throwaway gpg key in its own GNUPGHOME: (environment with GNUPGHOME, fingerprint).

    The home is short-named under /tmp (gpg-agent's socket path has a length limit); the agent
    is stopped and the home removed on exit.
    """
    home = tempfile.mkdtemp(prefix="gpg-", dir="/tmp")
    env = {**os.environ, "GNUPGHOME": home}
    try:
        made = run(
            ["gpg", "--batch", "--passphrase", "", "--quick-gen-key", f"Test <{Path(home).name}@invalid>",
             "ed25519", "sign", "never"],
            env=env,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        listed = run(["gpg", "--batch", "--with-colons", "--list-secret-keys"], env=env).stdout
        yield env, next(line.split(":")[9] for line in listed.splitlines() if line.startswith("fpr:"))
    finally:
        run(["gpgconf", "--homedir", home, "--kill", "all"], env=env)
        shutil.rmtree(home, ignore_errors=True)


@contextlib.contextmanager
def idle_and_slowloris(port: int, idle: int = 200, slow: int = 50) -> Iterator[list[socket.socket]]:
    """While the block runs, `idle` clients of 127.0.0.1:port that send nothing and `slow` ones
    that send a header byte every 0.2 s, a request that never ends (RELIABILITY.md C1).
    Yields their sockets, idle ones first; closes them all afterwards."""
    clients = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(idle + slow)]
    stop = threading.Event()

    def drip() -> None:
        for conn in clients[idle:]:
            conn.sendall(b"GET /health HTTP/1.0\r\n")
        while not stop.wait(0.2):
            for conn in clients[idle:]:
                with contextlib.suppress(OSError):
                    conn.send(b"X")

    dripping = threading.Thread(target=drip)
    dripping.start()
    try:
        yield clients
    finally:
        stop.set()
        dripping.join()
        for conn in clients:
            conn.close()
