"""`Container` / `booted_container`: a copied root booted with systemd-nspawn, in cgroups of
the harness's own so that nothing is left behind.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from common import wait_until
from roots import ROOT_ENV, SUITE, SYSTEMD, Flavour, fresh_root, mounts_under, remove_tree
from sandbox import Sandbox, child_pids, end_process

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


# --------------------------------------------------------------------------- containers


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
            return alive() and next((pid for pid in child_pids(nspawn.pid) if _comm(pid) == "systemd"), 0)

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
            end_process(self.nspawn, signal.SIGTERM, timeout)
        self.leader = 0
        forget_nspawn_state(self.work)
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


def forget_nspawn_state(work: Path) -> None:
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
def booted_container(
    flavour: Flavour = SYSTEMD,
    *,
    private_network: bool = True,
    allow_degraded: bool = False,
    suite: str = SUITE,
) -> Iterator[Container]:
    """A fresh copy, booted with systemd-nspawn; halted and deleted on exit."""
    with fresh_root(flavour, suite) as root:
        container = Container(root, private_network=private_network)
        container.start(allow_degraded=allow_degraded)
        try:
            yield container
        finally:
            container.stop()
