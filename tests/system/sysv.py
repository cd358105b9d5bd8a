"""`SysvRoot` / `sysv_root`: a copied root run as a small host for sysvinit scripts: one
long-lived set of PID, mount, network, UTS and IPC namespaces whose PID 1 only reaps orphans.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from roots import ROOT_ENV, SUITE, SYSV, Flavour, fresh_root, mounts_under
from sandbox import DIE_WITH_HARNESS, Sandbox, child_pids, end_process


def _read_line(stream: IO[str], timeout: float) -> str:
    ready, _, _ = select.select([stream], [], [], timeout)
    return stream.readline() if ready else ""


# PID 1 of a SysvRoot's namespaces, run by the harness's own Python. Before chroot it mounts a
# minimal /dev, /dev/pts, /dev/shm and /run (all private to its mount namespace, so nothing is
# ever mounted on the host), brings up lo in its network namespace and sets the hostname; then it
# only reaps the orphans reparented to it, like init would: a daemon started by an init script
# outlives the command that started it and is reaped as soon as it exits.
_REAPER = r"""
import ctypes, fcntl, os, signal, socket, stat, struct, sys

root, hostname = sys.argv[1], sys.argv[2]
libc = ctypes.CDLL(None, use_errno=True)
PR_SET_NAME, MS_NOSUID, MS_NODEV, MS_NOEXEC = 15, 2, 4, 8
libc.prctl(PR_SET_NAME, b"harness-init")

def mount(fstype, target, flags, options):
    if libc.mount(fstype.encode(), (root + target).encode(), fstype.encode(), flags, options.encode()):
        error = ctypes.get_errno()
        raise OSError(error, f"mount {fstype} on {target}: {os.strerror(error)}")

os.umask(0o022)
mount("tmpfs", "/dev", MS_NOSUID, "mode=755,size=1m")
for name, major, minor in (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8),
                           ("urandom", 1, 9), ("tty", 5, 0)):
    os.mknod(f"{root}/dev/{name}", stat.S_IFCHR | 0o666, os.makedev(major, minor))
    os.chmod(f"{root}/dev/{name}", 0o666)
for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                     ("stderr", "/proc/self/fd/2"), ("ptmx", "pts/ptmx")):
    os.symlink(target, f"{root}/dev/{name}")
os.mkdir(f"{root}/dev/pts")
os.mkdir(f"{root}/dev/shm")
mount("devpts", "/dev/pts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5")
mount("tmpfs", "/dev/shm", MS_NOSUID | MS_NODEV, "mode=1777")
mount("tmpfs", "/run", MS_NOSUID | MS_NODEV, "mode=755")
os.mkdir(f"{root}/run/lock")
os.chmod(f"{root}/run/lock", 0o1777)

SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
    flags = struct.unpack("16sH", fcntl.ioctl(sock, SIOCGIFFLAGS, struct.pack("16sH22x", b"lo", 0))[:18])[1]
    fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | IFF_UP))
socket.sethostname(hostname)

os.chroot(root)
os.chdir("/")
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
print("ready", flush=True)
null = os.open("/dev/null", os.O_RDWR)
for fd in (0, 1, 2):
    os.dup2(null, fd)
while True:
    signal.sigwait({signal.SIGCHLD})
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass
"""


class SysvRoot(Sandbox):
    """A copied root run as a small sysvinit-style host (see `_REAPER`).

    Commands join its namespaces with nsenter and chroot into it. Its network namespace has
    only `lo`, so parallel tests can use the same port, and apt has no network. There is no
    /sys, no syslog (/dev/log) and no utmp: invoke-rc.d says "could not determine current
    runlevel" on stderr, as in any chroot, and goes on.
    """

    NSENTER_FLAGS = ("--pid", "--mount", "--net", "--uts", "--ipc", "--root", "--wd")

    def __init__(self, root: Path, hostname: str = "testhost") -> None:
        super().__init__(root)
        self.hostname = hostname
        self._unshare: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 10.0) -> SysvRoot:
        log = self.work / "init.log"
        script = self.work / "init.py"
        script.write_text(_REAPER)
        with open(log, "a") as errors:
            self._unshare = subprocess.Popen(
                # pdeathsig and --kill-child: if pytest itself is killed, the namespaces die too.
                [*DIE_WITH_HARNESS, "unshare", "--pid", "--fork", "--kill-child=SIGKILL",
                 "--mount", "--propagation", "private", "--net", "--uts", "--ipc",
                 f"--mount-proc={self.root}/proc", "--",
                 sys.executable, "-I", "-S", str(script), str(self.root), self.hostname],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors, text=True, env=ROOT_ENV,
            )  # fmt: skip
        assert self._unshare.stdout is not None
        line = _read_line(self._unshare.stdout, timeout)
        self._unshare.stdout.close()
        if line != "ready\n":
            self.stop()
            raise RuntimeError(f"the namespace init of {self.root} did not start: {log.read_text()[-2000:]}")
        self._started(child_pids(self._unshare.pid)[0])
        return self

    def stop(self) -> None:
        """SIGKILL the namespaces' PID 1, which kills everything inside; then check no mount is left."""
        self._stop_spawned()
        if self._unshare is not None:
            if self.leader:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.leader, signal.SIGKILL)
                # unshare reaps its child and exits by itself; it is only killed if that hangs.
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._unshare.wait(10.0)
            end_process(self._unshare, signal.SIGKILL, 10.0)
        self.leader = 0
        if mounts_under(self.root):
            raise RuntimeError(f"mounts left under {self.root}: {mounts_under(self.root)}")

    def __enter__(self) -> SysvRoot:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def sysv_root(flavour: Flavour = SYSV, hostname: str = "testhost", suite: str = SUITE) -> Iterator[SysvRoot]:
    """A fresh copy, running as a sysvinit-style host; torn down and deleted on exit."""
    with fresh_root(flavour, suite) as root, SysvRoot(root, hostname) as running:
        yield running
