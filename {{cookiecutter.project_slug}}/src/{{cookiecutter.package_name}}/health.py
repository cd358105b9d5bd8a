"""The health endpoint: just enough HTTP/1.0 for `GET /health`.

http.server would cost the daemon a third of its memory (it imports the email
package); one short request per connection needs none of it.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time

from . import config

log = logging.getLogger(__package__)
MAX_REQUEST = 8192
TIMEOUT = 5.0
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}


def listener(cfg: config.Config) -> socket.socket:
    family = socket.AF_INET6 if ":" in cfg.listen else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((cfg.listen, cfg.port))
        sock.listen(64)
    except OSError:
        sock.close()
        raise
    return sock


def read_request_line(conn: socket.socket) -> str:
    """The request's first line; the whole request must arrive within TIMEOUT, so that
    a client sending a byte at a time holds the daemon up no longer than that."""
    deadline = time.monotonic() + TIMEOUT
    data = b""
    while b"\n\r\n" not in data and b"\n\n" not in data and len(data) < MAX_REQUEST:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"request not complete within {TIMEOUT} s")
        conn.settimeout(left)
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.split(b"\n", 1)[0].decode("latin-1").strip()


def respond(request_line: str, cfg: config.Config) -> tuple[int, dict[str, object]]:
    parts = request_line.split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        return 400, {"error": "bad request"}
    method, target = parts[0], parts[1]
    if target.split("?", 1)[0] != "/health":
        return 404, {"error": "not found"}
    if method not in ("GET", "HEAD"):
        return 405, {"error": "method not allowed"}
    return 200, {"status": "ok", "message": cfg.message, "pid": os.getpid()}


def serve(conn: socket.socket, peer: str, cfg: config.Config) -> None:
    """Answer one request on conn, log it, close conn."""
    with conn:
        try:
            request_line = read_request_line(conn)
            status, document = respond(request_line, cfg)
            body = json.dumps(document).encode()
            head = (
                f"HTTP/1.0 {status} {REASONS[status]}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            conn.sendall(head.encode() + (b"" if request_line.startswith("HEAD ") else body))
        except OSError as err:
            log.info("%s: %s", peer, err)
            return
    log.info("%s %r %d", peer, request_line, status)
