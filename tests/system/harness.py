"""System-tier test harness: real Debian roots, run under real init systems and supervisors.

- `root_tarball` / `fresh_root`: debootstrap'ed bookworm roots, cached as tarballs under
  /var/cache/platform-skel, extracted afresh for every test and deleted afterwards.
- `SysvRoot` / `sysv_root`: a copy run as a small "host" for sysvinit scripts: one long-lived set
  of PID, mount, network, UTS and IPC namespaces whose PID 1 only reaps orphans.
- `Container` / `booted_container`: a copy booted with systemd-nspawn.
- `Daemontools` / `Runit`: supervise/runsv on a service directory inside a `SysvRoot`.

Every process is started by the harness and ended by its PID. Everything is torn down by the
context managers, also when the body raises.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, ClassVar, TypeVar

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
CACHE_DIR = Path(os.environ.get("PLATFORM_SKEL_CACHE", "/var/cache/platform-skel"))


def _work_dir() -> Path:
    if "PLATFORM_SKEL_WORK" in os.environ:
        return Path(os.environ["PLATFORM_SKEL_WORK"])
    # A root extracts ~15 times faster into RAM (0.16 s against 2.3 s on the build host's ext4)
    # and takes ~200 MB there while a test uses it.
    with contextlib.suppress(OSError):
        shm = os.statvfs("/dev/shm")
        if shm.f_bavail * shm.f_frsize > 4 << 30 and not shm.f_flag & (os.ST_NOEXEC | os.ST_NODEV):
            return Path("/dev/shm/platform-skel")
    return Path("/var/tmp/platform-skel")


WORK_DIR = _work_dir()
# Part of the cache key: bump it when the steps after debootstrap change.
RECIPE = 1

# Environment of every command run inside a root: nothing leaks in from pytest or the venv.
ROOT_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LANG": "C.UTF-8",
    "TERM": "dumb",
    "DEBIAN_FRONTEND": "noninteractive",
}

T = TypeVar("T")

# Prefix of the long-lived commands: if pytest is killed, they get SIGKILL and do not linger.
_DIE_WITH_HARNESS = ("setpriv", "--pdeathsig", "KILL", "--")


# --------------------------------------------------------------------------- generic helpers


def wait_until(
    predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.01, what: str = ""
) -> T:
    """Poll until `predicate()` is truthy and return that value; TimeoutError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what or predicate}")
        time.sleep(interval)


@dataclass(frozen=True)
class ProcStatus:
    """What /proc/PID/status and /proc/PID/cmdline say about one process (pids as seen inside)."""

    pid: int
    name: str
    state: str  # R, S, D, Z, ...
    ppid: int
    uids: tuple[int, ...]  # real, effective, saved, filesystem
    gids: tuple[int, ...]
    cap_eff: int
    cmdline: tuple[str, ...]

    @classmethod
    def read(cls, proc_dir: Path) -> ProcStatus | None:
        """None when the process is gone (or went away while being read)."""
        try:
            status = (proc_dir / "status").read_text()
            cmdline = (proc_dir / "cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError):
            return None
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        return cls(
            pid=int(fields["Pid"]),
            name=fields["Name"],
            state=fields["State"].split()[0],
            ppid=int(fields["PPid"]),
            uids=tuple(int(n) for n in fields["Uid"].split()),
            gids=tuple(int(n) for n in fields["Gid"].split()),
            cap_eff=int(fields["CapEff"], 16),
            cmdline=tuple(arg.decode(errors="replace") for arg in cmdline.split(b"\0")[:-1]),
        )


@dataclass(frozen=True)
class HttpResponse:
    status: int  # 0: no HTTP answer at all (see `error`)
    body: str
    error: str = ""


class CommandFailed(subprocess.CalledProcessError):
    def __str__(self) -> str:
        return f"{super().__str__()}\n--- stdout:\n{self.stdout}\n--- stderr:\n{self.stderr}"


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below `path` in the harness's own mount namespace."""
    prefix = str(path.resolve())
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4])
        if point == prefix or point.startswith(prefix + "/"):
            found.append(point)
    return found


def remove_tree(path: Path) -> None:
    """Delete a (root) tree, never following a mount point into what is mounted there."""
    for point in reversed(mounts_under(path)):
        subprocess.run(["umount", "--lazy", point], check=False)
    if mounts_under(path):
        raise RuntimeError(f"refusing to delete {path}: still mounted: {mounts_under(path)}")
    subprocess.run(["rm", "-rf", "--one-file-system", "--", str(path)], check=True)


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (FileNotFoundError, ProcessLookupError):
        return []


def _read_line(stream: IO[str], timeout: float) -> str:
    ready, _, _ = select.select([stream], [], [], timeout)
    return stream.readline() if ready else ""


def _end(process: subprocess.Popen[str], sig: int, timeout: float) -> None:
    """Signal a process the harness started, by its PID; SIGKILL it if it outlives `timeout`."""
    if process.poll() is None:
        os.kill(process.pid, sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


# --------------------------------------------------------------------------- cached roots


@dataclass(frozen=True)
class Flavour:
    name: str
    packages: tuple[str, ...]
    # Writes a policy-rc.d that exits 0, so that postinst may start services in a plain chroot.
    allow_service_start: bool

    def key(self, suite: str) -> str:
        spec = {"suite": suite, "flavour": self.name, "packages": sorted(self.packages), "recipe": RECIPE}
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]


# Everything a stdlib-python3 service package needs at runtime is already installed, because the
# .deb is installed without network. /lib/lsb/init-functions comes from sysvinit-utils and
# start-stop-daemon from dpkg (both Essential); lsb-base is there for packages that still depend on
# it; cron is what logrotate depends on when systemd is not PID 1.
BASE_PACKAGES = ("python3", "adduser", "logrotate", "cron", "procps", "lsb-base", "daemontools", "runit")
SYSV = Flavour("sysv", BASE_PACKAGES, allow_service_start=True)
SYSTEMD = Flavour("systemd", (*BASE_PACKAGES, "systemd", "systemd-sysv", "dbus"), allow_service_start=False)

_TAR_OPTIONS = ("--numeric-owner", "--xattrs", "--xattrs-include=*")


@contextlib.contextmanager
def _flocked(path: Path) -> Iterator[None]:
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def root_tarball(flavour: Flavour = SYSV, suite: str = SUITE) -> Path:
    """The cached tarball of a root, built once (also across pytest-xdist workers) when missing."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tarball = CACHE_DIR / f"{suite}-{flavour.name}-{flavour.key(suite)}.tar"
    if tarball.exists():
        return tarball
    with _flocked(CACHE_DIR / "build.lock"):
        if not tarball.exists():
            _build(flavour, suite, tarball)
    return tarball


def _build(flavour: Flavour, suite: str, tarball: Path) -> None:
    # Holding the build lock: whatever temporary files are here were left by a crashed build.
    for stale in [*CACHE_DIR.glob(".build-*"), *CACHE_DIR.glob("*.tar.part")]:
        remove_tree(stale)
    for old in CACHE_DIR.glob(f"{suite}-{flavour.name}-*.tar"):
        old.unlink()
    debs = CACHE_DIR / "debs"
    debs.mkdir(exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".build-{flavour.name}-", dir=CACHE_DIR))
    part = tarball.with_name(tarball.name + ".part")
    try:
        # In its own mount and PID namespaces, the /proc and /sys that debootstrap mounts in the
        # target, and any daemon a postinst starts, cannot outlive a crashed build.
        subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child",
             "--mount-proc", "debootstrap", "--variant=minbase", f"--include={','.join(flavour.packages)}",
             f"--cache-dir={debs}", suite, str(staging), MIRROR],
            check=True, stdin=subprocess.DEVNULL, env={**ROOT_ENV, "LANG": "C"},
        )  # fmt: skip
        _finish_root(staging, flavour)
        subprocess.run(["tar", *_TAR_OPTIONS, "-C", str(staging), "-cf", str(part), "."], check=True)
        with open(part, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(part, tarball)
    finally:
        part.unlink(missing_ok=True)
        remove_tree(staging)


def _finish_root(root: Path, flavour: Flavour) -> None:
    # mkdtemp made it 0700: the service users inside could not even traverse "/".
    root.chmod(0o755)
    # No package lists: apt cannot try the network, a missing dependency fails at once by name.
    for leftover in [
        *(root / "var/lib/apt/lists").glob("*_*"),
        *(root / "var/cache/apt/archives").glob("*.deb"),
    ]:
        leftover.unlink()
    (root / "etc/hostname").write_text("testhost\n")
    (root / "etc/hosts").write_text("127.0.0.1\tlocalhost\n127.0.1.1\ttesthost\n::1\tlocalhost\n")
    if flavour.allow_service_start:
        policy = root / "usr/sbin/policy-rc.d"
        policy.write_text(
            "#!/bin/sh\n# platform-skel test root: let maintainer scripts start services.\nexit 0\n"
        )
        policy.chmod(0o755)


@contextlib.contextmanager
def fresh_root(flavour: Flavour = SYSV, suite: str = SUITE) -> Iterator[Path]:
    """A private copy of the cached root at WORK_DIR/<id>/root, deleted on exit.

    WORK_DIR/<id>/ also holds the logs of what runs there, and a lock that marks it as in use
    (see `sweep_stale`).
    """
    tarball = root_tarball(flavour, suite)
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{flavour.name}-", dir=WORK_DIR))
    with open(work / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            root = work / "root"
            root.mkdir(mode=0o755)
            subprocess.run(["tar", *_TAR_OPTIONS, "-C", str(root), "-xf", str(tarball)], check=True)
            yield root
        finally:
            remove_tree(work)


def sweep_stale(min_age: float = 60.0) -> list[Path]:
    """Remove what a killed test run left behind (copies and cgroups); returns what it removed.

    A copy is stale when nobody holds its lock; `min_age` spares a copy that is being created.
    """
    removed: list[Path] = []
    for hierarchy in cgroup_hierarchies():
        for group in hierarchy.glob(f"{CGROUP_PREFIX}*"):
            work = WORK_DIR / group.name[len(CGROUP_PREFIX) :]
            if not work.exists() or not _in_use(work):
                remove_cgroup(group)
                removed.append(group)
    if WORK_DIR.is_dir():
        for work in WORK_DIR.iterdir():
            if work.is_dir() and time.time() - work.stat().st_mtime > min_age and not _in_use(work):
                _forget_nspawn_state(work)
                remove_tree(work)
                removed.append(work)
    return removed


def _in_use(work: Path) -> bool:
    try:
        with open(work / "lock", "rb") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except FileNotFoundError:
        return False
    return False


# --------------------------------------------------------------------------- cgroups

CGROUP_PREFIX = "platform-skel-"


def cgroup_hierarchies() -> list[Path]:
    """Where systemd-nspawn makes its payload/ and supervisor/ cgroups on this host."""
    if Path("/sys/fs/cgroup/cgroup.procs").exists() and not Path("/sys/fs/cgroup/systemd").exists():
        return [Path("/sys/fs/cgroup")]  # pure cgroup v2
    return [p for p in (Path("/sys/fs/cgroup/systemd"), Path("/sys/fs/cgroup/unified")) if p.is_dir()]


def cgroup_pids(group: Path) -> list[int]:
    pids: list[int] = []
    for procs in group.rglob("cgroup.procs"):
        with contextlib.suppress(FileNotFoundError):
            pids += [int(p) for p in procs.read_text().split()]
    return pids


def remove_cgroup(group: Path, timeout: float = 5.0) -> None:
    """SIGKILL whatever is left in a harness-made cgroup tree (by PID), then rmdir it bottom-up."""
    for pid in cgroup_pids(group):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not cgroup_pids(group), timeout, what=f"processes in {group} to end")
    for directory in sorted((p for p in group.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        directory.rmdir()
    group.rmdir()


# --------------------------------------------------------------------------- running roots


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
        return [*_DIE_WITH_HARNESS, "nsenter", "-t", str(self.leader), *self.NSENTER_FLAGS, "--"]

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
            lambda: _children(process.pid) or process.poll() is not None, 5.0, what=f"{cmd[0]} to start"
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
                [*_DIE_WITH_HARNESS, "unshare", "--pid", "--fork", "--kill-child=SIGKILL",
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
        self._started(_children(self._unshare.pid)[0])
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
            _end(self._unshare, signal.SIGKILL, 10.0)
        self.leader = 0
        if mounts_under(self.root):
            raise RuntimeError(f"mounts left under {self.root}: {mounts_under(self.root)}")

    def __enter__(self) -> SysvRoot:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Container(Sandbox):
    """A copied root booted by systemd-nspawn, in its own cgroup so that nothing is left behind."""

    NSENTER_FLAGS = ("-m", "-u", "-i", "-n", "-p", "-C", "-r", "-w")

    def __init__(self, root: Path, *, private_network: bool = True) -> None:
        super().__init__(root)
        self.private_network = private_network
        self.machine = _machine_name(self.work)
        self.cgroups = [h / f"{CGROUP_PREFIX}{self.work.name}" for h in cgroup_hierarchies()]
        self.console = self.work / "console.log"
        self.state = ""  # what `systemctl is-system-running --wait` said at boot
        self.nspawn: subprocess.Popen[str] | None = None  # the systemd-nspawn process, once started

    def start(self, timeout: float = 60.0, allow_degraded: bool = False) -> Container:
        """Boot and wait until systemd says `running` (or `degraded` if allowed)."""
        for group in self.cgroups:
            group.mkdir()
        nspawn = ["systemd-nspawn", "-D", str(self.root), f"--machine={self.machine}", "--boot"]
        nspawn += ["--register=no", "--keep-unit"]
        # nspawn's seccomp filter denies bpf(2) by default: systemd inside would then run units
        # without their IPAddressDeny=/IPAddressAllow= firewall, and say so only at debug level.
        nspawn.append("--system-call-filter=bpf")
        if self.private_network:
            nspawn.append("--private-network")
        # The wrapper moves itself into the harness's cgroups, then becomes nspawn; nspawn makes
        # its payload/ and supervisor/ cgroups below them, where `remove_cgroup` finds them.
        enter_cgroups = 'for g in $CGROUPS; do echo $$ > "$g/cgroup.procs"; done; unset CGROUPS; exec "$@"'
        with open(self.console, "a") as console:
            # SIGTERM, not SIGKILL, if pytest is killed: the container then halts by itself.
            self.nspawn = subprocess.Popen(
                ["/bin/sh", "-c", enter_cgroups, "sh", "setpriv", "--pdeathsig", "TERM", "--", *nspawn],
                stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT, text=True,
                env={**ROOT_ENV, "CGROUPS": " ".join(map(str, self.cgroups))},
            )  # fmt: skip
        try:
            self._boot(timeout, allow_degraded)
        except BaseException:
            self.stop()
            raise
        return self

    def _boot(self, timeout: float, allow_degraded: bool) -> None:
        assert self.nspawn is not None
        nspawn = self.nspawn
        deadline = time.monotonic() + timeout

        def alive() -> bool:
            if nspawn.poll() is not None:
                raise RuntimeError(f"systemd-nspawn exited ({nspawn.returncode}):\n{self.boot_log()[-3000:]}")
            return True

        def leader() -> int:
            return alive() and next((pid for pid in _children(nspawn.pid) if _comm(pid) == "systemd"), 0)

        self._started(wait_until(leader, timeout, what="the container's systemd"))
        wait_until(
            lambda: alive() and self.path("/run/systemd/private").exists(),
            deadline - time.monotonic(),
            what="the container's systemd to listen",
        )
        remaining = max(deadline - time.monotonic(), 1.0)
        try:
            result = self.run(["systemctl", "is-system-running", "--wait"], timeout=remaining)
        except subprocess.TimeoutExpired:
            jobs = self.run(["systemctl", "list-jobs", "--no-pager"]).stdout
            raise RuntimeError(f"container still booting after {timeout:g} s:\n{jobs}") from None
        self.state = result.stdout.strip()
        if self.state != "running" and not (allow_degraded and self.state == "degraded"):
            failed = self.run(["systemctl", "--failed", "--no-pager"]).stdout
            raise RuntimeError(f"container booted to {self.state!r}:\n{failed}\n{self.boot_log()[-3000:]}")

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM to nspawn halts the container cleanly; SIGKILL only if that hangs."""
        self._stop_spawned()
        if self.nspawn is not None:
            _end(self.nspawn, signal.SIGTERM, timeout)
        self.leader = 0
        _forget_nspawn_state(self.work)
        for group in self.cgroups:
            if group.exists():
                remove_cgroup(group)
        if mounts_under(self.root):
            raise RuntimeError(f"mounts left under {self.root}: {mounts_under(self.root)}")

    @property
    def exit_status(self) -> int | None:
        return None if self.nspawn is None else self.nspawn.poll()

    def boot_log(self) -> str:
        """The console output (without colour codes)."""
        text = self.console.read_bytes().decode(errors="replace").replace("\r", "")
        return re.sub(r"\x1b\[[0-9;]*m", "", text)

    def __enter__(self) -> Container:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _machine_name(work: Path) -> str:
    # Unique, so that parallel containers do not share nspawn's per-machine state on the host.
    # nspawn refuses a name that ends in "-" (mkdtemp's suffix may end in "_"); the suffix has
    # a fixed length, so stripping keeps names unique.
    return re.sub(r"[^a-z0-9-]", "-", work.name.lower()).strip("-")


def _forget_nspawn_state(work: Path) -> None:
    """What nspawn deletes on the host when it exits normally, but not when it was killed."""
    with contextlib.suppress(FileNotFoundError):
        image = (work / "root").stat()
        Path(f"/run/systemd/nspawn/locks/inode-{image.st_dev}:{image.st_ino}").unlink(missing_ok=True)
    remove_tree(Path(f"/run/systemd/nspawn/propagate/{_machine_name(work)}"))


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except (FileNotFoundError, ProcessLookupError):
        return ""


@contextlib.contextmanager
def sysv_root(flavour: Flavour = SYSV, hostname: str = "testhost") -> Iterator[SysvRoot]:
    """A fresh copy, running as a sysvinit-style host; torn down and deleted on exit."""
    with fresh_root(flavour) as root, SysvRoot(root, hostname) as running:
        yield running


@contextlib.contextmanager
def booted_container(
    flavour: Flavour = SYSTEMD, *, private_network: bool = True, allow_degraded: bool = False
) -> Iterator[Container]:
    """A fresh copy, booted with systemd-nspawn; halted and deleted on exit."""
    with fresh_root(flavour) as root:
        container = Container(root, private_network=private_network)
        container.start(allow_degraded=allow_degraded)
        try:
            yield container
        finally:
            container.stop()


# --------------------------------------------------------------------------- supervisors


class Supervisor:
    """A daemontools- or runit-style supervisor on one service directory inside a SysvRoot."""

    PROGRAM: ClassVar[str]
    CONTROL: ClassVar[str]  # svc / sv
    EXIT: ClassVar[tuple[str, ...]]  # control arguments that stop the service and the supervisor

    def __init__(self, root: SysvRoot, service_dir: str) -> None:
        self.root = root
        self.service_dir = service_dir
        self.process: Spawned | None = None

    def start(self, timeout: float = 5.0) -> Supervisor:
        self.process = self.root.spawn(
            [self.PROGRAM, self.service_dir],
            log=self.root.work / f"{self.PROGRAM}-{Path(self.service_dir).name}.log",
        )
        wait_until(self.ready, timeout, what=f"{self.PROGRAM} {self.service_dir}")
        return self

    def ready(self) -> bool:
        return self.root.path(f"{self.service_dir}/supervise/control").exists()

    def ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`svc ARGS DIR` / `sv ARGS DIR`."""
        return self.root.run([self.CONTROL, *args, self.service_dir])

    def status_text(self) -> str:
        raise NotImplementedError

    def pid(self) -> int | None:
        """The supervised pid (inside), None while the service is down."""
        found = re.search(r"\(pid (\d+)\)", self.status_text())
        return int(found.group(1)) if found else None

    def wait_pid(self, timeout: float = 5.0) -> int:
        return wait_until(self.pid, timeout, what=f"{self.service_dir} to be up")

    def wait_new_pid(self, old: int, timeout: float = 5.0) -> int:
        """Wait until the service runs with a pid other than `old` (after a crash, a restart)."""
        return wait_until(lambda: (pid := self.pid()) != old and pid, timeout, what=f"a pid other than {old}")

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the supervisor to stop the service and exit; by PID (SIGKILL) if it does not."""
        if self.process is None or not self.process.running():
            return
        service = self.pid()
        self.ctl(*self.EXIT)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            if service is not None and self.root.status(service) is not None:
                self.root.kill(service, signal.SIGKILL)
            self.process.stop(signal.SIGKILL)

    def __enter__(self) -> Supervisor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Daemontools(Supervisor):
    PROGRAM = "supervise"
    CONTROL = "svc"
    EXIT = ("-dx",)

    def ready(self) -> bool:
        return super().ready() and self.root.run(["svok", self.service_dir]).returncode == 0

    def status_text(self) -> str:
        return self.root.run(["svstat", self.service_dir]).stdout  # "DIR: up (pid 42) 3 seconds"


class Runit(Supervisor):
    PROGRAM = "runsv"
    CONTROL = "sv"
    EXIT = ("exit",)

    def status_text(self) -> str:
        return self.root.run(["sv", "status", self.service_dir]).stdout  # "run: DIR: (pid 42) 3s"
