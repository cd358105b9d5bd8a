"""What the system tests ask of the installed default service, in any root (a harness.Sandbox)."""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from harness import Sandbox

NAME = "my-service"
CONFIG = f"/etc/{NAME}/{NAME}.conf"
LOG = f"/var/log/{NAME}/{NAME}.log"
PORT = 8080

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


# `python3 -I -c POLL PORT STOPFILE`: GET /health, one connection after another, until STOPFILE
# exists (or 300 s pass); prints what it saw as JSON (RELIABILITY.md S7).
POLL = """\
import http.client, json, os, sys, time
port, stop = int(sys.argv[1]), sys.argv[2]
seen = {"served": 0, "failures": {}, "longest": 0.0}
deadline = time.monotonic() + 300
while not os.path.exists(stop) and time.monotonic() < deadline:
    start = time.monotonic()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/health")
        status = conn.getresponse().status
        conn.close()
        outcome = "served" if status == 200 else f"HTTP {status}"
    except (OSError, http.client.HTTPException) as err:
        outcome = type(err).__name__
    seen["longest"] = max(seen["longest"], time.monotonic() - start)
    if outcome == "served":
        seen["served"] += 1
    else:
        seen["failures"][outcome] = seen["failures"].get(outcome, 0) + 1
print(json.dumps(seen))
"""


@dataclass
class Polled:
    """What a client polling /health saw: requests served, failures by kind, the longest request."""

    served: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    longest: float = 0.0


@contextlib.contextmanager
def polling(sandbox: Sandbox, port: int = PORT) -> Iterator[Polled]:
    """A client inside the sandbox requests /health without a pause while the block runs; the
    Polled it yields is filled in when the block ends."""
    stop = "/run/poll-health.stop"
    polled = Polled()
    result: list[str] = []
    command = ["python3", "-I", "-c", POLL, str(port), stop]
    client = threading.Thread(target=lambda: result.append(sandbox.run(command, timeout=330).stdout))
    client.start()
    try:
        yield polled
    finally:
        sandbox.path(stop).touch()
        client.join()
        sandbox.path(stop).unlink()
    seen = json.loads(result[0])
    polled.served, polled.failures, polled.longest = seen["served"], seen["failures"], seen["longest"]


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
