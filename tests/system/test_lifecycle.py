"""The package's life on a sysvinit host: piuparts, install, upgrade, admin edits, reconfigure, purge.

Rows P1, P2, P3, P5, P6 and P8 of RELIABILITY.md, and H7's postinst part, with the default
project's .deb at 0.1.0 and 0.2.0 installed with apt as a user would. P4 (lintian) is the package tier's.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import roots
from service import (
    CONFIG,
    INIT,
    NAME,
    PIDFILE,
    PORT,
    SERVICE_DIR,
    health,
    left_behind,
    log_lines,
    set_message,
)
from supervisors import Supervisor
from support import require_tool, run
from sysv import SysvRoot

if TYPE_CHECKING:
    from conftest import ServiceDebs

pytestmark = pytest.mark.usefixtures("system_host")

# Where P6 looks for anything the package left behind.
WATCHED = ("/etc", "/var/lib", "/var/log", "/run")


# --------------------------------------------------------------------------- helpers


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, f"{result.args}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def apt_get(root: SysvRoot, *args: str) -> subprocess.CompletedProcess[str]:
    return ok(root.run(["apt-get", "-y", "-o", "Dpkg::Use-Pty=0", *args]))


def installed_version(root: SysvRoot) -> str:
    return ok(root.run(["dpkg-query", "-W", "-f", "${Version}", NAME])).stdout


def running_pid(root: SysvRoot) -> int:
    """The one daemon: the init script says it runs, and it is the one answering /health."""
    ok(root.run([INIT, "status"]))
    pid = int(root.path(PIDFILE).read_text())
    assert root.pids_of(NAME) == [pid]
    assert health(root)["pid"] == pid
    return pid


def tree(root: SysvRoot) -> set[str]:
    """Every path (file, directory, link) under WATCHED, as seen inside."""
    found: set[str] = set()
    for top in WATCHED:
        base = root.path(top)
        for directory, dirs, files in os.walk(base):
            inside = "/" + str(Path(directory).relative_to(root.path("/")))
            found.update(f"{inside}/{name}" for name in dirs + files)
    return found


def db_entries(root: SysvRoot, database: str) -> list[str]:
    lines = root.path(f"/etc/{database}").read_text().splitlines()
    return [line for line in lines if line.startswith(f"{NAME}:")]


# --------------------------------------------------------------------------- P1


def test_P1_piuparts_passes(service_debs: ServiceDebs, release: str) -> None:
    """piuparts installs, removes and purges the .deb in a copy of the cached sysvinit root.

    It runs `apt-get update` and `dist-upgrade` in its chroot, and installs logrotate from the
    Debian mirror for its logrotate check: it needs the mirror. Its base here is the cached root
    without logrotate, as in piuparts' own minimal base: with logrotate already there, piuparts'
    check leaves /var/lib/logrotate/status changed and blames the package for it.
    """
    require_tool("piuparts")
    with roots.fresh_root(roots.SYSV, release) as base:
        with SysvRoot(base) as running:
            ok(running.run(["dpkg", "--purge", "logrotate"]))
        scratch = base.parent / "piuparts"
        scratch.mkdir()
        began = time.monotonic()
        # Its own mount and PID namespaces: its mounts and anything left running die with it.
        result = run(
            ["setpriv", "--pdeathsig", "KILL", "--", "unshare", "--mount", "--propagation", "private",
             "--pid", "--fork", "--kill-child", "--mount-proc",
             "piuparts", f"--existing-chroot={base}", "--hard-link", "--tmpdir", str(scratch),
             "-d", release, "-m", roots.MIRROR, str(service_debs.v1)],
            env=roots.ROOT_ENV, stdin=subprocess.DEVNULL, timeout=600,
        )  # fmt: skip
        took = time.monotonic() - began
    verdicts = re.findall(r"(?m)^\S+ (?:INFO|ERROR): ((?:PASS|FAIL): .*)$", result.stdout)
    verdict = verdicts[-1] if verdicts else "?"
    print(f"FIGURE: P1 piuparts {release} {service_debs.v1.name}: {verdict} ({took:.1f} s)")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert verdicts[-1] == "PASS: All tests.", verdicts


# --------------------------------------------------------------------------- P2, P3


@pytest.mark.releases(*roots.RELEASES)
def test_P2_install_v1_then_v2_running_after_each_and_restarted_once(
    sysv_root: Callable[..., SysvRoot], service_debs: ServiceDebs
) -> None:
    root = sysv_root()
    ok(root.install_deb(service_debs.v1))
    first = running_pid(root)
    assert installed_version(root) == "0.1.0"
    assert len(log_lines(root, r" INFO ready: ")) == 1

    ok(root.install_deb(service_debs.v2))
    assert installed_version(root) == "0.2.0"
    # Restarted in place (USR2, through `invoke-rc.d restart`): the same pid, a new image.
    assert running_pid(root) == first
    assert len(log_lines(root, r" INFO restarting in place: ")) == 1, "restarted once"
    assert len(log_lines(root, r" INFO ready: ")) == 2, "started once more"
    assert not log_lines(root, r" INFO stopping on ")


def with_changed_conffile(deb: Path, workdir: Path) -> Path:
    """The same .deb, repacked with one more comment line in the service's config file."""
    unpacked = workdir / "unpacked"
    ok(run(["dpkg-deb", "--raw-extract", str(deb), str(unpacked)]))
    config = unpacked / CONFIG.lstrip("/")
    config.write_text(config.read_text() + "# A comment the maintainer added.\n")
    repacked = workdir / deb.name
    ok(run(["dpkg-deb", "--build", "--root-owner-group", str(unpacked), str(repacked)]))
    return repacked


@pytest.mark.parametrize("packaged", ["same", "changed"], ids=lambda p: f"packaged-config-{p}")
def test_P3_admin_edit_kept_on_noninteractive_upgrade_and_remove_then_purge_removes_it(
    sysv_root: Callable[..., SysvRoot], service_debs: ServiceDebs, tmp_path: Path, packaged: str
) -> None:
    """`packaged-config-changed`: 0.2.0 also changed the file, where dpkg would ask the admin."""
    root = sysv_root()
    ok(root.install_deb(service_debs.v1))
    edited = set_message(root, "edited by the admin")
    v2 = service_debs.v2 if packaged == "same" else with_changed_conffile(service_debs.v2, tmp_path)

    ok(root.install_deb(v2, "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"))
    assert installed_version(root) == "0.2.0"
    assert root.path(CONFIG).read_text() == edited
    running_pid(root)
    assert health(root)["message"] == "edited by the admin"
    beside = sorted(p.name for p in root.path(f"/etc/{NAME}").iterdir())
    assert beside == [f"{NAME}.conf"] + ([f"{NAME}.conf.dpkg-dist"] if packaged == "changed" else [])

    apt_get(root, "remove", NAME)
    assert root.path(CONFIG).read_text() == edited
    assert not root.pids_of(NAME)
    apt_get(root, "purge", NAME)
    assert not root.path(f"/etc/{NAME}").exists()


# --------------------------------------------------------------------------- P5, P6


def test_P5_postinst_run_twice_exits_0_and_leaves_one_user_and_one_group(
    sysv_root: Callable[..., SysvRoot], service_debs: ServiceDebs
) -> None:
    root = sysv_root()
    ok(root.install_deb(service_debs.v1))
    ok(root.run(["dpkg-reconfigure", NAME]))
    ok(root.run([f"/var/lib/dpkg/info/{NAME}.postinst", "configure", "0.1.0"]))
    for database in ("passwd", "shadow", "group", "gshadow"):
        assert len(db_entries(root, database)) == 1, database
    user = ok(root.run(["getent", "passwd", NAME])).stdout.strip().split(":")
    assert 0 < int(user[2]) < 1000 and user[5:] == [f"/var/lib/{NAME}", "/usr/sbin/nologin"], user
    for directory in (f"/var/lib/{NAME}", f"/var/log/{NAME}"):
        listing = ok(root.run(["stat", "-c", "%U:%G %a", directory])).stdout
        assert listing == f"{NAME}:{NAME} 750\n", directory
    running_pid(root)


@pytest.mark.releases(*roots.RELEASES)
@pytest.mark.parametrize("supervisor", ["sysv", "daemontools", "runit"])
def test_P6_purge_leaves_nothing_of_the_package_and_no_process_but_keeps_the_user(
    sysv_root: Callable[..., SysvRoot],
    supervised: Callable[..., Supervisor],
    service_debs: ServiceDebs,
    supervisor: str,
) -> None:
    """Run by the init script, or by a supervisor (which leaves its supervise/ state), then purged.

    The system user stays on purge, by design (see debian/postrm): its uid may still own files.
    """
    root = sysv_root()
    fresh = tree(root)
    ok(root.install_deb(service_debs.v1))
    running_pid(root)
    if supervisor != "sysv":
        ok(root.run([INIT, "stop"]))
        supervising = supervised(root, supervisor, SERVICE_DIR)
        pid = supervising.wait_pid()
        root.wait_http(PORT, "/health")
        assert health(root)["pid"] == pid
        supervising.stop()
        assert root.path(f"{SERVICE_DIR}/supervise").is_dir()

    apt_get(root, "purge", NAME)
    left = sorted(tree(root) - fresh)
    print(f"FIGURE: P6 {supervisor}: new paths after purge: {left}")
    assert left_behind(set(left)) == [], left
    assert [p.name for p in root.processes()] == ["harness-init"]
    assert ok(root.run(["getent", "passwd", NAME])).stdout.startswith(f"{NAME}:"), "the user is kept"
    assert ok(root.run(["getent", "group", NAME])).stdout.startswith(f"{NAME}:"), "and its group"


# --------------------------------------------------------------------------- P8, H7 (postinst)
# A host that is not fresh: the user, its group or its directories are there before the package.

DIRS = (f"/var/lib/{NAME}", f"/var/log/{NAME}")
RETRY = "then run: dpkg --configure -a"


def owner_and_mode(root: SysvRoot, path: str) -> str:
    return ok(root.run(["stat", "-c", "%U:%G %a", path])).stdout.strip()


def entry(root: SysvRoot, database: str, name: str = NAME) -> str:
    """The getent line of a user or group, or "" when there is none."""
    return root.run(["getent", database, name]).stdout.strip()


def refused(root: SysvRoot, deb: Path) -> str:
    """Install the .deb, which must fail in postinst: what dpkg printed, and the package not configured."""
    result = root.install_deb(deb)
    assert result.returncode != 0, result.stdout[-3000:]
    status = ok(root.run(["dpkg-query", "-W", "-f", "${db:Status-Abbrev}", NAME])).stdout
    assert status.startswith("iF"), f"half-configured, not {status!r}"
    assert root.pids_of(NAME) == []
    return result.stdout + result.stderr


def test_P8_an_existing_system_user_with_another_primary_group_is_adopted_and_the_service_starts(
    sysv_root: Callable[..., SysvRoot], service_debs: ServiceDebs
) -> None:
    root = sysv_root()
    ok(root.run(["useradd", "--system", "--gid", "nogroup", "--home-dir", "/nonexistent",
                 "--shell", "/usr/sbin/nologin", NAME]))  # fmt: skip
    before = entry(root, "passwd")
    ok(root.install_deb(service_debs.v1))
    assert entry(root, "passwd") == before, "adopted as it is"
    assert len(db_entries(root, "group")) == 1, "the service's group was made"
    for directory in DIRS:
        assert owner_and_mode(root, directory) == f"{NAME}:{NAME} 750", directory
    pid = running_pid(root)
    assert root.status(pid).uids[0] == int(before.split(":")[2])


def test_P8_an_existing_non_system_user_is_refused_with_a_clear_message(
    sysv_root: Callable[..., SysvRoot], service_debs: ServiceDebs
) -> None:
    root = sysv_root()
    ok(root.run(["useradd", "--uid", "1000", "--user-group", "--shell", "/bin/sh", NAME]))
    before = (entry(root, "passwd"), entry(root, "group"))
    output = refused(root, service_debs.v1)
    assert (
        f"{NAME}.postinst: the user {NAME} exists with uid 1000, not a system uid (100-999, "
        f"/etc/adduser.conf): it is not the service's own; allowed: no such user, or a system user. "
        f"Rename or remove it, {RETRY}"
    ) in output, output[-3000:]
    assert (entry(root, "passwd"), entry(root, "group")) == before
    assert not any(root.path(directory).exists() for directory in DIRS), "nothing given to that account"


@pytest.mark.parametrize("mode", [0o777, 0o755], ids=["world-writable", "root-owned-0755"])
def test_P8_existing_dirs_end_with_the_packages_owner_and_mode_and_the_service_starts(
    sysv_root: Callable[..., SysvRoot], service_debs: ServiceDebs, mode: int
) -> None:
    root = sysv_root()
    for directory in DIRS:
        root.path(directory).mkdir()
        root.path(directory).chmod(mode)
    assert owner_and_mode(root, DIRS[1]) == f"root:root {mode:o}"
    ok(root.install_deb(service_debs.v1))
    for directory in DIRS:
        assert owner_and_mode(root, directory) == f"{NAME}:{NAME} 750", directory
    running_pid(root)
    assert len(log_lines(root, r" INFO ready: ")) == 1


@pytest.mark.parametrize("foreign", ["with-a-member", "primary-of-another-user", "not-a-system-group"])
def test_H7_postinst_refuses_a_group_of_the_users_name_that_is_not_its_own(
    sysv_root: Callable[..., SysvRoot], service_debs: ServiceDebs, foreign: str
) -> None:
    root = sysv_root()
    if foreign == "not-a-system-group":
        ok(root.run(["groupadd", "--gid", "1500", NAME]))
    else:
        ok(root.run(["groupadd", "--system", NAME]))
        joins = ["--groups", NAME] if foreign == "with-a-member" else ["--gid", NAME]
        ok(root.run(["useradd", "--system", "--no-create-home", *joins, "alice"]))
    group = entry(root, "group")
    gid = group.split(":")[2]
    output = refused(root, service_debs.v1)
    members, primary = {
        "with-a-member": ("alice", "none"),
        "primary-of-another-user": ("none", "alice"),
        "not-a-system-group": ("none", "none"),
    }[foreign]
    assert (
        f"{NAME}.postinst: the group {NAME} exists (gid {gid}, members: {members}, primary group of: "
        f"{primary}): it is not the service's own; allowed: no such group, or a system group "
        f"(100-999, /etc/adduser.conf) of {NAME} alone. Rename or remove it, {RETRY}"
    ) in output, output[-3000:]
    assert entry(root, "passwd") == "", "no user made"
    assert entry(root, "group") == group, "the group unchanged"


def test_P8_an_admins_dpkg_statoverride_on_a_dir_is_kept_on_reconfigure_and_upgrade(
    sysv_root: Callable[..., SysvRoot], service_debs: ServiceDebs
) -> None:
    root = sysv_root()
    ok(root.install_deb(service_debs.v1))
    ok(root.run(["dpkg-statoverride", "--update", "--add", NAME, "adm", "2750", DIRS[1]]))
    ok(root.run([f"/var/lib/dpkg/info/{NAME}.postinst", "configure", "0.1.0"]))
    ok(root.install_deb(service_debs.v2))
    assert owner_and_mode(root, DIRS[1]) == f"{NAME}:adm 2750"
    assert owner_and_mode(root, DIRS[0]) == f"{NAME}:{NAME} 750"
    running_pid(root)


def test_P8_logs_an_admin_moved_behind_a_symlink_stay_there_through_an_upgrade(
    sysv_root: Callable[..., SysvRoot], service_debs: ServiceDebs
) -> None:
    """install -d through the symlink would reset its target's owner and mode: it is left alone."""
    root = sysv_root()
    ok(root.install_deb(service_debs.v1))
    ok(root.run([INIT, "stop"]))
    moved = f"/srv/{NAME}-logs"
    ok(root.run(["sh", "-c", f'mv "$1" {moved} && chmod 0770 {moved} && ln -s {moved} "$1"', "sh", DIRS[1]]))
    result = ok(root.install_deb(service_debs.v2))
    assert f"{NAME}: {DIRS[1]} is a symlink: left as it is" in result.stdout + result.stderr
    assert root.path(DIRS[1]).is_symlink()
    assert owner_and_mode(root, moved) == f"{NAME}:{NAME} 770"
    running_pid(root)
    assert root.path(f"{moved}/{NAME}.log").stat().st_size > 0


def test_P8_a_reader_the_admin_added_to_the_services_group_stays_through_reconfigure_and_upgrade(
    sysv_root: Callable[..., SysvRoot], service_debs: ServiceDebs
) -> None:
    """Once the group is the user's own, members an admin gave it (to read the logs) are no refusal."""
    root = sysv_root()
    ok(root.install_deb(service_debs.v1))
    ok(root.run(["useradd", "--system", "--no-create-home", "--groups", NAME, "alice"]))
    group = entry(root, "group")
    assert group.endswith(":alice"), group
    ok(root.run([f"/var/lib/dpkg/info/{NAME}.postinst", "configure", "0.1.0"]))
    ok(root.install_deb(service_debs.v2))
    assert entry(root, "group") == group
    running_pid(root)


@pytest.fixture(scope="module")
def rpm_pre(service_debs: ServiceDebs, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The %pre scriptlet of the same project's .rpm, as rpm would run it."""
    require_tool("rpmbuild", "rpm")
    env = {**os.environ, "HOME": str(tmp_path_factory.mktemp("rpm-home"))}
    ok(run(["make", "-C", str(service_debs.project), "rpm"], env=env))
    (rpm,) = (service_debs.project / "dist").glob("*.rpm")
    return ok(run(["rpm", "-qp", "--queryformat", "%{PREIN}", str(rpm)], env=env)).stdout


@pytest.mark.parametrize(
    "host", ["fresh", "system-user", "upgrade-with-a-reader", "non-system-user", "foreign-group"]
)
def test_P8_H7_the_rpm_pre_adopts_and_refuses_as_the_postinst_does(
    sysv_root: Callable[..., SysvRoot], rpm_pre: str, host: str
) -> None:
    """The scriptlet under dash with the real useradd and groupadd of a Debian root."""
    root = sysv_root()
    setup = {
        "fresh": [],
        "system-user": [["useradd", "--system", "--gid", "nogroup", NAME]],
        "upgrade-with-a-reader": [
            ["groupadd", "--system", NAME],
            ["useradd", "--system", "--gid", NAME, NAME],
            ["useradd", "--system", "--groups", NAME, "alice"],
        ],
        "non-system-user": [["useradd", "--uid", "1000", "--user-group", NAME]],
        "foreign-group": [["groupadd", "--system", NAME], ["useradd", "--system", "--groups", NAME, "alice"]],
    }[host]
    for command in setup:
        ok(root.run(command))
    before = (entry(root, "passwd"), entry(root, "group"))
    root.write_file("/var/tmp/pre", rpm_pre)
    result = root.run(["sh", "/var/tmp/pre", "1"])
    if host in ("fresh", "system-user", "upgrade-with-a-reader"):
        assert result.returncode == 0, result.stderr
        user = entry(root, "passwd").split(":")
        assert 100 < int(user[2]) < 1000, user
        assert len(db_entries(root, "group")) == 1
        if host != "fresh":
            assert entry(root, "passwd") == before[0], "adopted as it is"
        if host == "upgrade-with-a-reader":
            assert entry(root, "group") == before[1]
        return
    assert result.returncode == 1
    assert (entry(root, "passwd"), entry(root, "group")) == before, "nothing made or changed"
    gid = before[1].split(":")[2] if before[1] else ""
    expected = {
        "non-system-user": f"the user {NAME} exists with uid 1000, not a system uid (101-999,",
        "foreign-group": f"the group {NAME} exists (gid {gid}, members: alice, primary group of: none):",
    }[host]
    assert result.stderr.startswith(f"{NAME}: {expected}"), result.stderr
    assert result.stderr.endswith(". Rename or remove it, then install again\n"), result.stderr
