"""What the system tests ask of the installed default service, in any root (a Sandbox)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from sandbox import Sandbox

# The default project's names (cookiecutter.json's defaults) and where its package puts things.
NAME = "my-service"
USER = NAME
PORT = 8080
DAEMON = f"/usr/sbin/{NAME}"
INIT = f"/etc/init.d/{NAME}"
UNIT = f"{NAME}.service"
SERVICE_DIR = f"/etc/sv/{NAME}"
CONFIG = f"/etc/{NAME}/{NAME}.conf"
STATE_DIR = f"/var/lib/{NAME}"
LOG_DIR = f"/var/log/{NAME}"
LOG = f"{LOG_DIR}/{NAME}.log"
RUN_DIR = f"/run/{NAME}"
PIDFILE = f"{RUN_DIR}/{NAME}.pid"
# The prefix of a command run as the service user, with its groups.
AS_SERVICE_USER = ("setpriv", f"--reuid={USER}", f"--regid={USER}", "--init-groups")

# `python3 -I -c HOLD_PORT PORT`: another process holding the daemon's port, bound as the
# daemon binds it; prints "listening" once it holds it.
HOLD_PORT = """\
import socket, sys, time
sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", int(sys.argv[1])))
sock.listen()
print("listening", flush=True)
time.sleep(600)
"""


def install(sandbox: Sandbox, deb: Path) -> None:
    """`apt-get install` the .deb inside, as a user would; it must succeed."""
    result = sandbox.install_deb(deb)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def health(sandbox: Sandbox) -> dict[str, object]:
    reply = sandbox.http_get(PORT, "/health")
    assert reply.status == 200, reply
    document: dict[str, object] = json.loads(reply.body)
    return document


def set_message(sandbox: Sandbox, message: str) -> str:
    """Edit the `message` that /health returns, as an admin would; returns the new file."""
    path = sandbox.path(CONFIG)
    path.write_text(re.sub(r"(?m)^message = .*$", f"message = {message}", path.read_text()))
    return path.read_text()


def log_lines(sandbox: Sandbox, pattern: str) -> list[str]:
    path = sandbox.path(LOG)
    text = path.read_text() if path.exists() else ""
    return [line for line in text.splitlines() if re.search(pattern, line)]


def user_ids(sandbox: Sandbox, user: str = NAME) -> tuple[int, int]:
    uid = int(sandbox.run(["id", "-u", user], check=True).stdout)
    gid = int(sandbox.run(["id", "-g", user], check=True).stdout)
    return uid, gid


def assert_unprivileged(sandbox: Sandbox, pid: int, user: str = NAME) -> None:
    """V1: the process runs as the service user, not root, with no effective capability."""
    status = sandbox.status(pid)
    assert status is not None, f"pid {pid} is gone"
    uid, gid = user_ids(sandbox, user)
    assert uid != 0
    assert set(status.uids) == {uid} and set(status.gids) == {gid}, status
    assert status.cap_eff == 0, f"CapEff {status.cap_eff:#x}"
