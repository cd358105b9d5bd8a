"""The shipped run script under daemontools (supervise) and runit (runsv), the Upstart job, and
the supervisord program under Debian's supervisord.

Each test installs the default project's .deb into a sysvinit root, stops the instance that
postinst started with the init script, and supervises /etc/sv/my-service as an admin would.
Upstart cannot run on Debian 12: its job's main script block runs under runsv instead, with
the job's own setuid/setgid/umask stanzas, and the test names say so.

Rows: S1 (kill -9 -> a new pid within RestartSec + 2 s), S3 (stop: SIGTERM, exit 0, no KILL),
S4 (HUP: reload, or keep the old config), S7 (restarts in place and an upgrade under a client
loop: nothing refused, reset or failed), C5 (HUP with a log file that a start cannot use: the
running config kept, one line), V1 (not root, no capabilities, also after HUP); and
the run script taking the service down, instead of failing once a second, once the package is
removed but not purged. Under supervisord (a root of its own flavour, with the supervisor
package): S7 (`supervisorctl signal USR2`, and the upgrade, whose postinst restarts it in
place), S9 (kill -9 -> a new pid within startsecs + 2 s), S10 (supervisorctl stop: TERM, exit 0
within stopwaitsecs), S11 (signal HUP: same pid, config re-read; rotation loses no line), V1, and
P2 (the .deb's own supervisorctl calls: started on install, restarted in place on upgrade,
started by a reinstall once stopped, stopped on remove).
"""

from __future__ import annotations

import configparser
import re
import signal
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import test_logrotate as logrotate
import upstart
from common import wait_until
from service import (
    CONFIG,
    INIT,
    NAME,
    SERVICE_DIR,
    assert_unprivileged,
    health,
    install,
    log_lines,
    restart_in_place,
    restarts_and_an_upgrade,
    set_message,
    wait_ready,
)
from supervisors import SUPERVISORD, Supervisor
from sysv import SysvRoot

if TYPE_CHECKING:
    from conftest import ServiceDebs

KINDS = ["daemontools", "runit"]
HUP = {"daemontools": ("-h",), "runit": ("hup",)}
DOWN = {"daemontools": ("-d",), "runit": ("down",)}
OTHER_PACKAGE = {"daemontools": "runit", "runit": "daemontools"}
# Neither supervisor has a RestartSec: both restart at once a service that ran for a second
# or more, and only a second after its start one that ran less. S1's bound is that second + 2 s.
RESTART_SEC = 1.0
# sv's default wait for `sv -w` (daemontools has none): the stop timeout of S3.
STOP_TIMEOUT = 7.0


@pytest.fixture
def installed(sysv_root: Callable[..., SysvRoot], service_debs: ServiceDebs) -> SysvRoot:
    """A root with the .deb installed and the init script's instance stopped."""
    root = sysv_root()
    install(root, service_debs.v1)
    assert root.run([INIT, "stop"]).returncode == 0
    assert not root.pids_of(NAME)
    return root


# --------------------------------------------------------------------------- helpers


def start(
    supervised: Callable[..., Supervisor], root: SysvRoot, kind: str, service: str = SERVICE_DIR
) -> tuple[Supervisor, int]:
    supervisor = supervised(root, kind, service)
    return supervisor, ready_pid(supervisor)


def ready_pid(supervisor: Supervisor) -> int:
    """The supervised daemon's pid, once it is ready."""
    pid = supervisor.wait_pid()
    wait_ready(supervisor.root, pid)
    return pid


def deny_service_actions(root: SysvRoot) -> None:
    """A supervisor runs the service: policy-rc.d keeps postinst's invoke-rc.d from starting the
    init script's instance beside it."""
    root.write_file("/usr/sbin/policy-rc.d", "#!/bin/sh\n# a supervisor runs it\nexit 101\n", 0o755)


# BSD process accounting (acct(2)), kept per PID namespace: the kernel's own record of how
# each process of the root ended, whichever supervisor reaped it. struct acct_v3, 64 bytes.
ACCT_FILE = "/var/tmp/pacct"
ACCT_V3 = struct.Struct("=BBH7I8H16s")


def start_accounting(root: SysvRoot) -> None:
    root.write_file(ACCT_FILE, "", mode=0o600)
    on = (
        "import ctypes, os, sys; libc = ctypes.CDLL(None, use_errno=True)\n"
        "if libc.acct(sys.argv[1].encode()): sys.exit(f'acct: {os.strerror(ctypes.get_errno())}')"
    )
    root.run(["python3", "-I", "-c", on, ACCT_FILE], check=True)


def exit_status(root: SysvRoot, pid: int) -> int | None:
    """The wait status the kernel recorded when `pid` (inside) exited; None if it has not."""
    data = root.path(ACCT_FILE).read_bytes()
    for offset in range(0, len(data) - ACCT_V3.size + 1, ACCT_V3.size):
        record = ACCT_V3.unpack_from(data, offset)
        assert record[1] & 0x7F == 3, "the kernel does not write acct_v3 records"
        if record[6] == pid:
            return int(record[3])
    return None


# --------------------------------------------------------------------------- supervision


def kill_9_and_time_the_restart(root: SysvRoot, supervisor: Supervisor, pid: int) -> tuple[int, float]:
    root.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    new = supervisor.wait_new_pid(pid, timeout=10.0)
    delay = time.monotonic() - killed
    assert delay <= RESTART_SEC + 2.0, f"new pid {delay:.2f} s after kill -9"
    wait_ready(root, new)
    assert health(root)["pid"] == new
    assert supervisor.pid() == new, "restarted more than once"
    return new, delay


@pytest.mark.parametrize("kind", KINDS)
def test_S1_kill_9_then_a_new_pid_within_restart_sec_plus_2_s(
    installed: SysvRoot, supervised: Callable[..., Supervisor], kind: str
) -> None:
    """Once after a second of uptime, then again at once: the supervisors' slow case."""
    root = installed
    supervisor, pid = start(supervised, root, kind)
    time.sleep(RESTART_SEC + 0.2)
    pid, after_uptime = kill_9_and_time_the_restart(root, supervisor, pid)
    pid, crash_loop = kill_9_and_time_the_restart(root, supervisor, pid)
    print(
        f"FIGURE: S1 {kind}: new pid {after_uptime:.2f} s after kill -9 of a daemon up for a second, "
        f"{crash_loop:.2f} s after kill -9 of one just restarted"
    )


@pytest.mark.parametrize("kind", KINDS)
def test_S3_stop_sends_sigterm_and_the_daemon_exits_0_without_kill(
    installed: SysvRoot, supervised: Callable[..., Supervisor], kind: str
) -> None:
    root = installed
    start_accounting(root)
    supervisor, pid = start(supervised, root, kind)
    stopping = len(log_lines(root, r" INFO stopping on SIGTERM$"))
    began = time.monotonic()
    assert supervisor.ctl(*DOWN[kind]).returncode == 0
    root.wait_gone(pid, timeout=STOP_TIMEOUT)
    took = time.monotonic() - began
    assert exit_status(root, pid) == 0, "not a clean exit 0 (a SIGKILL would show as 9)"
    assert len(log_lines(root, r" INFO stopping on SIGTERM$")) == stopping + 1
    assert supervisor.pid() is None and re.search(r"\bdown\b", supervisor.status_text())
    print(f"FIGURE: S3 {kind}: stopped, exit status 0, in {took:.2f} s")


@pytest.mark.parametrize("kind", KINDS)
def test_S4_hup_reloads_a_good_config_and_keeps_the_old_one_when_broken(
    installed: SysvRoot, supervised: Callable[..., Supervisor], kind: str
) -> None:
    root = installed
    supervisor, pid = start(supervised, root, kind)
    assert health(root)["message"] == "ok"
    set_message(root, f"reloaded under {kind}")
    assert supervisor.ctl(*HUP[kind]).returncode == 0
    wait_until(lambda: health(root)["message"] == f"reloaded under {kind}", 5.0, what="the new message")
    assert supervisor.pid() == pid
    set_message(root, "never served")
    config = root.path(CONFIG)
    config.write_text(config.read_text() + "no_such_key = 1\n")
    assert supervisor.ctl(*HUP[kind]).returncode == 0
    errors = wait_until(
        lambda: log_lines(root, r" ERROR reload failed, keeping the running configuration: .*no_such_key"),
        5.0,
        what="the reload error in the log",
    )
    assert len(errors) == 1
    assert health(root).items() >= {"status": "ok", "message": f"reloaded under {kind}", "pid": pid}.items()
    assert supervisor.pid() == pid


def ten_restarts_in_place_and_an_upgrade(
    root: SysvRoot, supervisor: Supervisor, kind: str, v2: Path, by_the_package: bool
) -> None:
    """S7 under a supervisor: USR2 ten times, then the upgrade to v2, which restarts the daemon
    in place itself (`by_the_package`), or after which the admin does; all of it under the
    client loop, and never a stop."""
    pid = ready_pid(supervisor)
    stops = len(log_lines(root, r" stopping on "))
    restarts, upgrade = restarts_and_an_upgrade(
        root,
        lambda: restart_in_place(root, pid, supervisor.usr2),
        v2,
        not by_the_package,
        signalled=pid if by_the_package else None,
    )
    print(f"FIGURE: S7 {kind}, 10 restarts: {restarts}")
    print(f"FIGURE: S7 {kind}, upgrade 0.1.0 -> 0.2.0: {upgrade}")
    assert (restarts.failures, upgrade.failures) == ([], [])
    assert restarts.pids == upgrade.pids == [pid] and supervisor.pid() == pid
    assert len(log_lines(root, r" INFO restarting in place: ")) == 11
    assert len(log_lines(root, r" stopping on ")) == stops
    assert installed_version(root) == "0.2.0"


@pytest.mark.parametrize("kind", KINDS)
def test_S7_ten_restarts_in_place_and_an_upgrade_under_load_refuse_reset_and_fail_no_request(
    installed: SysvRoot, supervised: Callable[..., Supervisor], kind: str, service_debs: ServiceDebs
) -> None:
    """The upgrade: apt-get installs 0.2.0, then the admin restarts the service in place."""
    deny_service_actions(installed)
    supervisor = supervised(installed, kind, SERVICE_DIR)
    ten_restarts_in_place_and_an_upgrade(installed, supervisor, kind, service_debs.v2, False)


# log_file values that load but that a start cannot use, and what the daemon says of each.
UNUSABLE_LOG_FILES = {
    "": "log_file is empty",
    "/var/log/my-service": "log_file '/var/log/my-service' is a directory",
    "/var/log/root-only/x.log": "log_file '/var/log/root-only/x.log': user my-service cannot create files in",
}


@pytest.mark.parametrize("kind", KINDS)
def test_C5_hup_with_a_log_file_a_start_cannot_use_keeps_the_running_config_one_line_each(
    installed: SysvRoot, supervised: Callable[..., Supervisor], kind: str
) -> None:
    root = installed
    root.sh("install -d -m 0755 /var/log/root-only", check=True)
    supervisor, pid = start(supervised, root, kind)
    config = root.path(CONFIG)
    good = config.read_text()
    for count, (log_file, reason) in enumerate(UNUSABLE_LOG_FILES.items(), start=1):
        config.write_text(re.sub(r"(?m)^log_file = .*$", f"log_file = {log_file}".rstrip(), good))
        set_message(root, "never served")
        assert supervisor.ctl(*HUP[kind]).returncode == 0
        wait_until(lambda r=reason: log_lines(root, re.escape(r)), 5.0, what=reason)
        assert len(log_lines(root, re.escape(reason))) == 1, reason
        assert len(log_lines(root, r" ERROR reload failed, keeping the running configuration: ")) == count
        assert health(root).items() >= {"status": "ok", "message": "ok", "pid": pid}.items()
        assert supervisor.pid() == pid
    assert not log_lines(root, "Traceback")


# --------------------------------------------------------------------------- privilege


@pytest.mark.parametrize("kind", KINDS)
def test_V1_daemon_runs_as_the_service_user_without_capabilities_also_after_hup(
    installed: SysvRoot, supervised: Callable[..., Supervisor], kind: str
) -> None:
    root = installed
    supervisor, pid = start(supervised, root, kind)
    assert_unprivileged(root, pid)
    reloads = len(log_lines(root, r" INFO reloaded "))
    assert supervisor.ctl(*HUP[kind]).returncode == 0
    wait_until(lambda: len(log_lines(root, r" INFO reloaded ")) == reloads + 1, 5.0, what="reload")
    assert supervisor.pid() == pid
    assert_unprivileged(root, pid)


# --------------------------------------------------------------------------- package removed


@pytest.mark.parametrize("alone", [False, True], ids=["beside-the-other-supervisor", "alone"])
@pytest.mark.parametrize("kind", KINDS)
def test_run_script_stands_down_once_the_package_is_removed_not_purged(
    installed: SysvRoot, supervised: Callable[..., Supervisor], kind: str, alone: bool
) -> None:
    """Not a restart a second: the run script (a conffile, so still there) takes the service down.

    Run with the other supervisor installed too (the run script then finds both svc and sv), and
    alone, as on a host with only one of them.
    """
    root = installed
    if alone:
        purged = root.run(["dpkg", "--purge", OTHER_PACKAGE[kind]])
        assert purged.returncode == 0, purged.stdout + purged.stderr
    supervisor, pid = start(supervised, root, kind)
    removed = root.run(["apt-get", "remove", "-y", NAME])
    assert removed.returncode == 0, removed.stdout[-3000:] + removed.stderr[-3000:]
    assert root.path(f"{SERVICE_DIR}/run").exists()
    root.kill(pid, signal.SIGKILL)  # the daemon still ran from the removed files; now it is gone

    assert supervisor.process is not None
    output = supervisor.process.log

    def stood_down() -> list[str]:
        return re.findall(
            r"(?m)^/usr/sbin/my-service is not installed: taking the service down$", output.read_text()
        )

    wait_until(stood_down, 5.0, what="the run script to stand down")
    time.sleep(3 * RESTART_SEC)  # a run script that fails would have been started ~3 more times
    assert len(stood_down()) == 1, output.read_text()[-2000:]
    assert supervisor.pid() is None and re.search(r"\bdown\b", supervisor.status_text())
    assert not root.pids_of(NAME)


# --------------------------------------------------------------------------- Upstart, emulated

UPSTART_JOB = "/etc/init/my-service.conf"
EMULATED = "/etc/sv/my-service-upstart"


def upstart_as_runit_service(job: str) -> tuple[str, str]:
    """(run, script): the job's main script block, run as its setuid/setgid/umask stanzas say.

    Upstart runs a script block with `/bin/sh -e` as the setuid user, and respawns it when the
    job has `respawn`: runsv does the respawning here.
    """
    errors, scripts, stanzas = upstart.check(job)
    assert not errors
    assert "respawn" in stanzas and "expect" not in stanzas
    blocks = [name for name in stanzas if name == "script" or name.endswith(" script")]
    user, group = stanzas["setuid"][0], stanzas["setgid"][0]
    run = "#!/bin/sh\n# The Upstart job's main script block, emulated under runsv.\nexec 2>&1\n"
    if "umask" in stanzas:
        run += f"umask {stanzas['umask'][0]}\n"
    run += f"exec chpst -u {user}:{group} /bin/sh -e {EMULATED}/script\n"
    return run, scripts[blocks.index("script")]


def test_S1_upstart_job_restarts_after_kill_9_under_runsv_standing_in_for_upstart(
    installed: SysvRoot, supervised: Callable[..., Supervisor]
) -> None:
    root = installed
    run, script = upstart_as_runit_service(root.path(UPSTART_JOB).read_text())
    assert "exec /usr/sbin/my-service --config /etc/my-service/my-service.conf" in script
    root.write_file(f"{EMULATED}/script", script)
    root.write_file(f"{EMULATED}/run", run, mode=0o755)
    supervisor, first = start(supervised, root, "runit", EMULATED)
    assert health(root)["pid"] == first
    assert_unprivileged(root, first)
    umask = re.search(r"(?m)^umask ([0-7]+)$", run)
    assert umask is not None
    assert f"Umask:\t{int(umask.group(1), 8):04o}\n" in root.path(f"/proc/{first}/status").read_text()

    second, delay = kill_9_and_time_the_restart(root, supervisor, first)
    assert_unprivileged(root, second)
    status = root.status(second)
    assert status is not None and status.cmdline[1:] == ("-I", "/usr/sbin/my-service", "--config", CONFIG)
    print(f"FIGURE: S1 upstart (its script block under runsv): new pid {delay:.2f} s after kill -9")


# Upstart's `stop` does not exist on Debian 12: this one records that the job stopped itself.
STUB_STOP = "#!/bin/sh\necho stop >>/var/tmp/upstart-stopped\n"


def test_C5_upstart_pre_start_stops_the_job_on_what_a_start_would_reject_with_a_stub_stop(
    installed: SysvRoot,
) -> None:
    """The pre-start block, run as its setuid user, with the options and config a start would use."""
    root = installed
    errors, scripts, stanzas = upstart.check(root.path(UPSTART_JOB).read_text())
    assert not errors
    blocks = [name for name in stanzas if name == "script" or name.endswith(" script")]
    root.write_file("/var/tmp/pre-start", scripts[blocks.index("pre-start script")])
    root.write_file("/usr/local/lib/upstart-stub/stop", STUB_STOP, mode=0o755)
    user, group = stanzas["setuid"][0], stanzas["setgid"][0]
    stopped = root.path("/var/tmp/upstart-stopped")

    def pre_start(reason: str | None) -> None:
        stopped.unlink(missing_ok=True)
        result = root.run(
            [
                "setpriv",
                f"--reuid={user}",
                f"--regid={group}",
                "--init-groups",
                "/bin/sh",
                "-e",
                "/var/tmp/pre-start",
            ],
            env={"PATH": "/usr/local/lib/upstart-stub:/usr/sbin:/usr/bin:/sbin:/bin"},
        )
        assert result.returncode == 0, result
        if reason is None:
            assert not stopped.exists() and result.stderr == "", result
        else:
            assert stopped.read_text() == "stop\n" and reason in result.stderr, result

    pre_start(None)
    defaults = root.path(f"/etc/default/{NAME}")
    good_defaults = defaults.read_text()
    defaults.write_text(good_defaults + "DAEMON_OPTS=--bogus\n")
    pre_start("my-service: error: unrecognized arguments: --bogus")
    defaults.write_text(good_defaults)
    config = root.path(CONFIG)
    config.write_text(re.sub(r"(?m)^log_file = .*$", "log_file =", config.read_text()))
    pre_start("log_file is empty")


# --------------------------------------------------------------------------- supervisord

PROGRAM = "my-service"
PROGRAM_FILE = f"/etc/supervisor/conf.d/{PROGRAM}.conf"
UNIT = "/lib/systemd/system/my-service.service"


def installed_version(root: SysvRoot) -> str:
    return root.run(["dpkg-query", "-W", "-f", "${Version}", "my-service"], check=True).stdout


def program_settings(root: SysvRoot) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=None)
    parser.read_string(root.path(PROGRAM_FILE).read_text())
    return parser[f"program:{PROGRAM}"]


@pytest.fixture
def supervisord_root(sysv_root: Callable[..., SysvRoot], service_debs: ServiceDebs) -> SysvRoot:
    """A root with supervisor and the .deb installed, supervisord not started yet.

    supervisord is not running while the .deb installs: the postinst leaves it be and the
    init script starts the service, which is stopped here before supervisord starts.
    """
    root = sysv_root(SUPERVISORD)
    result = root.install_deb(service_debs.v1)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "supervisorctl" not in result.stdout + result.stderr
    assert root.run(["/etc/init.d/my-service", "stop"]).returncode == 0
    assert not root.pids_of("my-service")
    start_accounting(root)
    return root


@pytest.fixture
def supervisord(supervisord_root: SysvRoot, supervised: Callable[..., Supervisor]) -> Supervisor:
    return supervised(supervisord_root, "supervisord", PROGRAM)


def test_S9_supervisord_kill_9_then_a_new_pid_within_startsecs_plus_2_s(supervisord: Supervisor) -> None:
    """Once after the program counts as started, then at once, while it is retried (BACKOFF)."""
    root = supervisord.root
    settings = program_settings(root)
    assert settings["autorestart"] == "unexpected" and settings["exitcodes"] == "0"
    bound = int(settings["startsecs"]) + 2.0
    pid = ready_pid(supervisord)
    time.sleep(int(settings["startsecs"]) + 0.2)
    delays = []
    for _ in range(2):
        root.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        new = supervisord.wait_new_pid(pid)
        delays.append(time.monotonic() - killed)
        assert delays[-1] <= bound, f"new pid {delays[-1]:.2f} s after kill -9"
        wait_ready(root, new)
        assert health(root)["pid"] == new
        pid = new
    assert supervisord.wait_pid() == pid, "restarted more than once"
    print(
        f"FIGURE: S9 supervisord: new pid {delays[0]:.2f} s after kill -9 of a started daemon, "
        f"{delays[1]:.2f} s after kill -9 of one just restarted"
    )


def test_S10_supervisorctl_stop_sends_term_and_the_daemon_exits_0_within_stopwaitsecs(
    supervisord: Supervisor,
) -> None:
    root = supervisord.root
    settings = program_settings(root)
    assert settings["stopsignal"] == "TERM"
    timeout_stop = re.search(r"(?m)^TimeoutStopSec=(\d+)$", root.path(UNIT).read_text())
    assert timeout_stop is not None
    stop_wait = int(settings["stopwaitsecs"])
    assert stop_wait > int(timeout_stop.group(1)), "stopwaitsecs must outlast the daemon's own stop timeout"
    pid = ready_pid(supervisord)
    stopping = len(log_lines(root, r" INFO stopping on SIGTERM$"))
    began = time.monotonic()
    result = supervisord.ctl("stop")
    took = time.monotonic() - began
    assert result.returncode == 0 and f"{PROGRAM}: stopped" in result.stdout, result
    assert took < stop_wait
    root.wait_gone(pid, timeout=5.0)
    assert exit_status(root, pid) == 0, "not a clean exit 0 (a SIGKILL would show as 9)"
    assert len(log_lines(root, r" INFO stopping on SIGTERM$")) == stopping + 1
    assert re.search(r"\bSTOPPED\b", supervisord.status_text())
    assert not root.pids_of("my-service")
    print(f"FIGURE: S10 supervisord: stopped, exit status 0, in {took:.2f} s (stopwaitsecs {stop_wait})")


def test_S7_supervisord_ten_restarts_in_place_and_an_upgrade_under_load_refuse_reset_and_fail_no_request(
    supervisord_root: SysvRoot, supervised: Callable[..., Supervisor], service_debs: ServiceDebs
) -> None:
    """`supervisorctl signal USR2`; the upgrade restarts it in place by itself (postinst)."""
    deny_service_actions(supervisord_root)
    supervisor = supervised(supervisord_root, "supervisord", PROGRAM)
    ten_restarts_in_place_and_an_upgrade(supervisord_root, supervisor, "supervisord", service_debs.v2, True)


def test_S11_supervisorctl_signal_hup_rereads_the_config_with_the_same_pid(supervisord: Supervisor) -> None:
    root = supervisord.root
    pid = ready_pid(supervisord)
    set_message(root, "reloaded under supervisord")
    assert supervisord.ctl("signal", "HUP").returncode == 0
    wait_until(lambda: health(root)["message"] == "reloaded under supervisord", 5.0, what="the new message")
    assert supervisord.pid() == pid and health(root)["pid"] == pid


ROTATIONS = 10
BYTES_PER_FILE = 100_000  # ~1,200 lines in each file before it is rotated


def test_S11_supervisord_rotation_with_the_shipped_logrotate_config_loses_no_line(
    supervisord: Supervisor,
) -> None:
    """No USR1 reaches the daemon here (the init script has no pidfile of it): it reopens by itself."""
    root = supervisord.root
    pid = ready_pid(supervisord)
    clients = logrotate.Clients(root, [0.0, 0.0])
    for _ in range(ROTATIONS):
        logrotate.wait_for_lines(root, BYTES_PER_FILE)
        logrotate.rotate(root)
    logrotate.wait_for_lines(root, BYTES_PER_FILE)
    written = clients.finish()
    assert supervisord.pid() == pid
    assert supervisord.ctl("stop").returncode == 0  # its last line is written
    seen = logrotate.count_seqs(logrotate.log_files(root))
    lost = len(written - set(seen))
    duplicated = [n for n, times in seen.items() if times > 1]
    print(f"FIGURE: S11 supervisord: {len(written)} lines, {ROTATIONS} rotations, lost {lost}")
    assert (lost, duplicated, sorted(set(seen) - written)) == (0, [], [])


def test_V1_supervisord_runs_the_daemon_as_the_service_user_without_capabilities_also_after_hup(
    supervisord: Supervisor,
) -> None:
    root = supervisord.root
    assert program_settings(root)["user"] == "my-service"
    pid = ready_pid(supervisord)
    assert_unprivileged(root, pid)
    reloads = len(log_lines(root, r" INFO reloaded "))
    assert supervisord.ctl("signal", "HUP").returncode == 0
    wait_until(lambda: len(log_lines(root, r" INFO reloaded ")) == reloads + 1, 5.0, what="reload")
    assert supervisord.pid() == pid
    assert_unprivileged(root, pid)


def installed_by_apt(root: SysvRoot, deb: Path, *apt_args: str) -> None:
    """The .deb installed, and none of postinst's supervisorctl calls failed."""
    result = root.install_deb(deb, *apt_args)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "supervisorctl" not in result.stderr, result.stderr


def test_P2_with_supervisord_the_deb_starts_the_program_restarts_it_in_place_on_upgrade_stops_it_on_remove(
    supervisord_root: SysvRoot, supervised: Callable[..., Supervisor], service_debs: ServiceDebs
) -> None:
    """The package's own supervisorctl calls; the init script is kept from starting (policy-rc.d).
    Once the admin has stopped the program, a reinstall starts it."""
    root = supervisord_root
    root.run(["dpkg", "--purge", NAME], check=True)  # its log too
    deny_service_actions(root)
    supervisord = supervised(root, "supervisord", PROGRAM)
    assert "no such process" in supervisord.status_text()

    installed_by_apt(root, service_debs.v1)
    pid = ready_pid(supervisord)
    assert health(root)["pid"] == pid
    wait_until(lambda: " RUNNING " in supervisord.status_text(), 5.0, what=f"{PROGRAM} RUNNING")
    restart_in_place(root, pid, lambda: installed_by_apt(root, service_debs.v2))
    assert installed_version(root) == "0.2.0"
    assert supervisord.pid() == pid and health(root)["pid"] == pid and root.pids_of(NAME) == [pid]
    assert len(log_lines(root, r" INFO restarting in place: ")) == 1
    assert not log_lines(root, r" stopping on ")

    assert supervisord.ctl("stop").returncode == 0
    installed_by_apt(root, service_debs.v2, "--reinstall")
    started = ready_pid(supervisord)
    assert started != pid and health(root)["pid"] == started and root.pids_of(NAME) == [started]

    removed = root.run(["apt-get", "remove", "-y", NAME])
    assert removed.returncode == 0, removed.stdout[-3000:] + removed.stderr[-3000:]
    root.wait_gone(started, timeout=5.0)
    assert supervisord.pid() is None and not root.pids_of(NAME)
