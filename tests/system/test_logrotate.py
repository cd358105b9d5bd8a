"""Log rotation with the shipped logrotate config, and zero loss.

Each test installs the default project's .deb with apt into its own Debian root, run as a small
sysvinit host where postinst starts the service, and runs logrotate inside it as root, the way
cron does: `logrotate -f -s STATE /etc/logrotate.d/my-service` (-f, so that every run rotates).
Every GET /health?seq=C.N logs one line with N: clients inside the root (C) number their lines.

Two things reopen the daemon's log after a rotation: the config's postrotate, which runs as the
service user (`su`) and calls the init script's `rotate` (SIGUSR1), and the daemon itself, which
checks before each line whether a new file has taken its log's place. The figures printed with
FIGURE say which of them did the work.

Rows: R1 (every line exactly once, no copytruncate), R2 (new file within 1 s), R3 (logrotate -d),
R4 (a symlink planted by the service user), R5 (removed, not purged).
"""

from __future__ import annotations

import gzip
import re
import stat
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import roots
from common import wait_until
from service import AS_SERVICE_USER, INIT, LOG, LOG_DIR, NAME, PIDFILE, PORT, USER, health, install
from support import require_tool
from sysv import SysvRoot

if TYPE_CHECKING:
    from conftest import ServiceDebs

CONF = f"/etc/logrotate.d/{NAME}"
ROTATE = ("logrotate", "-f", "-s", "/var/lib/logrotate/test.status", CONF)
SEQ = re.compile(r"GET /health\?seq=(\d+)\.(\d+) ")
REOPENED = "INFO log file reopened"

# Requests one after the other, as fast as the daemon answers, until the stop file exists;
# prints how many it made. Each one is a line in the daemon's log, numbered CLIENT_ID.SEQ.
# A slow client sends each request line, then waits PAUSE seconds before the blank line.
CLIENT = r"""
import os, socket, sys, time
port, stop, client, pause = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
seq = 0
while not os.path.exists(stop):
    seq += 1
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(b"GET /health?seq=%d.%d HTTP/1.0\r\n" % (client, seq))
        time.sleep(pause)
        conn.sendall(b"\r\n")
        reply = b""
        while chunk := conn.recv(4096):
            reply += chunk
    if not reply.startswith(b"HTTP/1.0 200 "):
        sys.exit(f"request {seq}: {reply[:100]!r}")
print(seq)
"""


@pytest.fixture
def root(sysv_root: Callable[..., SysvRoot], service_debs: ServiceDebs) -> SysvRoot:
    """A root with the .deb installed and the service running as postinst started it."""
    root = sysv_root()
    install(root, service_debs.v1)
    assert root.run([INIT, "status"]).returncode == 0
    assert "ready: listening" in root.path(LOG).read_text()
    return root


def rotate(root: SysvRoot) -> None:
    result = root.run(ROTATE)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", ""), result


def daemon_pid(root: SysvRoot) -> int:
    return int(root.path(PIDFILE).read_text())


def log_files(root: SysvRoot) -> dict[str, str]:
    """Every file in the log directory by name, decompressed, oldest first."""

    def age(path: Path) -> int:
        number = path.name.removeprefix(f"{NAME}.log").removeprefix(".").removesuffix(".gz")
        return int(number) if number.isdigit() else 0

    files = {}
    for path in sorted(root.path(LOG_DIR).iterdir(), key=age, reverse=True):
        data = path.read_bytes()
        files[path.name] = (gzip.decompress(data) if path.name.endswith(".gz") else data).decode()
    return files


def open_log_inodes(root: SysvRoot, pid: int) -> set[int]:
    """Inodes of the files in the log directory that the daemon has open."""
    log_dir = root.path(LOG_DIR).stat().st_dev
    inodes = set()
    for fd in root.path(f"/proc/{pid}/fd").iterdir():
        info = fd.stat()
        if stat.S_ISREG(info.st_mode) and info.st_dev == log_dir:
            inodes.add(info.st_ino)
    return inodes


def http_seq(root: SysvRoot, marker: str) -> None:
    reply = root.http_get(PORT, f"/health?seq={marker}")
    assert reply.status == 200, reply


class Clients:
    """CLIENTs inside the root, all at once: one for each pause (0: at full speed)."""

    def __init__(self, root: SysvRoot, pauses: list[float]) -> None:
        self.root = root
        self.stop_file = "/run/client.stop"
        root.write_file("/usr/local/lib/client.py", CLIENT)
        self.processes = [
            root.spawn(
                ["python3", "-I", "/usr/local/lib/client.py", str(PORT), self.stop_file, str(n), str(pause)]
            )
            for n, pause in enumerate(pauses)
        ]

    def finish(self) -> set[tuple[int, int]]:
        """Stop the clients; the (client, seq) of every request they made, all answered."""
        self.root.write_file(self.stop_file, "")
        made = set()
        for client, process in enumerate(self.processes):
            assert process.wait(10.0) == 0, process.log.read_text()[-2000:]
            made |= {(client, seq) for seq in range(1, int(process.log.read_text().split()[-1]) + 1)}
        return made


def wait_for_lines(root: SysvRoot, size: int) -> None:
    wait_until(lambda: root.path(LOG).stat().st_size >= size, 30.0, what=f"{size} bytes of log")


def count_seqs(files: dict[str, str]) -> Counter[tuple[int, int]]:
    return Counter((int(c), int(n)) for text in files.values() for c, n in SEQ.findall(text))


def directives(config: str) -> list[str]:
    return [
        line.split()[0] for line in config.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]


# --------------------------------------------------------------------------- R1


ROTATIONS = 12
# Three clients at full speed and a slow one, which a daemon serving one client at a time
# would let hold up the others for 50 ms on each of its requests.
PAUSES = [0.0, 0.0, 0.0, 0.05]
BYTES_PER_FILE = 340_000  # ~4,200 lines in each file before it is rotated
LINES = 50_000


@pytest.mark.releases(*roots.RELEASES)
def test_R1_every_line_exactly_once_across_12_forced_rotations_from_4_clients_at_once(
    root: SysvRoot,
) -> None:
    config = root.path(CONF).read_text()
    assert "copytruncate" not in directives(config) and "create" in directives(config)
    clients = Clients(root, PAUSES)
    began = time.monotonic()
    for _ in range(ROTATIONS):
        wait_for_lines(root, BYTES_PER_FILE)
        live = root.path(LOG).stat().st_ino
        rotate(root)
        assert root.path(f"{LOG}.1").stat().st_ino == live, "the log must be moved, not copied"
    wait_for_lines(root, BYTES_PER_FILE)
    written = clients.finish()
    elapsed = time.monotonic() - began
    assert root.run([INIT, "stop"]).returncode == 0  # its last line is written

    files = log_files(root)
    expected = [f"{NAME}.log.{n}.gz" for n in range(ROTATIONS, 1, -1)] + [f"{NAME}.log.1", f"{NAME}.log"]
    assert list(files) == expected, "one rotation per logrotate run, nothing else in the directory"
    seen = count_seqs(files)
    lost = len(written - set(seen))
    duplicated = sorted(n for n, times in seen.items() if times > 1)
    strays = sorted(set(seen) - written)
    # Which mechanism moved the daemon to each new file first: lines written there before the
    # postrotate's SIGUSR1 arrived were written after the daemon's own check.
    new_files = list(files.values())[1:]
    before_usr1 = [text.split(REOPENED)[0].count("GET /health") for text in new_files]
    by_usr1 = sum(REOPENED in text for text in new_files)
    print(
        f"\nFIGURE R1: {len(written)} lines, {len(PAUSES)} clients, {elapsed:.1f} s, {ROTATIONS} rotations; "
        f"lost {lost}, duplicated {len(duplicated)}; reopened by SIGUSR1 {by_usr1}/{ROTATIONS} times; "
        f"lines in the new file before SIGUSR1 arrived: {before_usr1}"
    )
    assert (lost, duplicated, strays) == (0, [], [])
    assert len(written) >= LINES


def test_R1_lines_logged_between_rename_and_create_stay_in_the_rotated_files(root: SysvRoot) -> None:
    """logrotate renames the log, then creates the new one: a line in between must not make the
    daemon create it (logrotate would then set that file aside as *.backup, lines and all).
    strace holds logrotate for WINDOW seconds right after the rename, at full speed."""
    require_tool("strace")
    window = 0.3
    clients = Clients(root, PAUSES)
    wait_for_lines(root, BYTES_PER_FILE // 20)
    held = [
        "strace", "-f", "-qq", "-o", "/dev/null", "-P", LOG,
        "-e", "trace=rename,renameat,renameat2",
        "-e", f"inject=rename,renameat,renameat2:delay_exit={int(window * 1e6)}",
    ]  # fmt: skip
    began = time.monotonic()
    result = subprocess.run(
        [*held, *root.enter_prefix(), *ROTATE], capture_output=True, text=True, timeout=60
    )
    took = time.monotonic() - began
    assert (result.returncode, result.stdout, result.stderr) == (0, "", ""), result
    assert window <= took < 10 * window, f"logrotate took {took:.2f} s: was only the log's rename held?"
    wait_for_lines(root, BYTES_PER_FILE // 20)
    written = clients.finish()
    assert root.run([INIT, "stop"]).returncode == 0

    files = log_files(root)
    assert list(files) == [f"{NAME}.log.1", f"{NAME}.log"]
    seen = count_seqs(files)
    assert set(seen) == written and set(seen.values()) == {1}
    print(f"\nFIGURE R1 (rename held {window} s): {len(written)} lines written, 0 lost, no *.backup")


# --------------------------------------------------------------------------- R2


def test_R2_after_a_rotation_the_next_line_goes_to_the_new_file_within_1s(root: SysvRoot) -> None:
    pid = daemon_pid(root)
    rotate(root)
    began = time.monotonic()
    http_seq(root, "R2")
    wait_until(lambda: "seq=R2 " in root.path(LOG).read_text(), 1.0, what="the line in the new file")
    delay = time.monotonic() - began
    assert "seq=R2 " not in root.path(f"{LOG}.1").read_text()
    assert open_log_inodes(root, pid) == {root.path(LOG).stat().st_ino}
    print(f"\nFIGURE R2: a request's line in the new file {delay * 1000:.0f} ms after the rotation")


def test_R2_postrotate_reopens_the_log_with_usr1_under_sysvinit(root: SysvRoot) -> None:
    """No line is needed: the postrotate's `rotate` signals the daemon. logrotate runs its
    scripts as root even with `su` (only its file work is the user's); `rotate` works when
    the service user runs it too."""
    pid = daemon_pid(root)
    rotate(root)
    began = time.monotonic()
    wait_until(lambda: REOPENED in root.path(LOG).read_text(), 1.0, what="SIGUSR1's reopen")
    delay = time.monotonic() - began
    assert open_log_inodes(root, pid) == {root.path(LOG).stat().st_ino}
    as_user = root.run([*AS_SERVICE_USER, INIT, "rotate"])
    assert as_user.returncode == 0, as_user
    wait_until(lambda: root.path(LOG).read_text().count(REOPENED) == 2, 1.0, what="a second reopen")
    assert daemon_pid(root) == pid
    print(
        f"\nFIGURE R2: postrotate's SIGUSR1 reopened the log {delay * 1000:.0f} ms after logrotate returned"
    )


# --------------------------------------------------------------------------- R3


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [
        line for line in (result.stdout + result.stderr).splitlines() if re.search(r"\berror\b", line, re.I)
    ]


def test_R3_logrotate_debug_run_of_the_shipped_config_exits_0_without_errors(root: SysvRoot) -> None:
    result = root.run(["logrotate", "-d", CONF])
    assert (result.returncode, error_lines(result)) == (0, []), result.stderr
    assert f"rotating pattern: {LOG_DIR}/*.log" in result.stderr
    # The same check finds an error where there is one: a `su` user that does not exist.
    broken = root.path(CONF).read_text().replace(f"su {USER} {USER}", "su no-such-user no-such-user")
    root.write_file("/etc/logrotate-broken.conf", broken)
    result = root.run(["logrotate", "-d", "/etc/logrotate-broken.conf"])
    assert result.returncode != 0 and error_lines(result), result


# --------------------------------------------------------------------------- R4


CANARY = "/etc/canary"
SECRET = "canary: root's secret, never to be seen by the service user\n"


@pytest.mark.parametrize("planted", [f"{NAME}.log", f"{NAME}.log.1"])
def test_R4_symlink_planted_by_the_service_user_leaves_a_root_canary_unchanged(
    root: SysvRoot, planted: str
) -> None:
    """The log, or the rotated file that logrotate compresses next, replaced by a symlink."""
    canary = root.write_file(CANARY, SECRET, mode=0o600)
    before = canary.stat()
    pid = daemon_pid(root)
    http_seq(root, "before")
    if planted.endswith(".1"):
        rotate(root)
        http_seq(root, "rotated")
    planted_at = f"{LOG_DIR}/{planted}"
    assert root.run([*AS_SERVICE_USER, "ln", "-sfn", CANARY, planted_at]).returncode == 0
    assert root.path(planted_at).is_symlink()
    outputs = []
    for _ in range(2):
        root.http_get(PORT, "/health?seq=planted")  # the daemon cannot open the canary either
        result = root.run(ROTATE)
        outputs.append(f"{result.returncode}: {result.stderr.strip()}")
    print(f"\nNOTE R4 ({planted} planted): logrotate said {outputs}")
    after = canary.stat()
    assert canary.read_text() == SECRET
    assert (after.st_ino, after.st_uid, after.st_gid, after.st_mode, after.st_nlink, after.st_size) == (
        before.st_ino, before.st_uid, before.st_gid, before.st_mode, before.st_nlink, before.st_size,
    )  # fmt: skip
    assert after.st_mtime_ns == before.st_mtime_ns
    for path in root.path(LOG_DIR).iterdir():
        if not path.is_symlink():
            data = path.read_bytes()
            assert (
                "root's secret" not in (gzip.decompress(data) if path.name.endswith(".gz") else data).decode()
            )
    assert health(root)["pid"] == pid, "the daemon must keep serving"


# --------------------------------------------------------------------------- R5


def test_R5_logrotate_after_remove_without_purge_exits_0_without_output(root: SysvRoot) -> None:
    http_seq(root, "R5")
    removed = root.run(["apt-get", "remove", "-y", NAME])
    assert removed.returncode == 0, removed.stdout[-3000:] + removed.stderr[-3000:]
    assert root.path(CONF).exists() and root.path(LOG).exists(), "conffile and log stay until purge"
    assert not root.pids_of(NAME)
    result = root.run(ROTATE)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert "seq=R5 " in root.path(f"{LOG}.1").read_text(), "the log was rotated, the postrotate run"
