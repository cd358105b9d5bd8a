"""Measure `make deploy` against real test hosts (tests/system/hosts.py): the figures of issue 7.

In one run on this machine, with eight hosts (Debian roots with their own sshd, on loopback):
- `make deploy` of a new version to one host, and `make -j8 deploy` to all eight (goal: <= 2.5x);
- the Ansible rolling upgrade (deploy/ansible/site.yml: a canary, then 50%, then the rest) of
  the same eight hosts, and its ratio to `make -j8 deploy`;
- rollback: a version that fails its health check, deployed to one host; the time from the
  host's "rolling back" line to its "installed:" line, as the operator sees them.
Each deploy alternates between two versions, so every run is a real upgrade or downgrade.
Prints a table and writes it to bench/deploy-results.md. Not a test; needs root.
Run: PATH=.venv/bin:$PATH .venv/bin/python bench/deploy.py
"""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(TEMPLATE / "tests"), str(TEMPLATE / "tests/system")]

import hosts  # noqa: E402
from support import render  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "deploy-results.md"
RUNS = 3
DCH_ENV = {"DEBFULLNAME": "Bench", "DEBEMAIL": "bench@example.com", "PATH": "/usr/bin:/bin"}


def build(project: Path, version: str, broken: bool = False) -> Path:
    if broken:
        hosts.break_health_check(project)
    if version != "0.1.0":
        subprocess.run(
            ["dch", "-v", version, "--force-distribution", "-D", "unstable", "bench"],
            cwd=project, env=DCH_ENV, check=True, capture_output=True,
        )  # fmt: skip
    subprocess.run(["make", "-C", str(project), "deb"], check=True, capture_output=True)
    return project / f"dist/my-service_{version}_all.deb"


def deploy(fleet: hosts.Fleet, project: Path, deb: Path, destinations: list[str]) -> list[tuple[float, str]]:
    """Run make -j8 deploy; returns its stdout lines with the time each arrived (from the start)."""
    start = time.monotonic()
    command = ["make", "-C", str(project), "-j8", "--no-print-directory", "deploy",
               f"HOSTS={' '.join(destinations)}", f"DEPLOY_DEB={deb}", "HEALTH_TIMEOUT=5",
               *(f"{name}={value}" for name, value in fleet.make_env().items())]  # fmt: skip
    lines = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as make:
        assert make.stdout is not None
        for line in make.stdout:
            lines.append((time.monotonic() - start, line.rstrip("\n")))
    lines.append((time.monotonic() - start, f"exit {make.returncode}"))
    return lines


def rollout(fleet: hosts.Fleet, project: Path, deb: Path, home: Path) -> float:
    """The playbook's rolling upgrade of every host to deb, run as its docs say; its wall time."""
    inventory = home / "inventory"
    inventory.parent.mkdir(parents=True, exist_ok=True)
    inventory.write_text(fleet.inventory())
    start = time.monotonic()
    subprocess.run(
        ["ansible-playbook", "-i", str(inventory), "deploy/ansible/site.yml",
         "-e", f"deb={deb}", "-e", "health_timeout=5"],
        cwd=project, env={**os.environ, **fleet.ansible_env(home)}, check=True, capture_output=True,
    )  # fmt: skip
    return time.monotonic() - start


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-deploy-") as work:
        base = Path(work)
        v1 = build(render(base / "v1"), "0.1.0")
        v2 = build(render(base / "v2"), "0.2.0")
        broken = build(render(base / "v3"), "0.3.0", broken=True)
        project = v1.parent.parent
        names = [f"h{n}" for n in range(1, 9)]
        with hosts.fleet(base / "fleet", names) as fleet:
            deploy(fleet, project, v1, names)  # every host starts on v1, with its rollback .deb
            one, eight = [], []
            debs = [v2, v1] * RUNS
            for deb in debs[:RUNS]:
                one.append(deploy(fleet, project, deb, names[:1])[-1][0])
            deploy(fleet, project, debs[RUNS - 1], names[1:])  # the others catch up with h1
            for deb in debs[RUNS : 2 * RUNS]:
                lines = deploy(fleet, project, deb, names)
                assert lines[-1][1] == "exit 0", lines
                eight.append(lines[-1][0])
            # Every host is on v1 now: the play alternates from there, as make did.
            played = [rollout(fleet, project, deb, base / f"ansible{n}") for n, deb in enumerate(debs[:RUNS])]
            rollbacks = []
            for _ in range(RUNS):
                lines = deploy(fleet, project, broken, names[:1])
                begin = next(t for t, line in lines if line.endswith("rolling back"))
                end = next(t for t, line in lines if line.startswith("h1: installed:"))
                rollbacks.append(end - begin)
    t1, t8, ta = statistics.median(one), statistics.median(eight), statistics.median(played)
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    table = f"""# `make deploy` benchmark

Measured {when} on {platform.platform()}; median of {RUNS} runs. Run again with
`PATH=.venv/bin:$PATH .venv/bin/python bench/deploy.py` (root).

| what | median wall time |
|---|---:|
| `make deploy` to 1 host | {t1:.2f} s |
| `make -j8 deploy` to 8 hosts | {t8:.2f} s |
| ratio 8 hosts / 1 host (goal <= 2.5) | {t8 / t1:.2f} |
| Ansible rolling upgrade of 8 hosts (batches 1, 50%, 100%) | {ta:.2f} s |
| ratio Ansible / `make -j8 deploy` | {ta / t8:.2f} |
| rollback: from "rolling back" to the old version healthy again | {statistics.median(rollbacks):.2f} s |
"""
    RESULTS.write_text(table)
    print(table)


if __name__ == "__main__":
    main()
