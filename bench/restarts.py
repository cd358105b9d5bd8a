"""Measure restarts that refuse no client (RELIABILITY.md S7, issue 9), per supervisor.

In one run on this machine, in Debian roots of the build release (tests/system: sysv.py,
supervisors.py, nspawn.py) with the default project's .deb: a client loop inside the root
requests /health one request after the other (tests/system/service.py, CLIENT_LOOP) during 10
restarts, then during the upgrade 0.1.0 -> 0.2.0 with apt-get; the requests served, the
failures (refused, reset, not 200) and the longest request. SysV init restarts in place with
`/etc/init.d/my-service restart`, which the package's postinst also runs on upgrade; runit with
`sv 2`, daemontools with kill -USR2 (its svc has no USR2), the admin's restart after the
upgrade; supervisord with `supervisorctl signal USR2`, which the postinst also sends on upgrade
with supervisord running. systemd restarts the service behind its socket (`systemctl restart`,
2.1 s apart for StartLimitBurst), as the postinst does on upgrade. Beside them the init script's
stop and start, as `restart` did before. Goal: 0 failures everywhere, the longest request
<= 1.5 s under systemd and <= 0.5 s with the restart in place. Prints a table and writes it to
bench/restart-results.md. Not a test; needs root.
Run: PATH=.venv/bin:$PATH .venv/bin/python bench/restarts.py
"""

from __future__ import annotations

import datetime
import platform
import sys
import tempfile
import time
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(TEMPLATE / "tests"), str(TEMPLATE / "tests/system")]

import nspawn  # noqa: E402
import roots  # noqa: E402
import service  # noqa: E402
import supervisors  # noqa: E402
from deploy import build  # noqa: E402  (bench/deploy.py: render, dch, make deb)
from support import render  # noqa: E402
from sysv import SysvRoot, sysv_root  # noqa: E402
from test_systemd import Service  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "restart-results.md"
# The supervisor runs the service: postinst's invoke-rc.d must not start the init script's too.
DENY_SERVICE_ACTIONS = "#!/bin/sh\nexit 101\n"
# A start more often than StartLimitBurst=5 in StartLimitIntervalSec=10 s fails the unit.
UNIT_RESTART_PACE = 2.1

Row = tuple[str, str, service.Load]


def init(root: SysvRoot, *actions: str) -> None:
    for action in actions:
        root.run([service.INIT, action], check=True)


def sysv(v1: Path, v2: Path) -> list[Row]:
    with sysv_root() as root:
        service.install(root, v1)
        with service.client_loop(root) as stop_start:
            for _ in range(10):
                init(root, "stop", "start")
        restarts, upgrade = service.restarts_and_an_upgrade(root, lambda: init(root, "restart"), v2, False)
    return [
        ("SysV init, `stop` + `start`", "10 restarts", stop_start),
        ("SysV init, `restart` (in place)", "10 restarts", restarts),
        ("SysV init, `restart` (in place)", "upgrade (postinst restarts)", upgrade),
    ]


def supervised(kind: str, how: str, v1: Path, v2: Path) -> list[Row]:
    """Under supervisors.KINDS[kind]: the admin restarts in place after the upgrade, but under
    supervisord, whose program the postinst restarts in place itself."""
    by_the_package = kind == "supervisord"
    flavour = supervisors.SUPERVISORD if by_the_package else roots.SYSV
    with sysv_root(flavour) as root:
        service.install(root, v1)
        init(root, "stop")
        root.write_file("/usr/sbin/policy-rc.d", DENY_SERVICE_ACTIONS, 0o755)
        service_name = service.NAME if by_the_package else service.SERVICE_DIR
        with supervisors.KINDS[kind](root, service_name) as supervisor:
            pid = supervisor.wait_pid()
            service.wait_ready(root, pid)
            restarts, upgrade = service.restarts_and_an_upgrade(
                root,
                lambda: service.restart_in_place(root, pid, supervisor.usr2),
                v2,
                not by_the_package,
                signalled=pid if by_the_package else None,
            )
    during = "upgrade (postinst restarts in place)" if by_the_package else f"upgrade, then {how}"
    return [(f"{kind}, {how}", "10 restarts", restarts), (f"{kind}, {how}", during, upgrade)]


def systemd(v1: Path, v2: Path) -> list[Row]:
    with nspawn.booted_container() as container:
        service.install(container, v1)
        unit = Service(container)
        unit.wait_active()

        def restart() -> None:
            paced = time.monotonic() + UNIT_RESTART_PACE
            pid = unit.main_pid()
            assert unit.systemctl("restart", service.UNIT).returncode == 0
            assert unit.wait_active() != pid
            time.sleep(max(0.0, paced - time.monotonic()))

        restarts, upgrade = service.restarts_and_an_upgrade(container, restart, v2, False)
    how = "systemd, `systemctl restart` (socket held)"
    return [(how, "10 restarts", restarts), (how, "upgrade (postinst restarts)", upgrade)]


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-restarts-") as work:
        base = Path(work)
        v1 = build(render(base / "v1"), "0.1.0")
        v2 = build(render(base / "v2"), "0.2.0")
        rows = [
            *sysv(v1, v2),
            *supervised("runit", "`sv 2`", v1, v2),
            *supervised("daemontools", "kill -USR2", v1, v2),
            *supervised("supervisord", "`supervisorctl signal USR2`", v1, v2),
            *systemd(v1, v2),
        ]
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = "\n".join(
        f"| {how} | {what} | {load.served} | {len(load.failures)} | {load.longest:.3f} s |"
        for how, what, load in rows
    )
    table = f"""# Restarts under load (RELIABILITY.md S7)

Measured {when} on {platform.platform()}, in Debian {roots.SUITE} roots.
A client loop on loopback, one request after the other; failures are refused, reset or non-200
requests (a refused one is tried again at once: stop + start counts attempts). Goal: 0 failures,
the longest request <= 1.5 s under systemd and <= 0.5 s with the restart in place.
Run again with `PATH=.venv/bin:$PATH .venv/bin/python bench/restarts.py` (root).

| supervisor, restart | during | requests served | failures | longest request |
|---|---|---:|---:|---:|
{lines}
"""
    RESULTS.write_text(table)
    print(table)


if __name__ == "__main__":
    main()
