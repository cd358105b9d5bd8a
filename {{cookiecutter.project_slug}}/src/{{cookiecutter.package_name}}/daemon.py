"""The daemon: runs in the foreground, serves /health, and leaves supervision to init.

Signals only set flags; the main loop acts on them between requests, so a request in
progress always completes:
- TERM (or INT): stop and exit 0;
- HUP: re-read the config file; a broken one is logged and the old one kept;
- USR1: reopen the log file (after logrotate has moved it).
"""

from __future__ import annotations

import argparse
import logging
import os
import selectors
import signal
import socket
import sys

from . import config, health

NAME = "{{ cookiecutter.project_slug }}"
DESCRIPTION = {{ cookiecutter.description | python }}
log = logging.getLogger(__package__)


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


def inherited_socket() -> socket.socket | None:
    """The listening socket that systemd passed (LISTEN_FDS), so restarts refuse nothing."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()) or int(os.environ.get("LISTEN_FDS", "0")) < 1:
        return None
    for variable in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(variable, None)
    return socket.socket(fileno=3)


class ReopeningFileHandler(logging.FileHandler):
    """Reopens its file before the next line once logrotate has put a new one in its
    place, so that rotation loses nothing even where no USR1 can reach us (daemontools).

    Between logrotate's rename and its `create` there is no file: lines go on into the
    moved one. Making the file there ourselves would make logrotate's create fail and
    set our file aside as *.backup, lines and all. A deleted file is made anew. A new
    file that cannot be opened is reported, and lines go on into the old one.

    logging.handlers.WatchedFileHandler reopens in both cases, and importing that
    module costs the daemon a tenth of its memory.
    """

    def emit(self, record: logging.LogRecord) -> None:
        if self.stream is not None and self._replaced(self.stream.fileno()):
            try:
                stream = self._open()
            except OSError:
                self.handleError(record)
            else:
                self.stream.close()
                self.stream = stream
        super().emit(record)

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
        handler = ReopeningFileHandler(cfg.log_file, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    return handler


def use_log(handler: logging.Handler, cfg: config.Config) -> None:
    """Log to handler from now on, at cfg's level; the old file is closed only now."""
    for old in list(log.handlers):
        log.removeHandler(old)
        old.close()
    log.addHandler(handler)
    log.setLevel(cfg.log_level.upper())
    log.propagate = False


class Server:
    """The listening socket of the health endpoint, and the configuration it serves."""

    def __init__(self, cfg: config.Config, sock: socket.socket | None) -> None:
        self.cfg = cfg
        self.inherited = sock is not None
        self.socket = sock if sock is not None else health.listener(cfg)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.socket.getsockname()[:2]
        return host, port

    def rebind(self, cfg: config.Config) -> None:
        """Listen on the new address first, then let go of the old one."""
        if self.inherited or (cfg.listen == self.cfg.listen and cfg.port in (self.cfg.port, self.address[1])):
            return
        new = health.listener(cfg)
        self.socket.close()
        self.socket = new

    def accept(self) -> None:
        try:
            conn, peer = self.socket.accept()
        except OSError as err:
            log.warning("accept: %s", err)
            return
        health.serve(conn, str(peer[0]), self.cfg)


class Daemon:
    def __init__(self, config_path: str, cfg: config.Config) -> None:
        self.config_path = config_path
        self.pending: set[int] = set()
        self.server = Server(cfg, inherited_socket())

    def handle_signal(self, signum: int, _frame: object) -> None:
        self.pending.add(signum)

    def reload(self) -> None:
        """Apply the config file again, all of it or, when any part fails, none."""
        try:
            cfg = config.load(self.config_path)
            handler = open_log(cfg)
        except (config.ConfigError, OSError) as err:
            log.error("reload failed, keeping the running configuration: %s", err)
            return
        try:
            self.server.rebind(cfg)
        except OSError as err:
            handler.close()
            log.error("reload failed, keeping the running configuration: %s", err)
            return
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

    def run(self) -> int:
        wake_read, wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_write)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
            signal.signal(signum, self.handle_signal)
        selector = selectors.DefaultSelector()
        selector.register(wake_read, selectors.EVENT_READ)
        selector.register(self.server.socket, selectors.EVENT_READ)
        host, port = self.server.address
        log.info("ready: listening on %s:%s, pid %d", host, port, os.getpid())
        notify("READY=1")
        while True:
            for key, _ in selector.select():
                if key.fd == wake_read:
                    while os.read(wake_read, 512) == 512:
                        pass
                else:
                    self.server.accept()
            while self.pending:
                signum = min(self.pending)
                self.pending.discard(signum)
                if signum in (signal.SIGTERM, signal.SIGINT):
                    notify("STOPPING=1")
                    log.info("stopping on %s", signal.Signals(signum).name)
                    self.server.socket.close()
                    return 0
                if signum == signal.SIGHUP:
                    old = self.server.socket
                    self.reload()
                    if self.server.socket is not old:
                        selector.unregister(old)
                        selector.register(self.server.socket, selectors.EVENT_READ)
                elif signum == signal.SIGUSR1:
                    self.reopen_log()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=NAME, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "-c", "--config", default=config.DEFAULT_PATH, help="configuration file (default: %(default)s)"
    )
    parser.add_argument("--check-config", action="store_true", help="check the configuration file and exit")
    args = parser.parse_args(argv)
    try:
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
        return 1
    return daemon.run()
