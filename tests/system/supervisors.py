"""Supervisors on one service directory inside a `SysvRoot`: daemontools' supervise, runit's
runsv. `KINDS` names them for the `supervised` fixture.
"""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path
from typing import ClassVar

from common import wait_until
from sandbox import Spawned
from sysv import SysvRoot


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


# What the `supervised` fixture can start, by the name tests give it.
KINDS: dict[str, type[Supervisor]] = {"daemontools": Daemontools, "runit": Runit}
