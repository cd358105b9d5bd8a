"""Supervisors of one service inside a `SysvRoot`: daemontools' supervise and runit's runsv on a
service directory, Debian's supervisord on a program of its conf.d (in a root of the SUPERVISORD
flavour). `KINDS` names them for the `supervised` fixture.
"""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path
from typing import ClassVar

import roots
from common import wait_until
from sandbox import Spawned
from sysv import SysvRoot

# Debian's supervisor package (4.2.5 in bookworm) in a root of its own flavour.
SUPERVISORD = roots.Flavour("supervisord", (*roots.BASE_PACKAGES, "supervisor"), allow_service_start=True)


class Supervisor:
    """A supervisor in the foreground inside a SysvRoot, and its control command on one service:
    a service directory (daemontools, runit) or a program name (supervisord)."""

    PROGRAM: ClassVar[str]  # supervise / runsv / supervisord
    CONTROL: ClassVar[str]  # svc / sv / supervisorctl: `CONTROL ARGS SERVICE`
    USR2: ClassVar[tuple[str, ...]] = ()  # control arguments that send the service USR2

    def __init__(self, root: SysvRoot, service: str) -> None:
        self.root = root
        self.service = service
        self.process: Spawned | None = None

    def command(self) -> list[str]:
        return [self.PROGRAM, self.service]

    def start(self, timeout: float = 10.0) -> Supervisor:
        self.process = self.root.spawn(
            self.command(), log=self.root.work / f"{self.PROGRAM}-{Path(self.service).name}.log"
        )
        wait_until(self.ready, timeout, what=f"{self.PROGRAM} {self.service}")
        return self

    def ready(self) -> bool:
        return self.root.path(f"{self.service}/supervise/control").exists()

    def ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`svc ARGS DIR` / `sv ARGS DIR` / `supervisorctl ARGS PROGRAM`."""
        return self.root.run([self.CONTROL, *args, self.service])

    def exit(self) -> None:
        """Ask the supervisor to stop the service and exit."""
        raise NotImplementedError

    def usr2(self) -> None:
        """USR2 to the service (restart in place), through the supervisor where it can send one."""
        self.ctl(*self.USR2).check_returncode()

    def status_text(self) -> str:
        raise NotImplementedError

    def pid(self) -> int | None:
        """The supervised pid (inside), None while the service is down."""
        found = re.search(r"\(pid (\d+)\)", self.status_text())
        return int(found.group(1)) if found else None

    def wait_pid(self, timeout: float = 5.0) -> int:
        return wait_until(self.pid, timeout, what=f"{self.service} to be up")

    def wait_new_pid(self, old: int, timeout: float = 5.0) -> int:
        """Wait until the service runs with a pid other than `old` (after a crash, a restart)."""
        return wait_until(lambda: (pid := self.pid()) != old and pid, timeout, what=f"a pid other than {old}")

    def stop(self, timeout: float = 10.0) -> None:
        """exit(); by PID (SIGKILL) if the supervisor does not."""
        if self.process is None or not self.process.running():
            return
        service = self.pid()
        self.exit()
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

    def ready(self) -> bool:
        return super().ready() and self.root.run(["svok", self.service]).returncode == 0

    def exit(self) -> None:
        self.ctl("-dx")

    def usr2(self) -> None:
        """svc has no USR2: by pid."""
        pid = self.pid()
        assert pid is not None, f"{self.service} is down"
        self.root.kill(pid, signal.SIGUSR2)

    def status_text(self) -> str:
        return self.root.run(["svstat", self.service]).stdout  # "DIR: up (pid 42) 3 seconds"


class Runit(Supervisor):
    PROGRAM = "runsv"
    CONTROL = "sv"
    USR2 = ("2",)

    def exit(self) -> None:
        self.ctl("exit")

    def status_text(self) -> str:
        return self.ctl("status").stdout  # "run: DIR: (pid 42) 3s"


class Supervisord(Supervisor):
    """supervisord on its Debian config, which includes conf.d/*.conf; the service is a program."""

    PROGRAM = "supervisord"
    CONTROL = "supervisorctl"
    USR2 = ("signal", "USR2")

    def command(self) -> list[str]:
        return [self.PROGRAM, "-n", "-c", "/etc/supervisor/supervisord.conf"]

    def ready(self) -> bool:
        return self.root.run([self.CONTROL, "pid"]).stdout.strip().isdigit()  # its own pid, once it serves

    def exit(self) -> None:
        self.root.run([self.CONTROL, "shutdown"])  # stops the programs first

    def status_text(self) -> str:
        return self.ctl("status").stdout  # "my-service  RUNNING  pid 42, uptime 0:00:03"

    def pid(self) -> int | None:
        """The program's process from its fork on (`status` shows it once RUNNING only); 0 when
        there is none."""
        pid = self.ctl("pid").stdout.strip()
        return int(pid) if pid.isdigit() and pid != "0" else None


# What the `supervised` fixture can start, by the name tests give it.
KINDS: dict[str, type[Supervisor]] = {"daemontools": Daemontools, "runit": Runit, "supervisord": Supervisord}
