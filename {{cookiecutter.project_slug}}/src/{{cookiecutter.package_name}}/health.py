"""The HTTP endpoints: just enough HTTP/1.0 for `GET /health` and the application's own.

http.server would cost the daemon a third of its memory (it imports the email
package); one short request per connection needs none of it.
"""

from __future__ import annotations

import json
import os
import socket

from . import NAME, __version__, config

MAX_REQUEST = 8192
# The whole exchange, request and reply, must be over within TIMEOUT seconds.
TIMEOUT = 5.0
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}


def listener(cfg: config.Config) -> socket.socket:
    """A non-blocking socket listening on cfg's address."""
    family = socket.AF_INET6 if ":" in cfg.listen else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((cfg.listen, cfg.port))
        # Room for a burst of clients while all our connections are in use.
        sock.listen(socket.SOMAXCONN)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


Document = dict[str, object]


def health(cfg: config.Config) -> tuple[int, Document]:
    return 200, {
        "status": "ok",
        "message": cfg.message,
        "pid": os.getpid(),
        "name": NAME,
        "version": __version__,
    }


def hello(cfg: config.Config) -> tuple[int, Document]:
    """The example of an application endpoint (README.md, "Working on the code")."""
    return 200, {"hello": cfg.message}


# The endpoints: a path, and the function that answers GET (and HEAD) on it.
ROUTES = {"/health": health, "/hello": hello}


def respond(request_line: str, cfg: config.Config) -> tuple[int, Document]:
    parts = request_line.split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        return 400, {"error": "bad request"}
    method, target = parts[0], parts[1]
    route = ROUTES.get(target.split("?", 1)[0])
    if route is None:
        return 404, {"error": "not found"}
    if method not in ("GET", "HEAD"):
        return 405, {"error": "method not allowed"}
    return route(cfg)


def reply(request_line: str, cfg: config.Config) -> tuple[int, bytes]:
    status, document = respond(request_line, cfg)
    body = json.dumps(document).encode()
    head = (
        f"HTTP/1.0 {status} {REASONS[status]}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return status, head.encode() + (b"" if request_line.startswith("HEAD ") else body)


class Connection:
    """One client on a non-blocking socket: its request as it arrives, then the reply
    as the client takes it. Each call does what the socket allows without waiting."""

    def __init__(self, sock: socket.socket, peer: str, deadline: float) -> None:
        sock.setblocking(False)
        self.socket = sock
        self.peer = peer
        self.deadline = deadline
        self.received = b""
        self.outgoing = b""
        self.request_line = ""
        self.status = 0

    def receive(self, cfg: config.Config) -> bool:
        """Read what has arrived; True once the request is complete and the reply is ready."""
        try:
            chunk = self.socket.recv(MAX_REQUEST - len(self.received))
        except BlockingIOError:  # woken for nothing
            return False
        self.received += chunk
        data = self.received
        if chunk and b"\n\r\n" not in data and b"\n\n" not in data and len(data) < MAX_REQUEST:
            return False
        self.request_line = data.split(b"\n", 1)[0].decode("latin-1").strip()
        self.status, self.outgoing = reply(self.request_line, cfg)
        return True

    def send(self) -> bool:
        """Send what the socket takes; True once the whole reply has gone."""
        try:
            self.outgoing = self.outgoing[self.socket.send(self.outgoing) :]
        except BlockingIOError:  # its buffer is full: wait until it takes more
            pass
        return not self.outgoing
