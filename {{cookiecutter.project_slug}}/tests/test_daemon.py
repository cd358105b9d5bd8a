"""The daemon against a real process: signals, reload, log reopening, readiness."""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }} import __version__, daemon, health

PROJECT = Path(__file__).resolve().parent.parent
SRC = PROJECT / "src"
READY = re.compile(r"ready: listening on [^ ]+:(\d+), pid (\d+)")


def write_config(
    path: Path, log_file: Path, message: str = "ok", port: int = 0, listen: str = "127.0.0.1"
) -> None:
    path.write_text(
        f"[service]\nlisten = {listen}\nport = {port}\nlog_file = {log_file}\nmessage = {message}\n",
        encoding="utf-8",
    )


def wait_for(predicate, timeout: float = 5.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s")


# The daemon with a shorter deadline per connection, so that a test of it waits less.
WITH_DEADLINE = (
    "import sys; from {{ cookiecutter.package_name }} import daemon, health; "
    "health.TIMEOUT = float(sys.argv[1]); sys.exit(daemon.main(sys.argv[2:]))"
)


class Service:
    def __init__(
        self, tmp_path: Path, env: dict[str, str] | None = None, deadline: float | None = None
    ) -> None:
        self.config = tmp_path / "service.conf"
        self.log = tmp_path / "service.log"
        write_config(self.config, self.log)
        if deadline is None:
            start = ["-m", "{{ cookiecutter.package_name }}"]
        else:
            start = ["-c", WITH_DEADLINE, str(deadline)]
        self.process = subprocess.Popen(
            [sys.executable, *start, "--config", str(self.config)],
            env={**os.environ, "PYTHONPATH": str(SRC), **(env or {})},
            stderr=subprocess.PIPE,
            text=True,
        )
        match = wait_for(lambda: READY.search(self.read_log()))
        self.port = int(match.group(1))
        assert int(match.group(2)) == self.process.pid

    def read_log(self) -> str:
        return self.log.read_text(encoding="utf-8") if self.log.exists() else ""

    def health(self, path: str = "/health") -> dict[str, object]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as response:
            assert response.status == 200
            return json.load(response)

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)


def stopped(svc: Service) -> None:
    if svc.process.poll() is None:
        svc.process.kill()
    svc.process.wait()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    """A daemon of the test's own, for a test that changes its config or log, or ends it."""
    svc = Service(tmp_path)
    yield svc
    stopped(svc)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One daemon for the tests that only ask it questions and signal it to no effect."""
    svc = Service(tmp_path_factory.mktemp("shared"))
    yield svc
    stopped(svc)


def test_health_endpoint_answers_with_status_pid_name_and_version(shared: Service) -> None:
    assert shared.health() == {
        "status": "ok",
        "message": "ok",
        "pid": shared.process.pid,
        "name": "{{ cookiecutter.project_slug }}",
        "version": __version__,
    }


def test_hello_endpoint_answers_with_the_configured_message(shared: Service) -> None:
    assert shared.health("/hello") == {"hello": "ok"}


def test_version_prints_the_name_and_the_version_of_debian_changelog(
    capsys: pytest.CaptureFixture[str],
) -> None:
    changelog = (PROJECT / "debian/changelog").read_text(encoding="utf-8")
    version = re.match(r"[^ ]+ \(([^)]+)\)", changelog).group(1)  # type: ignore[union-attr]
    with pytest.raises(SystemExit) as done:
        daemon.main(["--version"])
    assert (done.value.code, capsys.readouterr().out) == (0, f"{{ cookiecutter.project_slug }} {version}\n")


@pytest.mark.skipif(not socket.has_ipv6, reason="this host has no IPv6")
def test_listens_on_ipv6_loopback(tmp_path: Path) -> None:
    config = tmp_path / "v6.conf"
    log = tmp_path / "v6.log"
    write_config(config, log, listen="::1")
    process = subprocess.Popen(
        [sys.executable, "-m", "{{ cookiecutter.package_name }}", "--config", str(config)],
        env={**os.environ, "PYTHONPATH": str(SRC)},
    )
    try:
        port = int(wait_for(lambda: READY.search(log.read_text() if log.exists() else "")).group(1))
        with urllib.request.urlopen(f"http://[::1]:{port}/health", timeout=5) as response:
            assert json.load(response)["pid"] == process.pid
    finally:
        process.terminate()
        assert process.wait(timeout=5) == 0


def still_open(conn: socket.socket) -> bool:
    """Whether the daemon has not closed conn (an end of file is there to read once it has)."""
    conn.setblocking(False)
    try:
        return conn.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    finally:
        conn.setblocking(True)


def test_a_slow_client_delays_no_other_and_is_closed_at_its_deadline(tmp_path: Path) -> None:
    service = Service(tmp_path, deadline=0.5)
    try:
        with socket.create_connection(("127.0.0.1", service.port)) as slow:
            slow.sendall(b"G")
            assert service.health()["pid"] == service.process.pid
            assert still_open(slow), "/health was answered only once the slow client's time was up"
            slow.settimeout(3)
            assert slow.recv(100) == b""
        wait_for(lambda: "request not complete within 0.5 s" in service.read_log())
    finally:
        service.process.terminate()
        assert service.process.wait(timeout=5) == 0


def test_sigterm_lets_a_request_in_progress_finish_and_drops_idle_clients(service: Service) -> None:
    idle = socket.create_connection(("127.0.0.1", service.port), timeout=5)
    busy = socket.create_connection(("127.0.0.1", service.port), timeout=5)
    with idle, busy:
        busy.sendall(b"GET /health HTTP/1.0\r\n")
        # Answered after busy's first line arrived: the daemon has read it by now.
        service.health()
        service.signal(signal.SIGTERM)
        wait_for(lambda: "stopping on SIGTERM" in service.read_log())
        assert idle.recv(100) == b""
        busy.sendall(b"\r\n")
        reply = b""
        while chunk := busy.recv(4096):
            reply += chunk
    assert reply.startswith(b"HTTP/1.0 200 OK\r\n")
    assert service.process.wait(timeout=5) == 0


def test_a_storm_of_hup_and_usr1_leaves_the_daemon_serving(shared: Service) -> None:
    for _ in range(1000):
        shared.signal(signal.SIGHUP)
        shared.signal(signal.SIGUSR1)
    assert shared.health()["pid"] == shared.process.pid
    assert shared.process.poll() is None


def test_drain_empties_the_wake_up_pipe_whatever_its_length() -> None:
    for length in (1, 512, 4096, 10000):
        read, write = os.pipe2(os.O_NONBLOCK)
        try:
            os.write(write, b"x" * length)
            daemon.drain(read)
            with pytest.raises(BlockingIOError):
                os.read(read, 1)
        finally:
            os.close(read)
            os.close(write)


def test_a_low_open_file_limit_lowers_the_cap_so_accept_never_fails(tmp_path: Path) -> None:
    config = tmp_path / "low.conf"
    log = tmp_path / "low.log"
    write_config(config, log)
    process = subprocess.Popen(
        [sys.executable, "-m", "{{ cookiecutter.package_name }}", "--config", str(config)],
        env={**os.environ, "PYTHONPATH": str(SRC)},
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64)),
    )
    clients: list[socket.socket] = []
    try:
        port = int(wait_for(lambda: READY.search(log.read_text() if log.exists() else "")).group(1))
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(100)]
        wait_for(lambda: "32 connections open, the most allowed" in log.read_text())
        for client in clients:
            client.close()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as response:
            assert json.load(response)["pid"] == process.pid
        assert "Too many open files" not in log.read_text()
    finally:
        for client in clients:
            client.close()
        process.terminate()
        assert process.wait(timeout=10) == 0


def test_unknown_path_is_404(shared: Service) -> None:
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"http://127.0.0.1:{shared.port}/nope", timeout=5)
    assert err.value.code == 404


def test_sigterm_exits_zero_within_timeout(service: Service) -> None:
    service.signal(signal.SIGTERM)
    assert service.process.wait(timeout=5) == 0
    assert "stopping on SIGTERM" in service.read_log()


def test_sighup_reloads_config_in_the_same_process(service: Service) -> None:
    write_config(service.config, service.log, message="reloaded", port=service.port)
    service.signal(signal.SIGHUP)
    wait_for(lambda: service.health()["message"] == "reloaded")
    assert service.process.poll() is None
    assert service.health()["pid"] == service.process.pid


def test_sighup_with_broken_config_keeps_the_old_one_and_logs_an_error(service: Service) -> None:
    service.config.write_text("[service]\nport = not-a-number\n", encoding="utf-8")
    service.signal(signal.SIGHUP)
    wait_for(lambda: "reload failed, keeping the running configuration" in service.read_log())
    assert service.health()["message"] == "ok"
    assert service.process.poll() is None


def test_sigusr1_reopens_the_log_after_it_was_moved(service: Service) -> None:
    rotated = service.log.with_suffix(".log.1")
    service.log.rename(rotated)
    service.log.touch()
    service.signal(signal.SIGUSR1)
    wait_for(lambda: "log file reopened" in service.read_log())
    service.health()
    wait_for(lambda: "GET /health" in service.read_log())
    assert "log file reopened" not in rotated.read_text(encoding="utf-8")


def test_moved_log_is_reopened_without_a_signal_once_a_new_one_is_created(service: Service) -> None:
    rotated = service.log.with_suffix(".log.1")
    service.log.rename(rotated)
    service.health()
    wait_for(lambda: "GET /health" in rotated.read_text(encoding="utf-8"))
    assert not service.log.exists(), "the new file is logrotate's to create: it fails on ours"
    service.log.touch()
    service.health()
    wait_for(lambda: "GET /health" in service.read_log())
    assert rotated.read_text(encoding="utf-8").count("GET /health") == 1


def test_deleted_log_is_made_anew(service: Service) -> None:
    service.log.unlink()
    service.health()
    wait_for(lambda: "GET /health" in service.read_log())


def test_log_that_cannot_be_reopened_does_not_stop_the_daemon(service: Service) -> None:
    rotated = service.log.with_suffix(".log.1")
    service.log.rename(rotated)
    service.log.mkdir()
    service.health()
    wait_for(lambda: "GET /health" in rotated.read_text(encoding="utf-8"))
    assert service.health()["pid"] == service.process.pid


def test_sigusr1_with_a_log_it_cannot_open_keeps_the_old_one(service: Service) -> None:
    rotated = service.log.with_suffix(".log.1")
    service.log.rename(rotated)
    service.log.mkdir()
    service.signal(signal.SIGUSR1)
    wait_for(lambda: "cannot reopen the log" in rotated.read_text(encoding="utf-8"))
    assert service.health()["pid"] == service.process.pid


def test_sighup_with_a_log_it_cannot_open_keeps_the_old_configuration(service: Service) -> None:
    unwritable = service.log.parent / "missing-dir" / "x.log"
    write_config(service.config, unwritable, message="new", port=service.port)
    service.signal(signal.SIGHUP)
    wait_for(lambda: "reload failed, keeping the running configuration" in service.read_log())
    assert service.health()["message"] == "ok"


@contextlib.contextmanager
def notified(tmp_path: Path, env: dict[str, str] | None = None) -> Iterator[tuple[socket.socket, Service]]:
    """The daemon with NOTIFY_SOCKET set to a listener of the test's (5 s timeout); killed after."""
    address = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(address)
        listener.settimeout(5)
        svc = Service(tmp_path, env={"NOTIFY_SOCKET": address, **(env or {})})
        try:
            yield listener, svc
        finally:
            svc.process.kill()
            svc.process.wait()


def test_ready_is_sent_to_notify_socket(tmp_path: Path) -> None:
    with notified(tmp_path) as (listener, svc):
        assert listener.recv(64) == b"READY=1"
        svc.signal(signal.SIGTERM)
        assert listener.recv(64) == b"STOPPING=1"
        assert svc.process.wait(timeout=5) == 0


@pytest.mark.parametrize("watched", [True, False], ids=["own-pid", "other-pid"])
def test_idle_loop_pings_the_watchdog_only_when_it_is_the_watched_pid(tmp_path: Path, watched: bool) -> None:
    # WatchdogSec=0.2: a ping every 0.1 s, from an idle loop that nothing else wakes.
    env = {"WATCHDOG_USEC": "200000"} if watched else {"WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"}
    with notified(tmp_path, env) as (listener, _svc):
        assert listener.recv(64) == b"READY=1"
        pings = 0
        deadline = time.monotonic() + 0.55
        listener.settimeout(0.05)
        while time.monotonic() < deadline:
            try:
                pings += listener.recv(64) == b"WATCHDOG=1"
            except socket.timeout:  # TimeoutError on 3.10+; the daemon runs on 3.9 too
                pass
        assert pings >= 4 if watched else pings == 0


def test_stop_succeeds_after_the_notify_socket_went_away(tmp_path: Path) -> None:
    # start-stop-daemon --notify-await removes its socket once it has READY=1.
    address = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(address))
        svc = Service(tmp_path, env={"NOTIFY_SOCKET": str(address)})
    address.unlink()
    svc.signal(signal.SIGTERM)
    assert svc.process.wait(timeout=5) == 0
    assert "stopping on SIGTERM" in svc.read_log()


def get_over(sock: socket.socket) -> bytes:
    sock.sendall(b"GET /health HTTP/1.0\r\n\r\n")
    reply = b""
    while chunk := sock.recv(4096):
        reply += chunk
    return reply


@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_UNIX], ids=["inet", "unix"])
def test_listening_socket_passed_by_systemd_is_used(tmp_path: Path, family: socket.AddressFamily) -> None:
    address = ("127.0.0.1", 0) if family == socket.AF_INET else str(tmp_path / "health.sock")
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.bind(address)
    listener.listen()
    address = listener.getsockname()
    shown = f"{address[0]}:{address[1]}" if family == socket.AF_INET else address
    config = tmp_path / "service.conf"
    write_config(config, tmp_path / "service.log")
    # LISTEN_PID must name the daemon itself: set it in the child, just before exec.
    code = (
        "import os, sys; os.dup2(int(sys.argv[1]), 3); os.environ['LISTEN_PID'] = str(os.getpid()); "
        "os.environ['LISTEN_FDS'] = '1'; "
        "os.execv(sys.executable, [sys.executable, '-m', sys.argv[3], '--config', sys.argv[2]])"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(listener.fileno()), str(config), health.__package__],
        env={**os.environ, "PYTHONPATH": str(SRC)},
        pass_fds=[listener.fileno()],
    )
    try:
        listener.close()
        log = tmp_path / "service.log"
        wait_for(lambda: log.exists() and f"listening on {shown}, pid" in log.read_text(encoding="utf-8"))
        for _ in range(2):
            with socket.socket(family, socket.SOCK_STREAM) as client:
                client.settimeout(5)
                client.connect(address)
                reply = get_over(client)
            assert reply.startswith(b"HTTP/1.0 200 OK\r\n") and f'"pid": {process.pid}'.encode() in reply
    finally:
        process.terminate()
        assert process.wait(timeout=5) == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[service]\nport = 99999\n", "out of range"),
        ("[service]\nport = x\n", "port"),
        ("[other]\n", "no [service] section"),
        ("[service]\ncolour = blue\n", "unknown keys: colour"),
        ("[service]\nlisten = 127.0.0.1\nport = 0\nlog_level = loud\n", "log_level must be one of"),
    ],
)
def test_bad_config_exits_one_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    config = tmp_path / "bad.conf"
    config.write_text(content, encoding="utf-8")
    # In this process: main() returns before it would start anything, and a start costs more.
    for extra in ([], ["--check-config"]):
        assert daemon.main(["--config", str(config), *extra]) == 1
        assert message in capsys.readouterr().err


def test_missing_config_exits_one_naming_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.conf"
    assert daemon.main(["--config", str(missing)]) == 1
    assert str(missing) in capsys.readouterr().err


def test_good_config_checks_clean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "good.conf"
    write_config(config, tmp_path / "x.log")
    assert daemon.main(["--config", str(config), "--check-config"]) == 0
    assert capsys.readouterr() == ("", "")


class ClientLoop(threading.Thread):
    """GET /health on loopback, one request after another, as long as the test runs."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.done = threading.Event()
        self.served = 0
        self.pids: set[int] = set()
        self.failures: list[str] = []

    def run(self) -> None:
        while not self.done.is_set():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
                    reply = get_over(sock)
            except OSError as err:
                self.failures.append(repr(err))
                continue
            if not reply.startswith(b"HTTP/1.0 200 "):
                self.failures.append(repr(reply[:40]))
                continue
            self.served += 1
            self.pids.add(json.loads(reply.split(b"\r\n\r\n", 1)[1])["pid"])

    def __enter__(self) -> ClientLoop:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.done.set()
        self.join(timeout=10)


def readies(service: Service) -> int:
    return service.read_log().count("ready: listening on")


def test_usr2_restarts_in_place_with_the_same_pid_and_socket_and_fails_no_client(tmp_path: Path) -> None:
    with notified(tmp_path) as (listener, svc):
        with ClientLoop(svc.port) as client:
            for restart in range(1, 4):
                write_config(svc.config, svc.log, message=f"v{restart}", port=svc.port)
                svc.signal(signal.SIGUSR2)
                wait_for(lambda n=restart + 1: readies(svc) == n)
                # The new image has read the config afresh, with no HUP.
                assert svc.health()["message"] == f"v{restart}"
        assert (client.failures, client.pids) == ([], {svc.process.pid})
        assert client.served > 0
        messages = [listener.recv(64) for _ in range(7)]
        assert messages == [b"READY=1"] + [b"RELOADING=1", b"READY=1"] * 3
        svc.signal(signal.SIGTERM)
        assert svc.process.wait(timeout=5) == 0


def test_usr2_with_a_broken_config_keeps_the_old_image_serving(service: Service) -> None:
    service.config.write_text("[service]\nport = not-a-number\n", encoding="utf-8")
    service.signal(signal.SIGUSR2)
    wait_for(lambda: "restart failed, serving on with the running image" in service.read_log())
    assert "port" in service.read_log().splitlines()[-1]
    assert service.health()["message"] == "ok"
    assert (readies(service), service.process.poll()) == (1, None)


def test_usr2_finishes_requests_first_ignores_a_second_usr2_and_yields_to_sigterm(service: Service) -> None:
    with socket.create_connection(("127.0.0.1", service.port), timeout=5) as busy:
        busy.sendall(b"GET /health HTTP/1.0\r\n")
        service.health()  # answered after busy's first line: the daemon has read it
        service.signal(signal.SIGUSR2)
        wait_for(lambda: "restarting in place once 1 connections are done" in service.read_log())
        service.signal(signal.SIGUSR2)
        wait_for(lambda: "USR2 ignored" in service.read_log())
        service.signal(signal.SIGTERM)
        wait_for(lambda: "stopping on SIGTERM" in service.read_log())
        busy.sendall(b"\r\n")
        reply = get_over(busy)
    assert reply.startswith(b"HTTP/1.0 200 OK\r\n")
    assert service.process.wait(timeout=5) == 0
    assert readies(service) == 1


def test_usr2_moves_to_the_address_that_the_config_now_names(service: Service) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    old = service.port
    write_config(service.config, service.log, port=port)
    service.signal(signal.SIGUSR2)
    wait_for(lambda: readies(service) == 2)
    service.port = port
    assert service.health()["pid"] == service.process.pid
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", old), timeout=5).close()


def test_usr2_to_an_address_in_use_serves_on_at_the_old_one(service: Service) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        write_config(service.config, service.log, port=taken.getsockname()[1])
        service.signal(signal.SIGUSR2)
        wait_for(lambda: readies(service) == 2)
    assert f"serving on 127.0.0.1:{service.port}: " in service.read_log()
    assert service.health()["pid"] == service.process.pid
