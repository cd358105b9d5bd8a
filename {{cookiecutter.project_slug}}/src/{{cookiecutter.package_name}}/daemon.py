"""The daemon: runs in the foreground, serves /health, and leaves supervision to init.

Signals only set flags; the main loop acts on them between requests, so a request in
progress always completes:
- TERM (or INT): take no new client, answer those that have sent a request, exit 0;
- HUP: re-read the config file; a broken one is logged and the old one kept;
- USR1: reopen the log file (after logrotate has moved it);
- USR2: restart in place (see Daemon.reexec): the same pid and listening socket, the
  program and config as they are on disk now.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import ipaddress
import logging
import os
import resource
import selectors
import signal
import socket
import sys
import time

from . import NAME, __version__, config, health

DESCRIPTION = {{ cookiecutter.description | python }}
log = logging.getLogger(__package__)


def connection_cap(most: int = 512) -> int:
    """Open client connections at most: fewer than the open-file limit leaves room for, so
    that accept never fails for want of a descriptor (a failing accept would spin the loop)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return most if soft == resource.RLIM_INFINITY else max(1, min(most, soft - 32))


MAX_CONNECTIONS = connection_cap()
SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)
# LISTEN_FDNAMES of the socket that a restart in place hands to the new image: ours to
# rebind, unlike systemd's.
HANDOVER = "reexec"
# Restarts in place of this process so far, in its environment: /proc/PID/environ shows the
# init script that one has happened.
GENERATION = "REEXEC_GENERATION"
# On stop, how long a client that has connected but sent nothing yet may take to send its
# request: a restart under load must not drop the one accepted just before the signal.
STOP_GRACE = 0.5


def notify(state: str) -> None:
    """Tell systemd (or start-stop-daemon --notify-await) about our state, if it listens."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    # Best effort, like sd_notify(3): start-stop-daemon --notify-await stops listening
    # once it has READY=1.
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        try:
            sock.sendto(state.encode(), address)
        except OSError as err:
            log.debug("cannot notify %s: %s", address, err)


def watchdog_interval() -> float | None:
    """Seconds between WATCHDOG=1 pings: half of systemd's WatchdogSec= (WATCHDOG_USEC), when
    the watchdog watches this process; None when no watchdog is set."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", str(os.getpid()))
    if not usec.isdigit() or int(usec) == 0 or pid != str(os.getpid()):
        return None
    return int(usec) / 2e6


def inherited_socket() -> socket.socket | None:
    """The listening socket that systemd passed (LISTEN_FDS), so restarts refuse nothing."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()) or int(os.environ.get("LISTEN_FDS", "0")) < 1:
        return None
    for variable in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(variable, None)
    sock = socket.socket(fileno=3)
    if sock.type != socket.SOCK_STREAM:
        raise OSError(f"the socket that systemd passed is not a stream socket: {sock.type!r}")
    sock.setblocking(False)
    return sock


def own_command() -> tuple[str, list[str]]:
    """The program and the arguments that started this process, to run them again. A
    launcher script runs as itself: its #! line gives the interpreter and its options, and
    the kernel names the process after it, as start-stop-daemon --name expects."""
    if os.path.isfile(sys.argv[0]) and os.access(sys.argv[0], os.X_OK):
        return sys.argv[0], sys.argv
    # sys.orig_argv is 3.10+; the daemon runs on 3.9 too.
    with open("/proc/self/cmdline", "rb") as handle:
        return sys.executable, [os.fsdecode(arg) for arg in handle.read().split(b"\0")[:-1]]


class ImageCheck:
    """`--check-config` of the program that a restart would run, in a child: the loop
    serves on meanwhile, and learns of its end through a pidfd (it selects as one)."""

    def __init__(self, program: str, argv: list[str]) -> None:
        self.output, write = os.pipe2(os.O_CLOEXEC)
        try:
            actions = [(os.POSIX_SPAWN_DUP2, write, 2)]
            self.pid = os.posix_spawn(program, [*argv, "--check-config"], os.environ, file_actions=actions)
        except OSError:
            os.close(self.output)
            raise
        finally:
            os.close(write)
        self.pidfd = os.pidfd_open(self.pid)

    def fileno(self) -> int:
        return self.pidfd

    def error(self) -> str:
        """Once the child has exited: why the check failed, or "" when it passed."""
        status = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        output = os.read(self.output, 4096).decode(errors="replace").strip()
        os.close(self.output)
        os.close(self.pidfd)
        return "" if status == 0 else output or f"exit status {status}"


def drain(fd: int) -> None:
    """Empty the signal wake-up pipe (non-blocking): the flags say which signals came."""
    with contextlib.suppress(BlockingIOError):
        while os.read(fd, 4096):
            pass


class Throttle:
    """True at most once a minute: a failure that recurs on every request is reported
    when it starts, then once a minute while it lasts."""

    def __init__(self, interval: float = 60.0) -> None:
        self.interval = interval
        self.last = -interval

    def __call__(self) -> bool:
        now = time.monotonic()
        if now - self.last < self.interval:
            return False
        self.last = now
        return True


class ReopeningFileHandler(logging.FileHandler):
    """Reopens its file before the next line once logrotate has put a new one in its
    place, so that rotation loses nothing even where no USR1 can reach us (daemontools).

    Between logrotate's rename and its `create` there is no file: lines go on into the
    moved one. Making the file there ourselves would make logrotate's create fail and
    set our file aside as *.backup, lines and all. A deleted file is made anew. A new
    file that cannot be opened is reported, and lines go on into the old one.

    A log path that fails (EACCES, ELOOP, ENOSPC, its directory gone) never stops the
    service: one line on stderr, throttled, instead of a traceback per request.

    logging.handlers.WatchedFileHandler reopens in both cases, and importing that
    module costs the daemon a tenth of its memory.
    """

    def __init__(self, filename: str) -> None:
        super().__init__(filename, encoding="utf-8")
        self.throttle = Throttle()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if self.stream is not None and self._replaced(self.stream.fileno()):
                stream = self._open()
                old, self.stream = self.stream, stream
                old.close()
        except OSError:
            self.handleError(record)
        super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        if self.throttle():
            with contextlib.suppress(OSError):
                error = sys.exc_info()[1]
                print(f"{NAME}: cannot write to {self.baseFilename}: {error}", file=sys.stderr, flush=True)

    def _replaced(self, fd: int) -> bool:
        current = os.fstat(fd)
        try:
            return os.stat(self.baseFilename).st_ino != current.st_ino
        except FileNotFoundError:
            return current.st_nlink == 0


def open_log(cfg: config.Config) -> logging.Handler:
    """The handler for cfg's log file; raises OSError when it cannot be opened."""
    handler: logging.Handler
    if cfg.log_file == "-":
        handler = logging.StreamHandler(sys.stderr)
    else:
        handler = ReopeningFileHandler(cfg.log_file)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    return handler


def use_log(handler: logging.Handler, cfg: config.Config) -> None:
    """Log to handler from now on, at cfg's level; the old file is closed only now."""
    for old in list(log.handlers):
        log.removeHandler(old)
        with contextlib.suppress(OSError):  # a full disk fails the flush: nothing to save
            old.close()
    log.addHandler(handler)
    log.setLevel(cfg.log_level.upper())
    log.propagate = False


def peer_name(address: object) -> str:
    """An IP peer's address; a Unix socket's peer has none, or a path."""
    return str(address[0]) if isinstance(address, tuple) else str(address or "local")


class Server:
    """The listening socket of the health endpoint, and the configuration it serves."""

    def __init__(self, cfg: config.Config, sock: socket.socket | None, handed_over: bool = False) -> None:
        self.cfg = cfg
        self.inherited = sock is not None and not handed_over
        self.socket = sock if sock is not None else health.listener(cfg)
        # No child of ours may hold the port; a restart in place passes it on by itself.
        self.socket.set_inheritable(False)
        if handed_over:
            try:
                self.rebind(cfg)
            except OSError as err:  # the old image has let go of it: keep serving there
                where = f"{cfg.listen} port {cfg.port}"
                log.error("cannot listen on %s, serving on %s: %s", where, self.address, err)

    @property
    def address(self) -> str:
        name = self.socket.getsockname()
        return f"{name[0]}:{name[1]}" if isinstance(name, tuple) else str(name)

    def rebind(self, cfg: config.Config) -> None:
        """Listen on the new address first, then let go of the old one."""
        if self.inherited:
            return
        host, port = self.socket.getsockname()[:2]
        if ipaddress.ip_address(host) == ipaddress.ip_address(cfg.listen) and cfg.port in (0, port):
            return
        new = health.listener(cfg)
        self.socket.close()
        self.socket = new


class Daemon:
    """One selectors loop serves every client: each connection is a non-blocking socket
    with a deadline, so no client, idle or slow, delays another. Beyond MAX_CONNECTIONS
    open at once, new clients wait in the listening socket's backlog."""

    def __init__(self, config_path: str, cfg: config.Config) -> None:
        self.config_path = config_path
        self.pending: set[int] = set()
        handed_over = os.environ.get("LISTEN_FDNAMES") == HANDOVER
        self.server = Server(cfg, inherited_socket(), handed_over)
        self.selector = selectors.DefaultSelector()
        self.connections: dict[int, health.Connection] = {}  # by fd, oldest first
        self.accepting = False
        self.stopping = False
        self.check: ImageCheck | None = None
        self.draining = False  # for a restart in place
        self.at_cap = Throttle()
        self.watchdog = watchdog_interval()
        self.next_ping = 0.0

    def handle_signal(self, signum: int, _frame: object) -> None:
        self.pending.add(signum)

    def listen(self, accepting: bool) -> None:
        if accepting != self.accepting:
            if accepting:
                self.selector.register(self.server.socket, selectors.EVENT_READ, self.server)
            else:
                self.selector.unregister(self.server.socket)
            self.accepting = accepting

    def accept(self) -> None:
        while len(self.connections) < MAX_CONNECTIONS:
            try:
                sock, address = self.server.socket.accept()
            except BlockingIOError:
                return
            except OSError as err:
                log.warning("accept: %s", err)
                return
            conn = health.Connection(sock, peer_name(address), time.monotonic() + health.TIMEOUT)
            self.connections[sock.fileno()] = conn
            self.selector.register(sock, selectors.EVENT_READ, conn)
        self.listen(False)
        if self.at_cap():
            log.warning("%d connections open, the most allowed: new ones wait", MAX_CONNECTIONS)

    def serve(self, conn: health.Connection, events: int) -> None:
        try:
            if events & selectors.EVENT_READ and not conn.receive(self.server.cfg):
                return
            # Most replies fit in the socket's buffer: send at once, wait only for the rest.
            if not conn.send():
                self.selector.modify(conn.socket, selectors.EVENT_WRITE, conn)
                return
        except OSError as err:
            self.close(conn, str(err))
            return
        self.close(conn)

    def close(self, conn: health.Connection, error: str = "") -> None:
        self.selector.unregister(conn.socket)
        del self.connections[conn.socket.fileno()]
        conn.socket.close()
        if error:
            log.info("%s: %s", conn.peer, error)
        else:
            log.info("%s %r %d", conn.peer, conn.request_line, conn.status)
        if not (self.stopping or self.draining):
            self.listen(True)

    def expire(self) -> float | None:
        """Close the connections past their deadline; seconds until the next deadline."""
        now = time.monotonic()
        for conn in list(self.connections.values()):
            if conn.deadline > now:
                return conn.deadline - now
            self.close(conn, f"request not complete within {health.TIMEOUT} s")
        return None

    def stop(self, signum: int) -> None:
        """Take no new client, finish the requests received; a client that has sent nothing
        yet gets STOP_GRACE s for its request, which may be on its way (accepted just now)."""
        notify("STOPPING=1")
        log.info("stopping on %s", signal.Signals(signum).name)
        self.stopping = True
        self.draining = False
        self.listen(False)
        self.server.socket.close()
        grace = time.monotonic() + STOP_GRACE
        for conn in self.connections.values():
            if not conn.received:
                conn.deadline = min(conn.deadline, grace)
        # expire() takes the connections in the order of their deadlines.
        self.connections = dict(sorted(self.connections.items(), key=lambda item: item[1].deadline))

    def reload(self) -> None:
        """Apply the config file again, all of it or, when any part fails, none."""
        try:
            cfg = config.load(self.config_path)
            handler = open_log(cfg)
        except (config.ConfigError, OSError) as err:
            log.error("reload failed, keeping the running configuration: %s", err)
            return
        accepting = self.accepting
        self.listen(False)
        try:
            self.server.rebind(cfg)
        except OSError as err:
            handler.close()
            log.error("reload failed, keeping the running configuration: %s", err)
            return
        finally:
            self.listen(accepting)
        self.server.cfg = cfg
        use_log(handler, cfg)
        log.info("reloaded %s", self.config_path)

    def reopen_log(self) -> None:
        try:
            handler = open_log(self.server.cfg)
        except OSError as err:
            log.error("cannot reopen the log, writing on to the old file: %s", err)
            return
        use_log(handler, self.server.cfg)
        log.info("log file reopened")

    def handle_signals(self) -> None:
        while self.pending:
            signum = min(self.pending)
            self.pending.discard(signum)
            if signum in (signal.SIGTERM, signal.SIGINT):
                if not self.stopping:
                    self.stop(signum)
            elif signum == signal.SIGHUP:
                self.reload()
            elif signum == signal.SIGUSR1:
                self.reopen_log()
            elif signum == signal.SIGUSR2:
                self.restart()

    def restart(self) -> None:
        """Check the program and config on disk first, in a child: a broken upgrade must
        not take the service down. The restart goes on in checked() and reexec()."""
        if self.stopping or self.check is not None or self.draining:
            log.info("restart in place already under way, or stopping: USR2 ignored")
            return
        program, argv = own_command()
        try:
            self.check = ImageCheck(program, argv)
        except OSError as err:
            log.error("restart failed, serving on with the running image: %s: %s", program, err)
            return
        self.selector.register(self.check, selectors.EVENT_READ, self.check)

    def checked(self, check: ImageCheck) -> None:
        """Take no new client, and once the others are served, reexec(); the kernel queues
        new clients in the listening socket's backlog meanwhile."""
        self.check = None
        self.selector.unregister(check)
        error = check.error()
        if self.stopping:
            return
        if error:
            log.error("restart failed, serving on with the running image: %s", error)
            return
        log.info("restarting in place once %d connections are done", len(self.connections))
        self.draining = True
        self.listen(False)

    def reexec(self) -> None:
        """Run the program again in this process: the same pid, so the pidfile and the
        supervisor see no change, and the same listening socket, passed as LISTEN_FDS."""
        program, argv = own_command()
        env = dict(os.environ, LISTEN_FDS="1", LISTEN_PID=str(os.getpid()))
        env.pop("LISTEN_FDNAMES", None)
        if not self.server.inherited:
            env["LISTEN_FDNAMES"] = HANDOVER
        env[GENERATION] = str(int(os.environ.get(GENERATION, "0")) + 1)
        log.info("restarting in place: %s", program)
        notify("RELOADING=1")
        sys.stderr.flush()
        # Until the new image handles them: USR2 is ignored, the others wait, blocked.
        signal.signal(signal.SIGUSR2, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_BLOCK, set(SIGNALS) - {signal.SIGUSR2})
        os.dup2(self.server.socket.fileno(), 3)
        os.set_inheritable(3, True)
        try:
            os.execve(program, argv, env)
        except OSError as err:  # what fd 3 was is gone: start afresh, through the supervisor
            print(f"{NAME}: cannot restart in place: {program}: {err}", file=sys.stderr, flush=True)
            raise SystemExit(1) from None

    def feed_watchdog(self) -> float | None:
        """WATCHDOG=1 when one is due, from the main loop itself, so that systemd restarts a loop
        that hangs; returns the seconds until the next one (None: no watchdog)."""
        if self.watchdog is None:
            return None
        now = time.monotonic()
        if now >= self.next_ping:
            notify("WATCHDOG=1")
            self.next_ping = now + self.watchdog
        return self.next_ping - now

    def run(self) -> int:
        wake_read, wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_write)
        for signum in SIGNALS:
            signal.signal(signum, self.handle_signal)
        # Blocked by the image before us, if it restarted in place: they come in now.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
        self.selector.register(wake_read, selectors.EVENT_READ)
        self.listen(True)
        log.info("ready: listening on %s, pid %d", self.server.address, os.getpid())
        notify("READY=1")
        timeout = None
        while not self.stopping or self.connections:
            if self.draining and not self.connections:
                self.reexec()
            ping = self.feed_watchdog()
            if ping is not None:
                timeout = ping if timeout is None else min(timeout, ping)
            for key, events in self.selector.select(timeout):
                if key.data is None:
                    drain(wake_read)
                elif key.data is self.server:
                    self.accept()
                elif isinstance(key.data, ImageCheck):
                    self.checked(key.data)
                else:
                    self.serve(key.data, events)
            self.handle_signals()
            timeout = self.expire()
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=NAME, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "-c", "--config", default=config.DEFAULT_PATH, help="configuration file (default: %(default)s)"
    )
    parser.add_argument("--check-config", action="store_true", help="check the configuration file and exit")
    parser.add_argument(
        "--print-listen",
        action="store_true",
        help="print the configured address as systemd's ListenStream= takes it, and exit",
    )
    parser.add_argument("--version", action="version", version=f"{NAME} {__version__}")
    args = parser.parse_args(argv)
    try:
        if args.print_listen:
            # For the socket unit's generator, which runs as root at boot: parse only.
            cfg = config.parse(args.config)
            print(f"[{cfg.listen}]:{cfg.port}" if ":" in cfg.listen else f"{cfg.listen}:{cfg.port}")
            return 0
        cfg = config.load(args.config)
    except config.ConfigError as err:
        print(f"{NAME}: {err}", file=sys.stderr)
        return 1
    if args.check_config:
        return 0
    try:
        use_log(open_log(cfg), cfg)
        daemon = Daemon(args.config, cfg)
    except OSError as err:
        print(f"{NAME}: cannot start: {err}", file=sys.stderr)
        # start-stop-daemon --notify-await gives up now; a refused socket type has no errno.
        notify(f"ERRNO={err.errno or errno.EINVAL}")
        return 1
    return daemon.run()
