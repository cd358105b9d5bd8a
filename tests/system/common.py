"""What the modules of the system-tier harness share: polling, what /proc says about a
process, an HTTP answer and a failed command."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


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
