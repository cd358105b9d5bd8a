"""The shipped systemd unit under a real systemd: a booted bookworm container per test.

Each test installs the default project's .deb with apt, as a user would; debhelper's snippets
enable and start the unit. Commands run inside the container as root; pids are the container's.

Rows: S1 (kill -9 -> a new pid within RestartSec + 2 s), S2 (bad config -> failed after
StartLimitBurst, clear journal line), S3 (stop: SIGTERM, exit 0, no KILL), S4 (reload, or keep
the old config), S5 (Type=notify: init fails -> `systemctl start` fails), S6 (no pidfile; a
forged MAINPID= is refused), V1 (not root, no capabilities, also after reload), V3 (what the
service user can write), P2 (upgrade restarts once), P6 (purge leaves nothing), C5 (a config
that a start would reject: reload refuses it, the daemon serves on); and that the unit's IP
firewall acts in the container; S7 (10 restarts and an upgrade through the socket: no request
fails), the socket listening where the config says; S8 (a frozen main loop is restarted).
"""

from __future__ import annotations

import json
import re
import signal
import stat
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import roots
from common import wait_until
from nspawn import Container
from service import (
    CONFIG,
    DAEMON,
    LOG,
    LOG_DIR,
    NAME,
    PORT,
    RUN_DIR,
    STATE_DIR,
    UNIT,
    USER,
    assert_unprivileged,
    health,
    install,
    left_behind,
    log_lines,
    restarts_and_an_upgrade,
    user_ids,
)

if TYPE_CHECKING:
    from conftest import ServiceDebs

SOCKET = f"{NAME}.socket"
# What the unit may write, besides what every process may (see test_V3).
OWN_DIRS = (STATE_DIR, LOG_DIR, RUN_DIR)


class Service:
    """The unit inside one container: systemctl and its journal."""

    def __init__(self, container: Container) -> None:
        self.container = container

    def systemctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.container.run(["systemctl", *args])

    def show(self, *properties: str, unit: str = UNIT) -> dict[str, str]:
        result = self.container.run(["systemctl", "show", unit, *(f"--property={p}" for p in properties)])
        assert result.returncode == 0, result.stderr
        return dict(line.split("=", 1) for line in result.stdout.splitlines())

    def show_socket_listen(self) -> str:
        """The address the socket unit listens on, as `systemctl show` gives it."""
        return self.show("Listen", unit=SOCKET)["Listen"].removesuffix(" (Stream)")

    def main_pid(self) -> int:
        return int(self.show("MainPID")["MainPID"])

    def journal(self, pattern: str) -> list[str]:
        """Lines of `journalctl -u` (systemd's about the unit, and the unit's own stderr)."""
        result = self.container.run(["journalctl", "--unit", UNIT, "--no-pager", "--output", "cat"])
        return [line for line in result.stdout.splitlines() if re.search(pattern, line)]

    def wait_journal(self, pattern: str, count: int = 1, timeout: float = 10.0) -> list[str]:
        return wait_until(
            lambda: len(lines := self.journal(pattern)) >= count and lines,
            timeout,
            what=f"{pattern!r} in the journal",
        )

    def configure(self, **values: str) -> None:
        """Set `key = value` lines of the installed config file."""
        path = self.container.path(CONFIG)
        text = path.read_text()
        for key, value in values.items():
            text, found = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
            assert found == 1, key
        path.write_text(text)

    def wait_active(self, timeout: float = 10.0) -> int:
        """Wait until the unit is active (READY=1 received); returns its MainPID."""
        state = wait_until(
            lambda: (s := self.show("ActiveState", "MainPID"))["ActiveState"] == "active" and s,
            timeout,
            what=f"{UNIT} to be active",
        )
        return int(state["MainPID"])

    def assert_reload_refused(self, pid: int, reason: str, serving: str) -> None:
        """`systemctl reload` fails in ExecReload's check, which logs `reason` (a pattern): no HUP
        is sent, and `pid` goes on serving the `serving` message."""
        result = self.systemctl("reload", UNIT)
        assert result.returncode != 0, result
        assert self.show("ActiveState", "ReloadResult", "MainPID") == {
            "ActiveState": "active",
            "ReloadResult": "exit-code",
            "MainPID": str(pid),
        }
        assert self.wait_journal(rf"^{USER}: {CONFIG}: {reason}")
        assert health(self.container).items() >= {"status": "ok", "message": serving, "pid": pid}.items()
        assert not log_lines(self.container, r" ERROR "), "the daemon got a HUP"


@pytest.fixture
def service(systemd_container: Callable[..., Container], service_debs: ServiceDebs) -> Service:
    """v1 installed in a fresh container, active and serving /health."""
    container = systemd_container()
    install(container, service_debs.v1)
    unit = Service(container)
    pid = unit.wait_active()
    assert health(unit.container)["pid"] == pid
    return unit


# --------------------------------------------------------------------------- supervision


@pytest.mark.releases(*roots.RELEASES)
def test_S1_kill_9_main_pid_then_a_new_pid_within_restart_sec_plus_2_s(service: Service) -> None:
    unit = service
    assert unit.show("RestartUSec", "Restart") == {"RestartUSec": "1s", "Restart": "on-failure"}
    first = unit.main_pid()
    unit.container.kill(first, signal.SIGKILL)
    killed = time.monotonic()
    second = wait_until(lambda: (pid := unit.main_pid()) not in (0, first) and pid, 10.0, what="a new pid")
    forked = time.monotonic() - killed
    assert unit.wait_active() == second
    ready = time.monotonic() - killed
    assert ready <= 1.0 + 2.0, f"active again after {ready:.2f} s"
    assert health(unit.container)["pid"] == second
    assert unit.show("NRestarts")["NRestarts"] == "1"
    assert unit.wait_journal(r"Main process exited, code=killed, status=9/KILL")
    status = unit.container.status(second)
    assert status is not None and DAEMON in status.cmdline
    print(
        f"FIGURE: S1 systemd: new MainPID {forked:.2f} s after kill -9, active (READY=1) after {ready:.2f} s"
    )


def test_S8_frozen_main_loop_is_restarted_by_the_watchdog_within_watchdog_sec_plus_2_s(
    service: Service,
) -> None:
    unit = service
    assert unit.show("WatchdogUSec")["WatchdogUSec"] == "10s"
    first = unit.main_pid()
    unit.container.kill(first, signal.SIGSTOP)
    frozen = time.monotonic()
    second = wait_until(
        lambda: (pid := unit.main_pid()) not in (0, first) and pid, 10.0 + 2.0, what="a new pid"
    )
    assert unit.wait_active() == second
    restarted = time.monotonic() - frozen
    assert restarted <= 10.0 + 2.0, f"active again {restarted:.2f} s after SIGSTOP"
    assert health(unit.container)["pid"] == second
    assert unit.wait_journal(r"Watchdog timeout")
    print(f"FIGURE: S8 systemd: frozen main loop replaced, active again after {restarted:.2f} s")


def test_S2_bad_config_fails_the_unit_after_start_limit_burst_with_a_clear_journal_line(
    service: Service,
) -> None:
    unit = service
    assert unit.systemctl("stop", UNIT).returncode == 0
    unit.configure(port="eighty")
    # The install's start counts against the start limit too: begin with a clean count.
    assert unit.systemctl("reset-failed", UNIT).returncode == 0
    burst = int(unit.show("StartLimitBurst")["StartLimitBurst"])
    started = len(unit.journal(r"^Started "))
    began = time.monotonic()
    assert unit.systemctl("start", UNIT).returncode != 0
    wait_until(lambda: unit.show("ActiveState")["ActiveState"] == "failed", 30.0, what="failed")
    took = time.monotonic() - began
    # `burst` starts, each refused by the config check; the restart scheduled after the last
    # one hits the start limit.
    assert unit.show("ActiveState", "Result", "NRestarts", "MainPID") == {
        "ActiveState": "failed",
        "Result": "exit-code",
        "NRestarts": str(burst),
        "MainPID": "0",
    }
    assert unit.wait_journal(r"Start request repeated too quickly")
    problem = f"{USER}: {CONFIG}: port: invalid literal for int() with base 10: 'eighty'"
    assert unit.wait_journal(re.escape(problem), count=burst) == [problem] * burst
    assert len(unit.journal(r"^Started ")) == started
    print(f"FIGURE: S2 systemd: failed after {burst} starts in {took:.2f} s")


@pytest.mark.releases(*roots.RELEASES)
def test_S3_stop_sends_sigterm_and_the_daemon_exits_0_without_sigkill(service: Service) -> None:
    unit = service
    pid = unit.main_pid()
    timeout = unit.show("TimeoutStopUSec")["TimeoutStopUSec"]
    assert timeout == "30s"
    began = time.monotonic()
    assert unit.systemctl("stop", UNIT).returncode == 0
    took = time.monotonic() - began
    assert took < 30.0
    assert unit.container.status(pid) is None
    assert unit.show("ActiveState", "Result", "ExecMainCode", "ExecMainStatus", "ExecMainPID") == {
        "ActiveState": "inactive",
        "Result": "success",
        "ExecMainCode": "1",  # CLD_EXITED: it exited by itself, no signal killed it
        "ExecMainStatus": "0",
        "ExecMainPID": str(pid),
    }
    assert len(log_lines(unit.container, r" INFO stopping on SIGTERM$")) == 1
    assert log_lines(unit.container, r"")[-1].endswith(" INFO stopping on SIGTERM"), "it logged after SIGTERM"
    # systemd 247 (bullseye) says "Succeeded.", 248 and later "Deactivated successfully."
    assert unit.wait_journal(r"Deactivated successfully\.|Succeeded\.")
    assert not unit.journal(r"timed out|Killing|SIGKILL|status=9")
    print(f"FIGURE: S3 systemd: stopped, exit status 0, in {took:.2f} s")


def test_S4_reload_applies_a_good_config_and_refuses_a_broken_one_keeping_pid_and_old_config(
    service: Service,
) -> None:
    unit = service
    pid = unit.main_pid()
    unit.configure(message="reloaded")
    assert unit.systemctl("reload", UNIT).returncode == 0
    # ExecReload returns once HUP is sent; the daemon applies it a moment later.
    wait_until(lambda: health(unit.container)["message"] == "reloaded", 5.0, what="the new message")
    assert unit.main_pid() == pid
    assert len(log_lines(unit.container, r" INFO reloaded ")) == 1

    # Broken: ExecReload's config check fails first, so no HUP is sent at all.
    unit.configure(message="never served", port="eighty")
    unit.assert_reload_refused(pid, "port: invalid literal", serving="reloaded")
    assert len(log_lines(unit.container, r" INFO reloaded ")) == 1

    # A HUP that bypasses the check (kill -HUP): the daemon keeps the old config, logs an error.
    unit.container.kill(pid, signal.SIGHUP)
    errors = wait_until(
        lambda: log_lines(
            unit.container, r" ERROR reload failed, keeping the running configuration: .* port: "
        ),
        5.0,
        what="the reload error in the log",
    )
    assert len(errors) == 1
    assert health(unit.container).items() >= {"status": "ok", "message": "reloaded", "pid": pid}.items()
    assert unit.show("ActiveState", "MainPID") == {"ActiveState": "active", "MainPID": str(pid)}


def test_S5_notify_unit_whose_daemon_fails_to_init_makes_systemctl_start_fail(service: Service) -> None:
    """The socket unit passes a datagram socket: the config check passes, the daemon's init fails."""
    unit = service
    assert unit.systemctl("stop", SOCKET, UNIT).returncode == 0
    unit.container.write_file(
        f"/etc/systemd/system/{SOCKET}.d/datagram.conf",
        f"[Socket]\nListenStream=\nListenDatagram=127.0.0.1:{PORT}\n",
    )
    assert unit.systemctl("daemon-reload").returncode == 0
    expected = f"{USER}: cannot start: the socket that systemd passed is not a stream socket"
    assert unit.systemctl("reset-failed", UNIT).returncode == 0
    started = len(unit.journal(r"^Started "))
    result = unit.systemctl("start", UNIT)
    assert result.returncode != 0, result
    assert "failed" in result.stderr
    # The config check (ExecStartPre) passed: the daemon itself ran, then exited 1.
    assert unit.show("ExecMainCode", "ExecMainStatus") == {"ExecMainCode": "1", "ExecMainStatus": "1"}
    assert unit.wait_journal(re.escape(expected))
    assert len(unit.journal(r"^Started ")) == started, "reported active before READY=1"


# --------------------------------------------------------------------------- configs a start rejects


# kind -> (config values, what the check says). /etc is read-only to the unit (ProtectSystem=strict).
BAD_CONFIGS = {
    "log-file-empty": ({"log_file": ""}, "log_file is empty; give the absolute path"),
    "log-file-a-directory": (
        {"log_file": "/var/log/my-service"},
        "log_file '/var/log/my-service' is a directory",
    ),
    "log-dir-read-only-to-the-unit": (
        {"log_file": "/etc/my-service/my-service.log"},
        f"log_file '/etc/my-service/my-service.log': user {USER} cannot create files in /etc/my-service",
    ),
}


@pytest.mark.parametrize("kind", BAD_CONFIGS)
def test_C5_reload_with_a_config_a_start_would_reject_fails_and_leaves_the_daemon_serving(
    service: Service, kind: str
) -> None:
    unit = service
    pid = unit.main_pid()
    values, reason = BAD_CONFIGS[kind]
    unit.configure(message="never served", **values)
    unit.assert_reload_refused(pid, re.escape(reason), serving="ok")


def test_C5_start_with_a_log_file_the_unit_cannot_write_fails_in_the_check_with_the_reason(
    service: Service,
) -> None:
    """Before, the check passed (it ran in the sandbox, but only asked whether the directory
    exists) and the daemon itself failed with EROFS."""
    unit = service
    assert unit.systemctl("stop", UNIT).returncode == 0
    values, reason = BAD_CONFIGS["log-dir-read-only-to-the-unit"]
    unit.configure(**values)
    assert unit.systemctl("reset-failed", UNIT).returncode == 0
    result = unit.systemctl("start", UNIT)
    assert result.returncode != 0, result
    assert unit.wait_journal(rf"^{USER}: {CONFIG}: {re.escape(reason)}")
    assert unit.wait_journal(r"Control process exited, code=exited, status=1/FAILURE")
    assert not unit.journal(r"cannot start"), "the daemon itself ran"


def test_C5_start_with_a_typo_in_daemon_opts_fails_in_the_check_not_in_the_daemon(service: Service) -> None:
    """The check (ExecStartPre) runs with the options that ExecStart gives, from /etc/default."""
    unit = service
    assert unit.systemctl("stop", UNIT).returncode == 0
    defaults = unit.container.path(f"/etc/default/{NAME}")
    defaults.write_text(defaults.read_text() + "DAEMON_OPTS=--bogus\n")
    assert unit.systemctl("reset-failed", UNIT).returncode == 0
    assert unit.systemctl("start", UNIT).returncode != 0
    assert unit.wait_journal(rf"^{USER}: error: unrecognized arguments: --bogus$")
    assert unit.wait_journal(r"Control process exited, code=exited, status=2/INVALIDARGUMENT")
    assert not unit.journal(r"Main process exited"), "the daemon itself ran"


# --------------------------------------------------------------------------- privilege


FORGE_MAINPID = """\
import os, socket, sys, time
address = os.environ["NOTIFY_SOCKET"]
address = "\\0" + address[1:] if address.startswith("@") else address
with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
    sock.sendto(b"READY=1", address)
    sock.sendto(b"MAINPID=" + sys.argv[1].encode(), address)
time.sleep(600)
"""


def test_S6_unit_has_no_pidfile_and_a_mainpid_forged_by_the_service_user_is_refused(
    service: Service,
) -> None:
    """Under systemd the S6 attack has no pidfile to aim at: systemd tracks MainPID itself.

    What the service user can send systemd is a MAINPID= notification; a daemon taken over by an
    attacker (here, a drop-in's ExecStart with every other line of the unit kept) names a root
    process with it. systemd must refuse it, and `stop` must leave the root process running.
    """
    unit = service
    unit_text = unit.container.path(f"/lib/systemd/system/{UNIT}").read_text()
    assert not re.search(r"(?m)^PIDFile=", unit_text)
    assert unit.show("PIDFile", "NotifyAccess", "Type") == {
        "PIDFile": "",
        "NotifyAccess": "main",
        "Type": "notify",
    }
    assert not list(unit.container.path(RUN_DIR).iterdir())

    canary = unit.container.run(["systemd-run", "--unit=root-canary", "--property=Type=exec", "sleep", "600"])
    assert canary.returncode == 0, canary.stderr
    root_pid = int(
        unit.container.run(["systemctl", "show", "-P", "MainPID", "root-canary"], check=True).stdout
    )
    root_status = unit.container.status(root_pid)
    assert root_status is not None and root_status.uids == (0, 0, 0, 0)

    unit.container.write_file("/usr/local/lib/forge-mainpid.py", FORGE_MAINPID)
    unit.container.write_file(
        f"/etc/systemd/system/{UNIT}.d/forge.conf",
        f"[Service]\nExecStart=\nExecStart=/usr/bin/python3 -I /usr/local/lib/forge-mainpid.py {root_pid}\n",
    )
    # systemd logs the refusal at debug level only.
    assert unit.container.run(["systemd-analyze", "log-level", "debug"]).returncode == 0
    assert unit.systemctl("daemon-reload").returncode == 0
    assert unit.systemctl("restart", UNIT).returncode == 0
    unit.wait_journal(rf"New main PID {root_pid} does not belong to service, refusing\.")
    forger = unit.main_pid()
    assert forger != root_pid
    forger_status = unit.container.status(forger)
    assert forger_status is not None and "/usr/local/lib/forge-mainpid.py" in forger_status.cmdline
    assert set(forger_status.uids) == {user_ids(unit.container)[0]}

    assert unit.systemctl("stop", UNIT).returncode == 0
    assert unit.container.status(forger) is None
    assert unit.container.status(root_pid) == root_status, "systemd signalled the root process"
    assert unit.container.run(["systemctl", "is-active", "root-canary"]).stdout == "active\n"


def test_V1_daemon_runs_as_the_service_user_without_capabilities_also_after_reload(service: Service) -> None:
    unit = service
    pid = unit.main_pid()
    assert_unprivileged(unit.container, pid)
    unit.configure(message="after reload")
    assert unit.systemctl("reload", UNIT).returncode == 0
    wait_until(lambda: health(unit.container)["message"] == "after reload", 5.0, what="the reload")
    assert unit.main_pid() == pid
    assert_unprivileged(unit.container, pid)


def test_ip_address_deny_of_the_unit_is_enforced_in_the_container(service: Service) -> None:
    """IPAddressDeny=/IPAddressAllow= are BPF programs on a unit's cgroup: proof they act here.

    nspawn denies bpf(2) unless told otherwise (the harness allows it); systemd then runs the
    unit without its firewall and says so only at debug level. So check what it does: with
    the socket unit's IPAddressAllow=localhost cleared by a drop-in, IPAddressDeny=any must
    cut the health endpoint off even on loopback (the socket is the socket unit's, so its
    firewall is the one that counts); without the drop-in, it answers again.
    """
    unit = service
    for name in (UNIT, SOCKET):
        shown = unit.show("IPAddressAllow", "IPAddressDeny", unit=name)
        assert set(shown["IPAddressAllow"].split()) == {"127.0.0.0/8", "::1/128"}, name
        assert set(shown["IPAddressDeny"].split()) == {"0.0.0.0/0", "::/0"}, name
    drop_in = unit.container.write_file(
        f"/etc/systemd/system/{SOCKET}.d/deny-all.conf", "[Socket]\nIPAddressAllow=\n"
    )
    assert unit.systemctl("daemon-reload").returncode == 0
    assert unit.systemctl("restart", SOCKET, UNIT).returncode == 0
    pid = unit.wait_active()
    cut_off = unit.container.http_get(PORT, "/health", timeout=1.0)
    assert cut_off.status == 0 and "timed out" in cut_off.error, cut_off
    drop_in.unlink()
    assert unit.systemctl("daemon-reload").returncode == 0
    assert unit.systemctl("restart", SOCKET, UNIT).returncode == 0
    assert health(unit.container)["pid"] == unit.wait_active() != pid


# Run as the service user inside the daemon's mount namespace: which of the paths on stdin
# (directories and regular files only; sockets and pseudo-devices are not files) may it write?
WRITABLE = """\
import os, stat, sys
for path in sys.stdin.read().split("\\0")[:-1]:
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        continue
    if (stat.S_ISDIR(mode) or stat.S_ISREG(mode)) and os.access(path, os.W_OK):
        print(path)
"""


def test_V3_service_user_writes_only_its_state_log_and_runtime_dirs(service: Service) -> None:
    """Seen from inside the unit's sandbox (ProtectSystem=strict and friends), and from outside.

    Inside, besides its own three directories, it may write only what systemd makes for it
    alone (PrivateTmp's /tmp and /var/tmp) and the POSIX IPC file systems (/dev/shm,
    /dev/mqueue), whose objects of the user RemoveIPC= deletes when the unit stops.
    """
    unit = service
    pid = unit.main_pid()
    uid, gid = user_ids(unit.container)
    owned = unit.container.run(
        ["find", "/", "(", "-path", "/proc", "-o", "-path", "/sys", "-o", "-path", "/dev", ")", "-prune",
         "-o", "(", "-uid", str(uid), "-o", "-gid", str(gid), ")", "-print"],
        check=True,
    ).stdout.split()  # fmt: skip
    assert sorted(owned) == sorted([*OWN_DIRS, LOG])

    as_user = f"setpriv --reuid={uid} --regid={gid} --clear-groups"
    scan = f"find / '(' -path /proc -o -path /sys ')' -prune -o -print0 | {as_user} python3 -I -c \"$0\""
    result = unit.container.run(["nsenter", "-t", str(pid), "-m", "sh", "-c", scan, WRITABLE], check=True)
    writable = set(result.stdout.splitlines())
    own = {path for path in writable if any(path == d or path.startswith(d + "/") for d in OWN_DIRS)}
    assert own == {*OWN_DIRS, LOG}
    assert sorted(writable - own) == ["/dev/mqueue", "/dev/shm", "/tmp", "/var/tmp"]

    inside, outside = Path(f"/proc/{unit.container.host_pid(pid)}/root"), unit.container.path("/")
    for private in ("/tmp", "/var/tmp"):
        theirs, ours = (base.joinpath(private.lstrip("/")).stat() for base in (inside, outside))
        assert (theirs.st_dev, theirs.st_ino) != (ours.st_dev, ours.st_ino), f"{private} is shared"
    probe = "/dev/shm/v3-probe"
    made = unit.container.run(["nsenter", "-t", str(pid), "-m", "setpriv", f"--reuid={uid}", f"--regid={gid}",
                               "--clear-groups", "touch", probe])  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert unit.container.path(probe).stat().st_uid == uid
    assert unit.systemctl("stop", UNIT).returncode == 0
    assert not unit.container.path(probe).exists(), "RemoveIPC= left the user's /dev/shm file"
    # World-writable outside: only the unit's ReadOnlyPaths=/run keeps it out of `writable`.
    assert stat.S_IMODE(unit.container.path("/run/lock").stat().st_mode) == 0o1777


# --------------------------------------------------------------------------- package lifecycle


@pytest.mark.releases(*roots.RELEASES)
def test_P2_upgrade_keeps_it_running_and_restarts_it_exactly_once(
    service: Service, service_debs: ServiceDebs
) -> None:
    unit = service
    first = unit.main_pid()
    assert len(unit.journal(r"^Started ")) == 1
    assert len(log_lines(unit.container, r" INFO ready: ")) == 1
    install(unit.container, service_debs.v2)
    version = unit.container.run(["dpkg-query", "-W", "-f", "${Version}", NAME], check=True).stdout
    assert version == "0.2.0"
    second = unit.wait_active()
    assert second != first
    assert health(unit.container)["pid"] == second
    assert len(unit.journal(r"^Started ")) == 2
    assert len(unit.journal(r"^Stopping ")) == 1
    ready = log_lines(unit.container, r" INFO ready: ")
    assert [line.rsplit(" ", 1)[-1] for line in ready] == [str(first), str(second)]
    assert len(log_lines(unit.container, r" INFO stopping on SIGTERM$")) == 1
    assert unit.show("NRestarts")["NRestarts"] == "0"


# Created by other packages while this one was installed and purged: apt's cache, state and logs,
# adduser's lock, runit's trigger (for /etc/sv), agetty. None is this package's.
@pytest.mark.releases(*roots.RELEASES)
def test_S7_ten_restarts_and_an_upgrade_through_the_socket_fail_no_request(
    service: Service, service_debs: ServiceDebs
) -> None:
    unit = service
    assert unit.container.run(["systemctl", "is-active", SOCKET]).stdout == "active\n"

    def restart() -> None:
        # Every start counts towards StartLimitBurst=5 in StartLimitIntervalSec=10 s, and a start
        # refused by that limit fails the socket too; reset-failed resets the count.
        assert unit.systemctl("reset-failed", UNIT).returncode == 0
        pid = unit.main_pid()
        assert unit.systemctl("restart", UNIT).returncode == 0
        assert unit.wait_active() != pid

    restarts, upgrade = restarts_and_an_upgrade(unit.container, restart, service_debs.v2, False)
    for load in (restarts, upgrade):
        assert load.failures == [] and load.served >= 50, load
    assert len(restarts.pids) == 11 and len(upgrade.pids) == 2, (restarts, upgrade)
    version = unit.container.run(["dpkg-query", "-W", "-f", "${Version}", NAME], check=True).stdout
    assert version == "0.2.0"
    # The socket itself was never restarted: one "Listening on" line in its journal.
    journal = unit.container.run(["journalctl", "--unit", SOCKET, "--no-pager", "--output", "cat"]).stdout
    assert journal.count("Listening on ") == 1, journal
    print(f"FIGURE: S7 systemd: 10 restarts: {restarts}; upgrade: {upgrade}")


def test_socket_listens_where_the_config_says_after_a_daemon_reload(service: Service) -> None:
    unit = service
    unit.configure(port="8181")
    assert unit.systemctl("daemon-reload").returncode == 0
    assert unit.show_socket_listen() == "127.0.0.1:8181"
    assert unit.systemctl("restart", SOCKET, UNIT).returncode == 0
    pid = unit.wait_active()
    reply = unit.container.http_get(8181, "/health")
    assert reply.status == 200 and json.loads(reply.body)["pid"] == pid
    assert unit.container.http_get(PORT, "/health").status == 0


def names_and_uids(container: Container) -> set[tuple[str, tuple[int, ...]]]:
    # "(agetty)" is agetty while systemd sets it up, just after boot; "sd-mkdcreds" and the like
    # are systemd 257's short-lived helpers that set a unit up.
    return {(p.name.strip("()"), p.uids) for p in container.processes() if not p.name.startswith("sd-")}


@pytest.mark.releases(*roots.RELEASES)
def test_P6_purge_leaves_nothing_of_the_package(
    systemd_container: Callable[..., Container], service_debs: ServiceDebs
) -> None:
    container = systemd_container()
    trees = ["/etc", "/var/lib", "/var/log", "/run"]

    def paths() -> set[str]:
        return set(container.run(["find", *trees], check=True).stdout.splitlines())

    fresh = paths()
    processes = names_and_uids(container)
    install(container, service_debs.v1)
    unit = Service(container)
    pid = unit.wait_active()
    uid, gid = user_ids(unit.container)
    installed = paths()
    assert {f"/etc/{NAME}", *OWN_DIRS, f"/etc/systemd/system/multi-user.target.wants/{UNIT}"} <= installed

    purged = container.run(["apt-get", "purge", "-y", "-o", "Dpkg::Use-Pty=0", NAME])
    assert purged.returncode == 0, purged.stdout[-3000:] + purged.stderr[-3000:]
    container.wait_gone(pid)
    left = paths() - fresh
    assert not [path for path in left if NAME in path]
    assert left_behind(left) == [], left
    owned = container.run(
        ["find", *trees, "(", "-uid", str(uid), "-o", "-gid", str(gid), ")", "-print"], check=True
    ).stdout
    assert owned == ""
    assert names_and_uids(container) == processes
    assert not [p for p in container.processes() if uid in p.uids or DAEMON in p.cmdline]
    assert container.run(["dpkg-query", "-W", NAME]).returncode != 0
    unit_files = container.run(["systemctl", "list-unit-files", "--no-legend", UNIT])
    assert unit_files.stdout == ""
    assert unit.systemctl("cat", UNIT).returncode != 0
    print(
        f"FIGURE: P6 systemd: after purge, {len(left)} new paths under {' '.join(trees)}, none of the package"
    )


# --------------------------------------------------------------------------- the generated CI's smoke job


def test_smoke_script_of_the_generated_ci_passes_in_a_booted_systemd_container(
    systemd_container: Callable[..., Container], service_debs: ServiceDebs
) -> None:
    """tests/smoke, as the generated CI's smoke job runs it on a systemd host, passes here,
    and leaves nothing of the package behind, seen from outside the script too."""
    container = systemd_container()
    trees = ["/etc", "/var/lib", "/var/log", "/run", "/usr/sbin", "/usr/lib"]

    def paths() -> set[str]:
        return set(container.run(["find", *trees], check=True).stdout.splitlines())

    fresh = paths()
    processes = names_and_uids(container)
    # As in the project's checkout: the script finds deploy/check-health beside its tests/.
    for part in ("tests/smoke", "deploy/check-health"):
        container.path(f"/var/tmp/project/{part}").parent.mkdir(parents=True)
        container.copy_in(service_debs.project / part, f"/var/tmp/project/{part}")
    script = "/var/tmp/project/tests/smoke"
    deb = container.copy_in(service_debs.v1, f"/var/tmp/{service_debs.v1.name}")
    result = container.run(["sh", script, deb], timeout=300.0)
    assert result.returncode == 0, result.stdout + result.stderr
    steps = [line.split()[1].rstrip(":") for line in result.stdout.splitlines()]
    assert steps == ["install", "/health", "reload", "rotate", "restart", "purge", "passed"], result.stdout
    left = paths() - fresh - {script, deb}
    assert not [path for path in left if NAME in path], left
    assert left_behind(left) == [], left
    assert names_and_uids(container) == processes
    assert container.run(["dpkg-query", "-W", NAME]).returncode != 0
    print(f"FIGURE: smoke script: {len(steps)} steps; after purge {len(left)} new paths, none of the package")
