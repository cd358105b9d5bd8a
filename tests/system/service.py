"""What the system tests ask of the installed default service, in any root (a Sandbox)."""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from common import wait_until
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

# What installing any package with apt leaves in /etc, /var and /run, none of it the package's:
# apt's state and logs, adduser's lock, what runit's dpkg trigger sets up (from trixie on, it also
# enables runit's own default-syslog service then), and what a booted systemd makes after boot.
NOT_THE_PACKAGES = re.compile(
    r"^/(var/lib/apt/|var/log/apt/|run/adduser$|run/runit(/|$)|etc/sv/default-syslog/supervise$"
    r"|etc/runit/runsvdir/default/default-syslog$|run/agetty\.reload$|run/credentials/console-getty\.service$)"
)


def left_behind(new_paths: set[str]) -> list[str]:
    """Of the paths that appeared since before the install, those that NOT_THE_PACKAGES misses."""
    return sorted(path for path in new_paths if not NOT_THE_PACKAGES.match(path))


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


# `python3 -I -c CLIENT_LOOP PORT STOPFILE`: GET /health on loopback, one request after the
# other, until STOPFILE exists (300 s at most); prints "started" after the first answer, and
# last a JSON line of figures (see Load).
CLIENT_LOOP = """\
import json, os, socket, sys, time
port, stop = int(sys.argv[1]), sys.argv[2]
figures = {"served": 0, "failures": [], "longest": 0.0, "pids": [], "versions": []}
deadline = time.monotonic() + 300
while not os.path.exists(stop) and time.monotonic() < deadline:
    began = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /health HTTP/1.0\\r\\n\\r\\n")
            reply = b""
            while chunk := sock.recv(4096):
                reply += chunk
    except OSError as err:
        figures["failures"].append(repr(err))
        continue
    figures["longest"] = max(figures["longest"], time.monotonic() - began)
    if not reply.startswith(b"HTTP/1.0 200 "):
        figures["failures"].append(reply[:80].decode("latin-1"))
        continue
    figures["served"] += 1
    document = json.loads(reply.split(b"\\r\\n\\r\\n", 1)[1])
    for key, value in (("pids", document["pid"]), ("versions", document["version"])):
        if value not in figures[key]:
            figures[key].append(value)
    if figures["served"] == 1:
        print("started", flush=True)
print(json.dumps(figures), flush=True)
"""


@dataclass
class Load:
    """What CLIENT_LOOP saw: requests answered 200, the others (refused, reset, timed out, or
    another status), the longest request in seconds, and the pids and versions that answered."""

    served: int = 0
    failures: list[str] = field(default_factory=list)
    longest: float = 0.0
    pids: list[int] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.served} requests served, {len(self.failures)} failed, longest {self.longest:.3f} s"


@contextlib.contextmanager
def client_loop(sandbox: Sandbox, port: int = PORT) -> Iterator[Load]:
    """CLIENT_LOOP inside `sandbox` while the block runs (it has been answered once when the
    block starts); the Load is filled in when the block ends."""
    stop = f"/var/tmp/client-loop-{time.monotonic_ns()}.stop"
    loop = sandbox.spawn(["python3", "-I", "-c", CLIENT_LOOP, str(port), stop])
    load = Load()
    try:
        wait_until(lambda: "started" in loop.log.read_text(), 10.0, what="the client loop")
        yield load
    finally:
        sandbox.write_file(stop, "")
        status = loop.wait(timeout=30.0)
    output = loop.log.read_text()
    assert status == 0, output[-2000:]
    vars(load).update(json.loads(output.splitlines()[-1]))


def restarts_and_an_upgrade(
    sandbox: Sandbox,
    restart: Callable[[], object],
    v2: Path,
    restart_after_upgrade: bool,
    *,
    signalled: int | None = None,
) -> tuple[Load, Load]:
    """RELIABILITY.md S7: the client loop during 10 restart() calls, then during the upgrade to
    the v2 .deb (and a restart() after it, where the package itself does not restart). Where
    the package only sends USR2 to the daemon (supervisord), pid `signalled`: until its new
    image is ready."""
    with client_loop(sandbox) as restarts:
        for _ in range(10):
            restart()
    with client_loop(sandbox) as upgrade:
        if signalled is None:
            install(sandbox, v2)
        else:
            restart_in_place(sandbox, signalled, lambda: install(sandbox, v2))
        if restart_after_upgrade:
            restart()
    return restarts, upgrade


def restart_in_place(sandbox: Sandbox, pid: int, send_usr2: Callable[[], object]) -> None:
    """USR2 to the daemon `pid` by send_usr2(), then wait for its new image's ready line."""
    readies = len(log_lines(sandbox, rf" ready: .*, pid {pid}$"))
    send_usr2()
    wait_until(
        lambda: len(log_lines(sandbox, rf" ready: .*, pid {pid}$")) > readies,
        15.0,
        what="the restart in place",
    )


def wait_ready(sandbox: Sandbox, pid: int) -> None:
    """The daemon's "ready" line: its signal handlers are installed from then on."""
    wait_until(lambda: log_lines(sandbox, rf" ready: .*, pid {pid}$"), 10.0, what=f"pid {pid} ready")


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
