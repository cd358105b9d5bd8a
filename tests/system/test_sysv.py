"""The shipped LSB init script under sysvinit, and the privileges of what the package installs.

Each test installs the default project's .deb with apt into its own Debian root, run as a small
sysvinit host (sysv.SysvRoot), where postinst starts the service. A test that needs the
service stopped stops it first. /bin/sh is dash there, and the init script starts with #!/bin/sh:
every test runs the script under dash (the `service` fixture checks both), which is L8's "L1-L7
the same under dash".

Rows: L1-L9 (LSB actions and exit codes), S6 (a forged pidfile), V1 (not root, no capabilities,
also after HUP), V3 (what the service user can write), V4 (modes and owners of the package),
C5 (a config that a start would reject: refused by the check, the running daemon left alone; a
failed start fails fast, says why, leaves no pidfile).
"""

from __future__ import annotations

import json
import re
import signal
import stat
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import roots
from common import wait_until
from sandbox import Spawned
from service import (
    AS_SERVICE_USER,
    CONFIG,
    DAEMON,
    HOLD_PORT,
    INIT,
    LOG,
    LOG_DIR,
    NAME,
    PIDFILE,
    PORT,
    RUN_DIR,
    STATE_DIR,
    USER,
    health,
    install,
    log_lines,
    restarts_and_an_upgrade,
    user_ids,
)
from support import require_tool
from sysv import SysvRoot

if TYPE_CHECKING:
    from conftest import ServiceDebs

USAGE = f"Usage: {INIT} {{start|stop|restart|try-restart|reload|force-reload|rotate|status}}\n"
# The actions of LSB Core "Init Script Actions"; exit 3 is for one a script does not implement.
LSB_ACTIONS = ("start", "stop", "restart", "try-restart", "reload", "force-reload", "status")


@dataclass(frozen=True)
class Service:
    root: SysvRoot
    uid: int
    gid: int

    def init(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.root.run([INIT, *args])

    def pidfile_pid(self) -> int | None:
        path = self.root.path(PIDFILE)
        return int(path.read_text()) if path.exists() else None

    def daemons(self) -> list[int]:
        """The service user's processes named like the daemon."""
        return [p.pid for p in self.root.processes() if p.name == NAME and p.uids[0] == self.uid]

    def running(self) -> int:
        """The one daemon, named in the pidfile, answering /health; its pid."""
        (pid,) = self.daemons()
        assert self.pidfile_pid() == pid
        assert health(self.root)["pid"] == pid
        return pid

    def stopped(self) -> None:
        """Stop the instance that postinst started, and check that it is gone."""
        pid = self.running()
        assert self.init("stop").returncode == 0
        self.root.wait_gone(pid, timeout=5.0)
        assert not self.daemons() and not self.root.path(PIDFILE).exists()


@pytest.fixture
def service(sysv_root: Callable[..., SysvRoot], service_debs: ServiceDebs) -> Service:
    """A root with the .deb installed, and the service running as postinst started it."""
    root = sysv_root()
    install(root, service_debs.v1)
    # L8: the init script runs under dash in every test of this file.
    assert root.path(INIT).read_text().startswith("#!/bin/sh\n")
    assert root.run(["readlink", "-f", "/bin/sh"]).stdout == "/usr/bin/dash\n"
    svc = Service(root, *user_ids(root))
    svc.running()
    return svc


def same_name_process(root: SysvRoot, user: str, group: str) -> Spawned:
    """A `sleep` run as `user` whose comm is the daemon's: exec'd through a symlink named like it."""
    link = f"/usr/local/libexec/{user}/{NAME}"
    root.path(link).parent.mkdir(parents=True, exist_ok=True)
    root.path(link).symlink_to("/bin/sleep")
    process = root.spawn(["setpriv", f"--reuid={user}", f"--regid={group}", "--clear-groups", link, "1000"])

    def named() -> bool:
        status = root.status(process.pid)
        return status is not None and status.cmdline == (link, "1000")

    wait_until(named, 5.0, what="the same-name process")
    assert root.path(f"/proc/{process.pid}/comm").read_text() == f"{NAME}\n"
    return process


def alive(root: SysvRoot, pid: int) -> bool:
    status = root.status(pid)
    return status is not None and status.state != "Z"


# --------------------------------------------------------------------------- LSB actions


@pytest.mark.releases(*roots.RELEASES)
def test_L1_status_of_installed_stopped_service_exits_3(service: Service) -> None:
    service.stopped()
    result = service.init("status")
    assert result.returncode == 3, result
    assert "is not running" in result.stdout


@pytest.mark.releases(*roots.RELEASES)
def test_L2_start_twice_exits_0_and_leaves_exactly_one_daemon(service: Service) -> None:
    service.stopped()
    first = service.init("start")
    assert first.returncode == 0, first
    pid = service.running()
    second = service.init("start")
    assert second.returncode == 0, second
    assert service.running() == pid
    assert service.root.pids_of(NAME) == [pid]


@pytest.mark.releases(*roots.RELEASES)
def test_L3_stop_twice_exits_0_then_status_exits_3(service: Service) -> None:
    pid = service.running()
    assert service.init("stop").returncode == 0
    assert service.root.status(pid) is None, "stop returned before the daemon was gone"
    assert service.init("stop").returncode == 0
    assert service.init("status").returncode == 3
    assert not service.root.pids_of(NAME)


def test_L4_kill_9_then_status_1_and_start_gives_new_pid(service: Service) -> None:
    old = service.running()
    service.root.kill(old, signal.SIGKILL)
    service.root.wait_gone(old, timeout=5.0)
    status = service.init("status")
    assert status.returncode == 1, status
    assert service.pidfile_pid() == old, "the pidfile must be left behind"
    start = service.init("start")
    assert start.returncode == 0, start
    new = service.running()
    assert new != old


def test_L5_try_restart_while_stopped_exits_0_and_stays_stopped(service: Service) -> None:
    service.stopped()
    result = service.init("try-restart")
    assert result.returncode == 0, result
    assert not service.root.pids_of(NAME)
    assert service.init("status").returncode == 3


@pytest.mark.releases(*roots.RELEASES)
def test_L5_reload_while_running_keeps_the_pid_and_rereads_the_config(service: Service) -> None:
    pid = service.running()
    config = service.root.path(CONFIG)
    config.write_text(re.sub(r"(?m)^message = .*$", "message = reloaded by L5", config.read_text()))
    result = service.init("reload")
    assert result.returncode == 0, result
    wait_until(lambda: health(service.root)["message"] == "reloaded by L5", 5.0, what="the new message")
    assert service.running() == pid


@pytest.mark.parametrize("args", [["frobnicate"], []], ids=["unknown", "none"])
def test_L6_unknown_action_exits_2_with_a_usage_line(service: Service, args: list[str]) -> None:
    result = service.init(*args)
    assert result.returncode == 2, result
    assert (result.stdout, result.stderr) == ("", USAGE)
    service.running()


def test_L6_every_lsb_action_is_implemented_so_none_exits_3(service: Service) -> None:
    """LSB's exit 3 ("unimplemented feature") has nothing to apply to: each action works."""
    assert set(LSB_ACTIONS) <= set(USAGE.split("{")[1].rstrip("}\n").split("|"))
    pid = service.running()
    for action in ("start", "reload", "force-reload", "try-restart", "restart", "status"):
        result = service.init(action)
        assert result.returncode == 0, (action, result)
        assert "Usage" not in result.stdout + result.stderr
    assert service.running() == pid, "restart, try-restart and force-reload restart in place"
    assert len(log_lines(service.root, r" INFO restarting in place: ")) == 3
    assert service.init("stop").returncode == 0
    assert not service.root.pids_of(NAME)
    assert service.init("restart").returncode == 0, "restart of a stopped service starts it"
    assert service.running() != pid


def test_L7_stop_after_remove_without_purge_exits_0(service: Service) -> None:
    pid = service.running()
    removed = service.root.run(["apt-get", "remove", "-y", NAME])
    assert removed.returncode == 0, removed.stdout[-3000:] + removed.stderr[-3000:]
    assert service.root.status(pid) is None, "remove must stop the daemon"
    assert service.root.path(INIT).exists(), "the init script is a conffile: it stays until purge"
    assert not service.root.path(DAEMON).exists()
    # debhelper >= 13.10 clears its exec bit on remove (#1021027): invoke-rc.d then skips it,
    # and a direct exec fails with 126. Run, the script itself must still exit 0 (Policy 9.3.2).
    assert stat.S_IMODE(service.root.path(INIT).stat().st_mode) == 0o644
    for how in (["invoke-rc.d", NAME], ["sh", INIT]):
        result = service.root.run([*how, "stop"])
        assert (result.returncode, result.stdout) == (0, ""), (how, result)
    assert not service.root.pids_of(NAME)


def test_L8_init_script_is_posix_sh_run_by_dash_and_lint_clean(service: Service) -> None:
    require_tool("shellcheck", "checkbashisms")
    script = service.root.path(INIT)
    shellcheck = subprocess.run(["shellcheck", "-s", "sh", str(script)], capture_output=True, text=True)
    assert (shellcheck.returncode, shellcheck.stdout, shellcheck.stderr) == (0, "", "")
    bashisms = subprocess.run(
        ["checkbashisms", "--posix", "--force", str(script)], capture_output=True, text=True
    )
    assert (bashisms.returncode, bashisms.stdout, bashisms.stderr) == (0, "", "")
    assert service.root.run(["dash", "-n", INIT]).returncode == 0


def test_L9_stop_leaves_another_users_process_of_the_same_name_running(service: Service) -> None:
    service.stopped()
    other = same_name_process(service.root, "nobody", "nogroup")
    assert set(service.root.status(other.pid).uids) == {65534}  # type: ignore[union-attr]
    assert service.init("status").returncode == 3, "another user's process is not the service"
    assert service.init("start").returncode == 0
    daemon = service.running()
    assert sorted(service.root.pids_of(NAME)) == sorted([daemon, other.pid])
    assert service.init("stop").returncode == 0
    service.root.wait_gone(daemon, timeout=5.0)
    assert alive(service.root, other.pid), "stop killed another user's process"
    assert service.init("stop").returncode == 0
    assert alive(service.root, other.pid)


# --------------------------------------------------------------------------- configs a start rejects


# kind -> (config lines to set, a shell line run first as root, what the check must say)
BAD_CONFIGS = {
    "log-file-empty": ({"log_file": ""}, "", "log_file is empty; give the absolute path"),
    "log-file-a-directory": ({"log_file": LOG_DIR}, "", f"log_file {LOG_DIR!r} is a directory"),
    "log-dir-not-writable": (
        {"log_file": "/var/log/elsewhere/x.log"},
        "install -d -m 0755 /var/log/elsewhere",
        f"user {USER} cannot create files in /var/log/elsewhere",
    ),
    "log-dir-behind-a-closed-one": (
        {"log_file": "/var/log/private/sub/x.log"},
        "install -d -m 0700 /var/log/private /var/log/private/sub",
        f"user {USER} cannot reach /var/log/private/sub: Permission denied",
    ),
    "log-file-not-writable": (
        {"log_file": f"{LOG_DIR}/root.log"},
        f"install -m 0644 /dev/null {LOG_DIR}/root.log",
        f"log_file '{LOG_DIR}/root.log': user {USER} cannot write it",
    ),
    "listen-not-local": (
        {"listen": "192.0.2.1"},
        "",
        f"cannot listen on 192.0.2.1 port {PORT}: Cannot assign requested address",
    ),
}


def configure(root: SysvRoot, **values: str) -> None:
    """Set `key = value` lines of the installed config, as an admin would; `message` too."""
    path = root.path(CONFIG)
    text = path.read_text()
    for key, value in values.items():
        text, found = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}".rstrip(), text)
        assert found == 1, key
    path.write_text(text)


def break_config(service: Service, kind: str) -> str:
    """Write the bad config of `kind` (with a new message); returns what the check must say."""
    values, prepare, reason = BAD_CONFIGS[kind]
    if prepare:
        service.root.sh(prepare, check=True)
    configure(service.root, message="from the bad config", **values)
    return reason


@pytest.mark.parametrize("kind", BAD_CONFIGS)
def test_C5_check_config_as_the_service_user_refuses_what_a_start_cannot_use(
    service: Service, kind: str
) -> None:
    reason = break_config(service, kind)
    check = service.root.run([*AS_SERVICE_USER, DAEMON, "--config", CONFIG, "--check-config"])
    assert check.returncode == 1, check
    assert check.stdout == "" and check.stderr.startswith(f"{NAME}: {CONFIG}: "), check
    assert reason in check.stderr and check.stderr.count("\n") == 1, check


@pytest.mark.parametrize("kind", BAD_CONFIGS)
def test_C5_restart_reload_try_restart_with_a_bad_config_leave_the_same_daemon_serving(
    service: Service, kind: str
) -> None:
    pid = service.running()
    reason = break_config(service, kind)
    for action in ("restart", "try-restart", "reload", "force-reload"):
        result = service.init(action)
        assert result.returncode == 1, (action, result)
        assert reason in result.stderr, (action, result)
        assert service.running() == pid, action
        assert health(service.root)["message"] == "ok", action


def test_C5_hup_with_a_config_a_start_would_refuse_keeps_serving_and_logs_one_line(service: Service) -> None:
    pid = service.running()
    break_config(service, "log-file-a-directory")
    service.root.kill(pid, signal.SIGHUP)
    line = f"reload failed, keeping the running configuration: {CONFIG}: log_file {LOG_DIR!r} is a directory"
    wait_until(lambda: line in service.root.path(LOG).read_text(), 5.0, what="the reload error")
    assert service.running() == pid
    assert health(service.root)["message"] == "ok"
    text = service.root.path(LOG).read_text()
    assert text.count("reload failed") == 1 and "Traceback" not in text


def assert_failed_start(service: Service, reason: str) -> None:
    """start exits 1 within a few seconds, says why, and leaves nothing: status then says 3."""
    began = time.monotonic()
    result = service.init("start")
    took = time.monotonic() - began
    assert result.returncode == 1, result
    assert took < 10.0, f"a failed start took {took:.1f} s"
    assert reason in result.stderr, result
    assert not service.root.path(PIDFILE).exists(), "a failed start left its pidfile"
    assert not service.daemons()
    status = service.init("status")
    assert status.returncode == 3, status


def test_C5_start_with_a_config_the_check_refuses_fails_fast_with_the_reason(service: Service) -> None:
    service.stopped()
    reason = break_config(service, "log-file-empty")
    assert_failed_start(service, reason)


def test_C5_start_with_a_typo_in_daemon_opts_fails_in_the_check_with_the_reason(service: Service) -> None:
    """The check runs with the options a start gives (DAEMON_OPTS of /etc/default)."""
    service.stopped()
    defaults = service.root.path(f"/etc/default/{NAME}")
    defaults.write_text(defaults.read_text() + "DAEMON_OPTS=--bogus\n")
    assert_failed_start(service, f"{NAME}: error: unrecognized arguments: --bogus")


# Stands in for a daemon that dies before it is ready without a word (a bug, say): the
# interpreter's own site hook ends it, but not the check.
DIE_AT_START = f"""
import os as _os, sys as _sys
if _sys.argv[0] == "{DAEMON}" and "--check-config" not in _sys.argv:
    _os._exit(3)
"""


def test_C5_start_whose_daemon_dies_silently_before_it_is_ready_fails_fast(service: Service) -> None:
    service.stopped()
    (hook,) = service.root.path("/etc").glob("python3.*/sitecustomize.py")
    hook.write_text(hook.read_text() + DIE_AT_START)
    assert_failed_start(
        service, f"{NAME} exited before it was ready: run {DAEMON} --config {CONFIG} as {USER}"
    )


def test_C5_start_whose_daemon_dies_after_the_check_fails_fast_with_its_reason(service: Service) -> None:
    """The check passes (the port may be held by the daemon being restarted); the bind fails."""
    service.stopped()
    other = service.root.spawn(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                                "python3", "-I", "-c", HOLD_PORT, str(PORT)])  # fmt: skip
    wait_until(lambda: "listening" in other.log.read_text(), 5.0, what="the other listener")
    assert_failed_start(service, "program failed to initialize (Address already in use)")
    assert alive(service.root, other.pid)


# --------------------------------------------------------------------------- supervision


FORGE_PIDFILE = r"""
import errno, json, os, sys

pidfile, scratch = sys.argv[1], sys.argv[2]

def attempt(action):
    try:
        action()
    except OSError as error:
        return errno.errorcode[error.errno]
    return "done"

with open(scratch, "w") as forged:
    forged.write("1\n")
print(json.dumps({
    "write": attempt(lambda: os.open(pidfile, os.O_WRONLY | os.O_TRUNC)),
    "create beside": attempt(lambda: os.open(pidfile + ".new", os.O_WRONLY | os.O_CREAT | os.O_EXCL)),
    "rename over": attempt(lambda: os.rename(scratch, pidfile)),
    "unlink": attempt(lambda: os.unlink(pidfile)),
    "chmod": attempt(lambda: os.chmod(pidfile, 0o666)),
}))
"""


def test_S6_service_user_cannot_write_replace_or_remove_the_pidfile(service: Service) -> None:
    pid = service.running()
    # /run/lock (1777) is on the same tmpfs as the pidfile: a rename from there could work.
    scratch = "/run/lock/forged.pid"
    result = service.root.run([*AS_SERVICE_USER, "python3", "-I", "-c", FORGE_PIDFILE, PIDFILE, scratch])
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "write": "EACCES",
        "create beside": "EACCES",
        "rename over": "EACCES",
        "unlink": "EACCES",
        "chmod": "EPERM",
    }
    pidfile = service.root.path(PIDFILE).lstat()
    assert (pidfile.st_uid, pidfile.st_gid, stat.S_IMODE(pidfile.st_mode)) == (0, 0, 0o644)
    assert service.pidfile_pid() == pid


def test_S6_stop_leaves_a_root_process_named_in_the_pidfile_running(service: Service) -> None:
    """The worst case, forged as root: the pidfile names a root process with the daemon's name."""
    service.running()
    victim = same_name_process(service.root, "root", "root")
    assert set(service.root.status(victim.pid).uids) == {0}  # type: ignore[union-attr]
    service.root.path(PIDFILE).write_text(f"{victim.pid}\n")
    result = service.init("stop")
    assert result.returncode == 0, result
    assert alive(service.root, victim.pid), "stop killed a root process named in the pidfile"


def restart(service: Service) -> None:
    result = service.init("restart")
    assert result.returncode == 0, result


def test_S7_ten_restarts_and_an_upgrade_under_load_refuse_reset_and_fail_no_request(
    service: Service, service_debs: ServiceDebs
) -> None:
    """`restart` restarts in place (USR2), and so does the upgrade: debhelper's postinst runs
    `invoke-rc.d my-service restart`."""
    pid = service.running()
    restarts, upgrade = restarts_and_an_upgrade(
        service.root, lambda: restart(service), service_debs.v2, False
    )
    print(f"FIGURE: S7 SysV init, 10 restarts: {restarts}")
    print(f"FIGURE: S7 SysV init, upgrade 0.1.0 -> 0.2.0: {upgrade}")
    assert (restarts.failures, upgrade.failures) == ([], [])
    assert restarts.pids == upgrade.pids == [pid] and service.running() == pid
    # 0.2.0 differs from 0.1.0 in its changelog only: the new image shows in the log.
    assert len(log_lines(service.root, r" INFO restarting in place: ")) == 11
    assert len(log_lines(service.root, rf" INFO ready: .*, pid {pid}$")) == 12
    assert not log_lines(service.root, r" stopping on ")


# --------------------------------------------------------------------------- privileges


def capabilities(root: SysvRoot, pid: int) -> dict[str, int]:
    status = root.path(f"/proc/{pid}/status").read_text()
    return {key: int(value, 16) for key, value in re.findall(r"^(Cap\w+):\s+(\w+)$", status, re.M)}


def test_V1_daemon_uid_is_not_0_and_it_has_no_capabilities_also_after_hup(service: Service) -> None:
    pid = service.running()

    def assert_unprivileged(moment: str) -> None:
        status = service.root.status(pid)
        assert status is not None, moment
        assert set(status.uids) == {service.uid} and service.uid != 0, (moment, status)
        assert set(status.gids) == {service.gid} and service.gid != 0, (moment, status)
        assert status.cap_eff == 0, (moment, status)
        caps = capabilities(service.root, pid)
        assert (caps["CapEff"], caps["CapPrm"], caps["CapAmb"]) == (0, 0, 0), (moment, caps)

    assert_unprivileged("started")
    assert service.init("reload").returncode == 0
    wait_until(lambda: f"reloaded {CONFIG}" in service.root.path(LOG).read_text(), 5.0, what="the reload")
    assert_unprivileged("after HUP")
    assert service.running() == pid


def test_V3_service_user_can_write_only_its_state_and_log_dirs_not_the_pidfile(service: Service) -> None:
    """Writable or owned (an owner can chmod), outside /proc, /dev, /sys and sticky 1777 dirs."""
    pid = service.running()
    scan = service.root.run([
        *AS_SERVICE_USER, "find", "/",
        "(", "-path", "/proc", "-o", "-path", "/dev", "-o", "-path", "/sys", ")", "-prune",
        "-o", "-type", "d", "-perm", "-1002", "-prune",
        "-o", "!", "-type", "l", "(", "-writable", "-o", "-user", USER, ")", "-print",
    ])  # fmt: skip
    unreadable = [line for line in scan.stderr.splitlines() if not line.endswith("Permission denied")]
    assert not unreadable, scan.stderr
    writable = set(scan.stdout.split())
    own_dirs = (STATE_DIR, LOG_DIR, RUN_DIR)
    elsewhere = [p for p in writable if not any(p == d or p.startswith(d + "/") for d in own_dirs)]
    assert not elsewhere, f"the service user can write outside its directories: {elsewhere}"
    assert {STATE_DIR, LOG_DIR, LOG} <= writable, "the scan must find what the service writes"
    assert not {RUN_DIR, PIDFILE} & writable
    for path in (RUN_DIR, PIDFILE):
        info = service.root.path(path).lstat()
        assert (info.st_uid, info.st_gid) == (0, 0), path
    assert service.pidfile_pid() == pid


# Modes and owners of DESIGN.md ("Paths on the target host"); everything else the package
# installs is root's, directories 0755 and files 0644.
DESIGN_PATHS = {
    DAEMON: ("root", "root", 0o755),
    INIT: ("root", "root", 0o755),
    f"/etc/sv/{NAME}/run": ("root", "root", 0o755),
    f"/usr/libexec/{NAME}/prepare-dirs": ("root", "root", 0o755),
    f"/usr/lib/systemd/system-generators/{NAME}-generator": ("root", "root", 0o755),
    CONFIG: ("root", "root", 0o644),
    f"/etc/default/{NAME}": ("root", "root", 0o644),
    f"/etc/logrotate.d/{NAME}": ("root", "root", 0o644),
    STATE_DIR: (USER, USER, 0o750),
    LOG_DIR: (USER, USER, 0o750),
}
# dh_python3's hook, which python3 runs when its default version changes.
RTUPDATE = f"/usr/share/python3/runtime.d/{NAME}.rtupdate"
EXECUTABLES = {path for path, (_, _, mode) in DESIGN_PATHS.items() if mode == 0o755} | {RTUPDATE}


def deb_contents(deb: Path) -> dict[str, tuple[str, str]]:
    """`dpkg-deb --contents`: path -> (mode string, owner/group)."""
    listing = subprocess.run(["dpkg-deb", "--contents", str(deb)], capture_output=True, text=True, check=True)
    entries = {}
    for line in listing.stdout.splitlines():
        mode, owner, _size, _date, _time, name = line.split(maxsplit=5)
        entries["/" + name.removeprefix("./").rstrip("/")] = (mode, owner)
    return entries


def test_V4_package_files_are_not_world_writable_and_have_the_modes_of_design(
    service: Service, service_debs: ServiceDebs
) -> None:
    shipped = deb_contents(service_debs.v1)
    for path, (mode, owner) in shipped.items():
        assert owner == "root/root", (path, owner)
        expected = "drwxr-xr-x" if mode[0] == "d" else "-rwxr-xr-x" if path in EXECUTABLES else "-rw-r--r--"
        assert mode == expected, (path, mode)
    assert set(shipped) >= EXECUTABLES
    assert not [p for p in shipped if p.startswith(("/run", "/var"))], "made by postinst, not shipped"

    listed = service.root.run(["dpkg", "-L", NAME], check=True).stdout.split()
    # /lib is usr/lib on a merged-/usr system: dpkg lists the alias.
    installed = {p for p in listed if p not in ("/.", "/lib")} | {
        f"/{p.relative_to(service.root.path('/'))}" for p in service.root.path(f"/usr/lib/{NAME}").rglob("*")
    }
    names = {0: "root", service.uid: USER}
    groups = {0: "root", service.gid: USER}
    for path in sorted(installed | set(DESIGN_PATHS)):
        info = service.root.path(path).lstat()
        assert not stat.S_ISLNK(info.st_mode), path
        mode = stat.S_IMODE(info.st_mode)
        default = 0o755 if stat.S_ISDIR(info.st_mode) else 0o644
        expected = DESIGN_PATHS.get(path, ("root", "root", 0o755 if path in EXECUTABLES else default))
        actual = (names.get(info.st_uid, str(info.st_uid)), groups.get(info.st_gid, str(info.st_gid)), mode)
        assert actual == expected, f"{path}: {actual[0]}:{actual[1]} {mode:04o}, not {expected[2]:04o}"
        assert not mode & stat.S_IWOTH, path
    assert any(p.endswith(".pyc") for p in installed), "the byte-compiled code is checked too"
