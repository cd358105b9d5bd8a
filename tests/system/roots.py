"""Debian roots for the system tier: debootstrap'ed once, cached as tarballs, copied per test.

- `root_tarball`: the cached tarball of a `Flavour` (a package set) of a suite (a Debian release),
  built once under /var/cache/platform-skel, also across pytest-xdist workers: apt installs the
  flavour's packages into the release's debootstrap'ed minbase, itself cached. Roots of different
  releases build side by side.
- `fresh_root`: a private copy of it, extracted afresh for a test and deleted afterwards.
- `remove_tree`: deletes a copy, never following a mount point.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# The releases the README promises, oldest first; SUITE is the build machines' own, NEXT the
# testing release that `make test-next` tries (RELEASE_TESTED_ON_NEXT's tests run there instead).
RELEASES = ("bullseye", "bookworm", "trixie")
# What README.md promises of each (tests/fast/test_generated_docs.py): its Debian version and
# its python3, which the daemon's own tests run on (test_releases.py).
DEBIAN_VERSION = {"bullseye": "11", "bookworm": "12", "trixie": "13"}
PYTHON_VERSION = {"bullseye": "3.9", "bookworm": "3.11", "trixie": "3.13"}
SUITE = "bookworm"
NEXT = "forky"
RELEASE_TESTED_ON_NEXT = "trixie"
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
RECIPE = 2

# Environment of every command run inside a root: nothing leaks in from pytest or the venv.
ROOT_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LANG": "C.UTF-8",
    "TERM": "dumb",
    "DEBIAN_FRONTEND": "noninteractive",
}


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


@dataclass(frozen=True)
class Flavour:
    name: str
    packages: tuple[str, ...]
    # Writes a policy-rc.d that exits 0, so that postinst may start services in a plain chroot.
    allow_service_start: bool

    def packages_of(self, suite: str) -> tuple[str, ...]:
        """What apt installs into the release's minbase root for this flavour."""
        if suite in _STANDALONE_SYSUSERS and "systemd" not in self.packages:
            return (*self.packages, "systemd-standalone-sysusers")
        return self.packages

    def key(self, suite: str) -> str:
        packages = sorted(self.packages_of(suite))
        spec = {"suite": suite, "flavour": self.name, "packages": packages, "recipe": RECIPE}
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]


# Everything a stdlib-python3 service package needs at runtime is already installed, because the
# .deb is installed without network. /lib/lsb/init-functions comes from sysvinit-utils and
# start-stop-daemon from dpkg (both Essential); lsb-base is there for packages that still depend on
# it; cron is what logrotate depends on when systemd is not PID 1.
BASE_PACKAGES = ("python3", "adduser", "logrotate", "cron", "procps", "lsb-base", "daemontools", "runit")
# From trixie on cron needs a sysusers: without systemd the standalone one, as on a sysvinit host.
# Named beside cron, apt takes it; debootstrap's resolver would take systemd, the first alternative.
_STANDALONE_SYSUSERS = ("trixie", NEXT)
SYSV = Flavour("sysv", BASE_PACKAGES, allow_service_start=True)
SYSTEMD = Flavour("systemd", (*BASE_PACKAGES, "systemd", "systemd-sysv", "dbus"), allow_service_start=False)
# A release's own lintian (through the project's `make lint-deb`) and pytest, run on what the build
# host made (test_releases.py): on the .deb and the daemon's sources, so none of the service's
# runtime.
CHECK = Flavour("check", ("python3", "python3-pytest", "make", "lintian"), allow_service_start=False)
# And what a release newer than the build machines' needs to build the .deb itself: the
# project's Build-Depends there (systemd.pc is in systemd-dev from trixie on) and build-essential.
BUILD = Flavour(
    "build",
    (*CHECK.packages, "build-essential", "debhelper", "dh-python", "python3-pip", "pkgconf", "systemd-dev"),
    allow_service_start=False,
)

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
    # One lock per release: its roots share a download cache; other releases build meanwhile.
    with _flocked(CACHE_DIR / f"build-{suite}.lock"):
        if not tarball.exists():
            _build(flavour, suite, tarball)
    return tarball


def _build(flavour: Flavour, suite: str, tarball: Path) -> None:
    # Holding the release's lock: its temporary files here were left by a crashed build.
    for stale in [*CACHE_DIR.glob(f".staging-{suite}-*"), *CACHE_DIR.glob(f"{suite}-*.tar.part")]:
        remove_tree(stale)
    for old in CACHE_DIR.glob(f"{suite}-{flavour.name}-*.tar"):
        old.unlink()
    debs = CACHE_DIR / "debs" / suite
    (debs / "partial").mkdir(parents=True, exist_ok=True)
    base = _minbase(suite, debs)
    with _staging(suite, flavour.name, tarball) as staging:
        subprocess.run(["tar", *_TAR_OPTIONS, "-C", str(staging), "-xf", str(base)], check=True)
        # policy-rc.d 101: no service a postinst would start runs during the build.
        policy = staging / "usr/sbin/policy-rc.d"
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        _in_namespaces(
            staging,
            f"mount --bind {debs} {staging}/var/cache/apt/archives && "
            f"chroot {staging} apt-get install -y -q --no-install-recommends -o Dpkg::Use-Pty=0 "
            f"-o APT::Sandbox::User=root {' '.join(flavour.packages_of(suite))}",
        )
        policy.unlink()
        _finish_root(staging, flavour)


def _minbase(suite: str, debs: Path) -> Path:
    """The release's debootstrap --variant=minbase, with its package lists: every flavour's start."""
    spec = json.dumps({"suite": suite, "mirror": MIRROR, "recipe": RECIPE}, sort_keys=True)
    tarball = CACHE_DIR / f"{suite}-minbase-{hashlib.sha256(spec.encode()).hexdigest()[:12]}.tar"
    if tarball.exists():
        return tarball
    for old in CACHE_DIR.glob(f"{suite}-minbase-*.tar"):
        old.unlink()
    with _staging(suite, "minbase", tarball) as staging:
        debootstrap = f"debootstrap --variant=minbase --cache-dir={debs} {suite} {staging} {MIRROR}"
        _in_namespaces(staging, debootstrap, mount_proc=False)
        staging.chmod(0o755)
    return tarball


@contextlib.contextmanager
def _staging(suite: str, name: str, tarball: Path) -> Iterator[Path]:
    """A directory to build a root in; on success it is written to `tarball`, whole or not at all."""
    staging = Path(tempfile.mkdtemp(prefix=f".staging-{suite}-{name}-", dir=CACHE_DIR))
    part = tarball.with_name(tarball.name + ".part")
    try:
        yield staging
        subprocess.run(["tar", *_TAR_OPTIONS, "-C", str(staging), "-cf", str(part), "."], check=True)
        with open(part, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(part, tarball)
    finally:
        part.unlink(missing_ok=True)
        remove_tree(staging)


def _in_namespaces(root: Path, script: str, *, mount_proc: bool = True) -> None:
    """Run `script` in its own mount and PID namespaces: what it mounts, and any daemon a postinst
    starts, cannot outlive it, even when the build crashes."""
    if mount_proc:
        script = f"mount -t proc proc {root}/proc && {script}"
    subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child", "--mount-proc",
         "sh", "-ec", script],
        check=True, stdin=subprocess.DEVNULL, env={**ROOT_ENV, "LANG": "C"},
    )  # fmt: skip


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


def in_use(work: Path) -> bool:
    try:
        with open(work / "lock", "rb") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except FileNotFoundError:
        return False
    return False
