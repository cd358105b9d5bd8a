"""The daemon: runs in the foreground, serves /health, and leaves supervision to init.

Signals only set flags; the main loop acts on them between requests, so a request in
progress always completes:
- TERM (or INT): take no new client, answer those that have sent a request, exit 0;
- HUP: re-read the config file; a broken one is logged and the old one kept;
- USR1: reopen the log file (after logrotate has moved it).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
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

    def __init__(self, cfg: config.Config, sock: socket.socket | None) -> None:
        self.cfg = cfg
        self.inherited = sock is not None
        self.socket = sock if sock is not None else health.listener(cfg)

    @property
    def address(self) -> str:
        name = self.socket.getsockname()
        return f"{name[0]}:{name[1]}" if isinstance(name, tuple) else str(name)

    def rebind(self, cfg: config.Config) -> None:
        """Listen on the new address first, then let go of the old one."""
        if self.inherited:
            return
        port = self.socket.getsockname()[1]
        if cfg.listen == self.cfg.listen and cfg.port in (self.cfg.port, port):
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
        self.server = Server(cfg, inherited_socket())
        self.selector = selectors.DefaultSelector()
        self.connections: dict[int, health.Connection] = {}  # by fd, oldest first
        self.accepting = False
        self.stopping = False
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
        if not self.stopping:
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
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
            signal.signal(signum, self.handle_signal)
        self.selector.register(wake_read, selectors.EVENT_READ)
        self.listen(True)
        log.info("ready: listening on %s, pid %d", self.server.address, os.getpid())
        notify("READY=1")
        timeout = None
        while not self.stopping or self.connections:
            ping = self.feed_watchdog()
            if ping is not None:
                timeout = ping if timeout is None else min(timeout, ping)
            for key, events in self.selector.select(timeout):
                if key.data is None:
                    drain(wake_read)
                elif key.data is self.server:
                    self.accept()
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
