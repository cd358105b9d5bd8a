"""Self-tests of the system-tier harness: real roots, namespaces, containers and supervisors.

They check what later tests rely on: the cache is built once and reused, a daemon outlives the
command that started it and is reaped as soon as it exits, teardown leaves no process, mount,
cgroup or copy behind, and a .deb installs offline.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import nspawn
import pytest
import roots
import sysv
from nspawn import Container
from sandbox import Sandbox
from supervisors import Supervisor
from sweep import sweep_stale
from sysv import SysvRoot

# The harness is one code for every release: it is proven on the build machines' own, and the
# rows of the matrix prove it on the others.
pytestmark = [pytest.mark.usefixtures("system_host"), pytest.mark.releases(roots.SUITE)]

PROBE_PORT = 8080

# A stand-in for the generated project's package: an LSB init script and a systemd unit that run
# a stdlib HTTP server as a system user, enabled and started by postinst.
PROBE_FILES = {
    "DEBIAN/control": """\
Package: harness-probe
Version: 1.0
Architecture: all
Maintainer: platform-skel tests <tests@localhost>
Depends: python3, adduser, lsb-base, logrotate, procps
Description: system-tier harness self-test package
""",
    "DEBIAN/postinst": """\
#!/bin/sh
set -e
if [ "$1" = configure ]; then
    adduser --system --group --quiet --no-create-home --home /nonexistent harness-probe
    if [ -d /run/systemd/system ]; then
        systemctl enable --now harness-probe.service
    else
        update-rc.d harness-probe defaults >/dev/null
        invoke-rc.d harness-probe start
    fi
fi
""",
    "etc/init.d/harness-probe": """\
#!/bin/sh
### BEGIN INIT INFO
# Provides:          harness-probe
# Required-Start:    $remote_fs
# Required-Stop:     $remote_fs
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: harness self-test daemon
### END INIT INFO
. /lib/lsb/init-functions
PIDFILE=/run/harness-probe.pid
case "$1" in
    start) start-stop-daemon --start --quiet --background --make-pidfile --pidfile $PIDFILE \\
               --chuid harness-probe --startas /usr/bin/python3 -- \\
               -m http.server --bind 127.0.0.1 --directory /usr/share/harness-probe 8080 ;;
    stop) start-stop-daemon --stop --quiet --pidfile $PIDFILE --retry TERM/5 --remove-pidfile
          [ $? -le 1 ] ;;
    *) echo "Usage: $0 {start|stop}" >&2; exit 2 ;;
esac
""",
    "lib/systemd/system/harness-probe.service": """\
[Unit]
Description=harness self-test daemon

[Service]
User=harness-probe
ExecStart=/usr/bin/python3 -m http.server --bind 127.0.0.1 --directory /usr/share/harness-probe 8080

[Install]
WantedBy=multi-user.target
""",
    "usr/share/harness-probe/index.html": "probe ok\n",
}


@pytest.fixture(scope="module")
def probe_deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = tmp_path_factory.mktemp("probe") / "harness-probe"
    for name, content in PROBE_FILES.items():
        path = tree / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        path.chmod(0o755 if content.startswith("#!") else 0o644)
    deb = tree.parent / "harness-probe_1.0_all.deb"
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(tree), str(deb)], check=True)
    return deb


def start_time(host_pid: int) -> str | None:
    """Identifies a host process across pid reuse: field 22 of /proc/PID/stat."""
    try:
        return Path(f"/proc/{host_pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except FileNotFoundError:
        return None


def assert_nothing_left(sandbox: Sandbox, leader: int) -> None:
    assert not Path(f"/proc/{leader}").exists(), "the namespace's PID 1 is still there"
    assert not roots.mounts_under(sandbox.work)
    assert not sandbox.work.exists(), "the copy was not deleted"


# --------------------------------------------------------------------------- cache


def test_cache_key_depends_on_the_package_set_not_its_order() -> None:
    swapped = roots.Flavour("sysv", tuple(reversed(roots.BASE_PACKAGES)), allow_service_start=True)
    more = roots.Flavour("sysv", (*roots.BASE_PACKAGES, "less"), allow_service_start=True)
    assert swapped.key("bookworm") == roots.SYSV.key("bookworm")
    assert more.key("bookworm") != roots.SYSV.key("bookworm")
    assert roots.SYSV.key("trixie") != roots.SYSV.key("bookworm")


def test_cached_root_is_reused_not_rebuilt(sysv_root: Callable[..., SysvRoot]) -> None:
    tarball = roots.root_tarball(roots.SYSV)
    before = tarball.stat()
    first, second = sysv_root(), sysv_root()
    after = roots.root_tarball(roots.SYSV).stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    # Other flavours and releases may be building meanwhile: only this one's staging must be gone.
    assert not list(roots.CACHE_DIR.glob(f".staging-{roots.SUITE}-{roots.SYSV.name}-*"))
    assert first.root != second.root
    first.write_file("/etc/marker", "first\n")
    assert not second.path("/etc/marker").exists(), "copies must be independent"


def test_sysv_root_has_what_an_offline_install_needs(sysv_root: Callable[..., SysvRoot]) -> None:
    root = sysv_root()
    wanted = [*roots.BASE_PACKAGES, "sysvinit-utils", "init-system-helpers"]
    installed = root.run(["dpkg-query", "-W", "-f", "${Package} ${db:Status-Status}\\n", *wanted], check=True)
    assert sorted(installed.stdout.split("\n")[:-1]) == sorted(f"{p} installed" for p in wanted)
    assert root.run(["dpkg-query", "-W", "systemd"]).returncode != 0
    assert root.run(["readlink", "-f", "/bin/sh"]).stdout == "/usr/bin/dash\n"
    assert root.run(["/usr/sbin/policy-rc.d", "foo", "start"]).returncode == 0
    assert root.sh(". /lib/lsb/init-functions && command -v start-stop-daemon").returncode == 0
    assert not list(root.path("/var/lib/apt/lists").glob("*_Packages")), "apt could try the network"
    assert os.readlink(f"/proc/{root.leader}/ns/net") != os.readlink("/proc/self/ns/net")
    assert oct(root.path("/").stat().st_mode & 0o777) == "0o755", "service users must traverse /"


# --------------------------------------------------------------------------- sysvinit root


def test_background_process_survives_between_runs_and_dies_with_the_root() -> None:
    with sysv.sysv_root() as root:
        started = root.sh("sleep 1000 </dev/null >/dev/null 2>&1 & echo $!", check=True)
        pid = int(started.stdout)
        assert root.run(["kill", "-0", str(pid)]).returncode == 0, "it did not outlive its command"
        host_pid = root.host_pid(pid)
        born = start_time(host_pid)
        assert Path(f"/proc/{host_pid}/cmdline").read_bytes() == b"sleep\x001000\x00"
        status = root.status(pid)
        assert status is not None and status.ppid == 1, "orphans must be adopted by the namespace's PID 1"
        leader = root.leader
    assert start_time(host_pid) != born, "the background process outlived its root"
    assert_nothing_left(root, leader)


def test_teardown_happens_when_the_body_fails() -> None:
    with pytest.raises(RuntimeError, match="test body failed"), sysv.sysv_root() as root:
        root.spawn(["sleep", "1000"])
        leader = root.leader
        raise RuntimeError("test body failed")
    assert_nothing_left(root, leader)


def test_stopped_daemon_is_reaped_at_once(sysv_root: Callable[..., SysvRoot]) -> None:
    root = sysv_root()
    root.run(
        ["start-stop-daemon", "--start", "--background", "--make-pidfile", "--pidfile", "/run/d.pid",
         "--exec", "/bin/sleep", "--", "1000"],
        check=True,
    )  # fmt: skip
    pid = int(root.path("/run/d.pid").read_text())
    assert root.status(pid) is not None
    root.run(["start-stop-daemon", "--stop", "--pidfile", "/run/d.pid", "--retry", "TERM/5"], check=True)
    assert root.status(pid) is None, "a stopped daemon must not be left as a zombie"
    # An orphan that exits by itself is reaped as well (a zombie would still have a status).
    orphan = int(root.sh("sleep 0.1 </dev/null >/dev/null 2>&1 & echo $!", check=True).stdout)
    root.wait_gone(orphan, timeout=2.0)


def test_each_root_has_its_own_loopback(sysv_root: Callable[..., SysvRoot]) -> None:
    roots = [sysv_root(hostname=f"host{n}") for n in (1, 2)]
    for n, root in enumerate(roots, 1):
        root.write_file("/srv/www/index.html", f"host{n}\n")
        root.spawn(["python3", "-m", "http.server", "-b", "127.0.0.1", "-d", "/srv/www", str(PROBE_PORT)])
    for n, root in enumerate(roots, 1):
        reply = root.wait_http(PROBE_PORT)
        assert (reply.status, reply.body) == (200, f"host{n}\n")
        assert root.run(["hostname"]).stdout == f"host{n}\n"
    with pytest.raises(ValueError, match="loopback"):
        roots[0].http_get(80, host="192.0.2.1")


def test_install_deb_offline_starts_the_service_as_its_user(
    sysv_root: Callable[..., SysvRoot], probe_deb: Path
) -> None:
    root = sysv_root()
    result = root.install_deb(probe_deb)
    assert result.returncode == 0, result.stdout + result.stderr
    reply = root.wait_http(PROBE_PORT)
    pid = int(root.path("/run/harness-probe.pid").read_text())
    assert (reply.status, reply.body) == (200, "probe ok\n")
    status = root.status(pid)
    assert status is not None
    assert set(status.uids) == {int(root.run(["id", "-u", "harness-probe"], check=True).stdout)} != {0}
    assert status.cap_eff == 0
    assert root.run(["/etc/init.d/harness-probe", "stop"]).returncode == 0
    root.wait_gone(pid, timeout=1.0)
    assert root.run(["dpkg", "--purge", "harness-probe"]).returncode == 0


# --------------------------------------------------------------------------- supervisors


@pytest.mark.parametrize("kind", ["daemontools", "runit"])
def test_supervisor_restarts_a_killed_service(
    sysv_root: Callable[..., SysvRoot], supervised: Callable[..., Supervisor], kind: str
) -> None:
    root = sysv_root()
    root.write_file("/srv/probe/run", "#!/bin/sh\nexec sleep 1000\n", mode=0o755)
    supervisor = supervised(root, kind, "/srv/probe")
    first = supervisor.wait_pid()
    root.kill(first, signal.SIGKILL)
    killed = time.monotonic()
    second = supervisor.wait_new_pid(first, timeout=3.0)
    delay = time.monotonic() - killed
    status = root.status(second)
    assert status is not None and status.cmdline == ("sleep", "1000")
    assert delay < 3.0, f"restarted after {delay:.2f} s"
    supervisor.stop()
    assert supervisor.process is not None and not supervisor.process.running()
    assert supervisor.process.nsenter.returncode == 0, "the supervisor did not exit by itself"
    assert root.status(second) is None and root.status(supervisor.process.pid) is None
    assert [p.name for p in root.processes()] == ["harness-init"]


# --------------------------------------------------------------------------- systemd container


def test_container_boots_runs_the_package_and_leaves_nothing_behind(probe_deb: Path) -> None:
    with nspawn.booted_container() as container:
        assert container.state == "running"
        assert container.run(["systemctl", "is-system-running"]).stdout == "running\n"
        result = container.install_deb(probe_deb)
        assert result.returncode == 0, result.stdout + result.stderr
        assert container.run(["systemctl", "is-active", "harness-probe"]).stdout == "active\n"
        reply = container.wait_http(PROBE_PORT)
        assert (reply.status, reply.body) == (200, "probe ok\n"), "loopback inside the private network"
        main = int(container.run(["systemctl", "show", "-P", "MainPID", "harness-probe"], check=True).stdout)
        status = container.status(main)
        assert status is not None and 0 not in status.uids and status.cap_eff == 0
        container.spawn(["sleep", "1000"])  # a command from outside must not hold up the halt
        leader, groups = container.leader, container.cgroups
        assert all(group.is_dir() for group in groups)
        assert container.nspawn is not None
    assert container.exit_status == 0, "the container did not halt cleanly"
    assert not Path(f"/proc/{container.nspawn.pid}").exists()
    assert_nothing_left(container, leader)
    assert not any(group.exists() for group in groups)
    for hierarchy in nspawn.cgroup_hierarchies():
        assert not {"payload", "supervisor"} & {p.name for p in hierarchy.iterdir()}


def test_container_without_private_network_shares_the_host_network(
    systemd_container: Callable[..., Container],
) -> None:
    container = systemd_container(private_network=False)
    assert os.readlink(f"/proc/{container.leader}/ns/net") == os.readlink("/proc/self/ns/net")


# --------------------------------------------------------------------------- stale leftovers


def test_sweep_removes_only_abandoned_copies() -> None:
    roots.WORK_DIR.mkdir(parents=True, exist_ok=True)
    abandoned, live = (Path(tempfile.mkdtemp(prefix="sweep-", dir=roots.WORK_DIR)) for _ in range(2))
    group = nspawn.cgroup_hierarchies()[0] / f"{nspawn.CGROUP_PREFIX}{abandoned.name}"
    try:
        with open(live / "lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            group.mkdir()
            for work in (abandoned, live):
                (work / "root").mkdir()
                os.utime(work, (time.time() - 3600,) * 2)
            removed = sweep_stale()
            assert live.exists(), "a copy in use was removed"
            assert not abandoned.exists() and not group.exists()
            assert {abandoned, group} <= set(removed)
    finally:
        for path in (abandoned, live):
            roots.remove_tree(path)
        if group.exists():
            group.rmdir()
