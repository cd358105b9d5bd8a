"""A running copy of a root (`Sandbox`), what the sysvinit host and the container share: commands,
files, processes and loopback HTTP inside; `Spawned`, a long-running command started there.

Every process is started by the harness and ended by its PID.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from common import CommandFailed, HttpResponse, ProcStatus, wait_until
from roots import ROOT_ENV

# Prefix of the long-lived commands: if pytest is killed, they get SIGKILL and do not linger.
DIE_WITH_HARNESS = ("setpriv", "--pdeathsig", "KILL", "--")


def child_pids(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (FileNotFoundError, ProcessLookupError):
        return []


def end_process(process: subprocess.Popen[str], sig: int, timeout: float) -> None:
    """Signal a process the harness started, by its PID; SIGKILL it if it outlives `timeout`."""
    if process.poll() is None:
        os.kill(process.pid, sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


class Sandbox:
    """A running copy of a root: what is common to the sysvinit root and the container.

    Pids taken and returned are the pids as seen inside; `host_pid` maps them.
    """

    NSENTER_FLAGS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, root: Path) -> None:
        self.root = root
        self.work = root.parent
        self.leader = 0  # host pid of the namespaces' PID 1, once started
        self._pid_ns = ""
        self._spawned: list[Spawned] = []

    # commands

    def enter_prefix(self) -> list[str]:
        if not self.leader:
            raise RuntimeError(f"{self} is not running")
        # nsenter dies with the harness: else, stopped by a halting container (see Spawned._signal),
        # it would keep its child an unreaped zombie and hold up the halt.
        return [*DIE_WITH_HARNESS, "nsenter", "-t", str(self.leader), *self.NSENTER_FLAGS, "--"]

    def run(
        self,
        cmd: Sequence[str],
        *,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 120.0,
        check: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside, as root, with a clean environment; output captured as text.

        A child it leaves in the background must not keep stdout/stderr open, or this waits
        for that child (start-stop-daemon --background closes them).
        """
        result = subprocess.run(
            [*self.enter_prefix(), *cmd], input=input, capture_output=True, text=True,
            stdin=subprocess.DEVNULL if input is None else None,
            env={**ROOT_ENV, **(env or {})}, timeout=timeout, check=False,
        )  # fmt: skip
        if check and result.returncode != 0:
            raise CommandFailed(result.returncode, list(cmd), result.stdout, result.stderr)
        return result

    def sh(self, script: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
        """`run` a /bin/sh (dash) script."""
        return self.run(["/bin/sh", "-c", script], **kwargs)  # type: ignore[arg-type]

    def spawn(
        self, cmd: Sequence[str], *, log: Path | None = None, env: Mapping[str, str] | None = None
    ) -> Spawned:
        """Start a long-running foreground command inside; its output goes to `log` (a host path)."""
        log = log or self.work / f"spawn-{time.monotonic_ns()}.log"
        with open(log, "ab") as out:
            process = subprocess.Popen(
                [*self.enter_prefix(), *cmd], stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env={**ROOT_ENV, **(env or {})}, text=True,
            )  # fmt: skip
        # nsenter forks to enter the PID namespace: the command is nsenter's only child.
        children = wait_until(
            lambda: child_pids(process.pid) or process.poll() is not None, 5.0, what=f"{cmd[0]} to start"
        )
        if children is True:
            raise RuntimeError(
                f"{list(cmd)} exited at once ({process.returncode}): {log.read_text()[-2000:]}"
            )
        host_pid = children[0]
        spawned = Spawned(process, host_pid, _ns_pid(host_pid), list(cmd), log)
        self._spawned.append(spawned)
        return spawned

    # files

    def path(self, inside: str) -> Path:
        """The host path of a path inside, seen through the root's own mounts (/run, /proc)."""
        base = Path(f"/proc/{self.leader}/root") if self.leader else self.root
        return base / inside.lstrip("/")

    def write_file(self, inside: str, content: str, mode: int = 0o644) -> Path:
        target = self.path(inside)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
        target.chmod(mode)
        return target

    def copy_in(self, source: Path, inside: str) -> str:
        shutil.copy2(source, self.path(inside))
        return inside

    def install_deb(
        self, deb: Path, *apt_args: str, timeout: float = 300.0
    ) -> subprocess.CompletedProcess[str]:
        """`apt-get install -y /var/tmp/x.deb` inside, offline: every dependency must be in the root."""
        inside = self.copy_in(deb, f"/var/tmp/{deb.name}")
        return self.run(
            ["apt-get", "install", "-y", "-o", "Dpkg::Use-Pty=0", *apt_args, inside], timeout=timeout
        )

    # processes

    def processes(self) -> list[ProcStatus]:
        found = []
        for entry in self.path("/proc").iterdir():
            if entry.name.isdigit():
                status = ProcStatus.read(entry)
                if status is not None:
                    found.append(status)
        return found

    def status(self, pid: int) -> ProcStatus | None:
        return ProcStatus.read(self.path(f"/proc/{pid}"))

    def pids_of(self, name: str) -> list[int]:
        """Pids whose process name (comm, 15 chars at most) is `name`, like `pgrep -x`."""
        return sorted(p.pid for p in self.processes() if p.name == name[:15])

    def host_pid(self, pid: int) -> int:
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                if (
                    os.readlink(f"/proc/{entry.name}/ns/pid") == self._pid_ns
                    and _ns_pid(int(entry.name)) == pid
                ):
                    return int(entry.name)
            except OSError:  # gone, or not ours to look at
                continue
        raise ProcessLookupError(f"no process {pid} inside {self}")

    def kill(self, pid: int, sig: int = signal.SIGTERM) -> None:
        os.kill(self.host_pid(pid), sig)

    def wait_gone(self, pid: int, timeout: float = 10.0) -> None:
        """Wait until a process has exited and been reaped (a zombie still counts as there)."""
        wait_until(lambda: self.status(pid) is None, timeout, what=f"pid {pid} to be gone")

    # network

    def http_get(
        self, port: int, path: str = "/", host: str = "127.0.0.1", timeout: float = 2.0
    ) -> HttpResponse:
        """GET http://host:port/path from inside (its own loopback)."""
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"only loopback addresses: {host}")
        result = self.run(
            ["python3", "-I", "-c", _HTTP_GET, f"http://{host}:{port}{path}", str(timeout)],
            timeout=timeout + 30,
        )
        if result.returncode != 0:
            return HttpResponse(0, "", result.stderr.strip())
        return HttpResponse(**json.loads(result.stdout))

    def wait_http(self, port: int, path: str = "/", timeout: float = 10.0) -> HttpResponse:
        """Poll `http_get` until the server answers at all (any HTTP status)."""
        last = HttpResponse(0, "")

        def answered() -> bool:
            nonlocal last
            last = self.http_get(port, path)
            return last.status != 0

        wait_until(answered, timeout, interval=0.05, what=f"an HTTP answer on port {port}")
        return last

    def _stop_spawned(self) -> None:
        for spawned in self._spawned:
            spawned.stop()
        self._spawned.clear()

    def _started(self, leader: int) -> None:
        self.leader = leader
        self._pid_ns = os.readlink(f"/proc/{leader}/ns/pid")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r}, leader={self.leader})"


_HTTP_GET = """
import json, sys, urllib.error, urllib.request
url, timeout = sys.argv[1], float(sys.argv[2])
try:
    with urllib.request.urlopen(url, timeout=timeout) as reply:
        print(json.dumps({"status": reply.status, "body": reply.read().decode(errors="replace")}))
except urllib.error.HTTPError as error:
    print(json.dumps({"status": error.code, "body": error.read().decode(errors="replace")}))
except OSError as error:
    print(json.dumps({"status": 0, "body": "", "error": str(error)}))
"""


def _ns_pid(host_pid: int) -> int:
    """The pid in its innermost PID namespace of a host process."""
    for line in Path(f"/proc/{host_pid}/status").read_text().splitlines():
        if line.startswith("NSpid:"):
            return int(line.split()[-1])
    raise ProcessLookupError(host_pid)


@dataclass
class Spawned:
    """A foreground command started with `Sandbox.spawn`."""

    nsenter: subprocess.Popen[str]  # on the host; exits with the command's status
    host_pid: int
    pid: int  # inside
    cmd: list[str]
    log: Path

    def running(self) -> bool:
        return self.nsenter.poll() is None

    def wait(self, timeout: float = 10.0) -> int:
        return self.nsenter.wait(timeout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 5.0) -> int:
        """Signal the command by its PID, SIGKILL it after `timeout`; returns nsenter's exit status."""
        if self.running():
            self._signal(sig)
            try:
                return self.nsenter.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
        return self.nsenter.wait()

    def _signal(self, sig: int) -> None:
        # When its child is stopped, nsenter stops itself, and nothing inside the namespaces can
        # continue it (systemd-shutdown stops every process before killing it): then it never
        # reaps its child and a halt waits for that zombie. So continue both.
        for pid, signals in ((self.host_pid, (sig, signal.SIGCONT)), (self.nsenter.pid, (signal.SIGCONT,))):
            with contextlib.suppress(ProcessLookupError):
                for each in signals:
                    os.kill(pid, each)
