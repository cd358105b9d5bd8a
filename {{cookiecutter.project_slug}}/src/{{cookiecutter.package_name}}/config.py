"""The service's configuration file: INI, one [service] section."""

from __future__ import annotations

import configparser
import errno
import ipaddress
import os
import pwd
import socket
from typing import NamedTuple

DEFAULT_PATH = "/etc/{{ cookiecutter.project_slug }}/{{ cookiecutter.project_slug }}.conf"
LOG_LEVELS = ("debug", "info", "warning", "error")


class ConfigError(Exception):
    """The file is missing, unreadable or has a bad value; the message says which."""


class Config(NamedTuple):
    listen: str
    port: int
    log_file: str
    log_level: str
    message: str


def load(path: str) -> Config:
    """The config in path, checked as far as a start can be without starting, as the user
    we run as: --check-config, start and reload all call this, so that a config that the
    check passes is one the daemon can start with."""
    cfg = parse(path)
    check_listen(path, cfg.listen, cfg.port)
    check_log_file(path, cfg.log_file)
    return cfg


def parse(path: str) -> Config:
    """The config in path, each value checked on its own, touching nothing else."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle)
    except (OSError, UnicodeDecodeError, configparser.Error) as err:
        raise ConfigError(f"{path}: {err}") from err
    if not parser.has_section("service"):
        raise ConfigError(f"{path}: no [service] section")
    section = parser["service"]
    unknown = set(section) - {"listen", "port", "log_file", "log_level", "message"}
    if unknown:
        raise ConfigError(f"{path}: unknown keys: {', '.join(sorted(unknown))}")
    try:
        port = int(required(path, section, "port", "a TCP port, 0-65535"))
    except ValueError as err:
        raise ConfigError(f"{path}: port: {err}") from err
    if not 0 <= port <= 65535:
        raise ConfigError(f"{path}: port {port} is out of range 0-65535")
    listen = required(path, section, "listen", "an IP address, such as 127.0.0.1")
    try:
        ipaddress.ip_address(listen)
    except ValueError:
        raise ConfigError(f"{path}: listen {listen!r} is not an IP address, such as 127.0.0.1") from None
    log_file = section.get("log_file", "-")
    log_level = section.get("log_level", "info").lower()
    if log_level not in LOG_LEVELS:
        raise ConfigError(f"{path}: log_level must be one of {', '.join(LOG_LEVELS)}")
    return Config(
        listen=listen,
        port=port,
        log_file=log_file,
        log_level=log_level,
        message=section.get("message", "ok"),
    )


def required(path: str, section: configparser.SectionProxy, key: str, allowed: str) -> str:
    """No default: this file is the one place that says where the service listens."""
    if key not in section:
        raise ConfigError(f"{path}: [service] has no {key}; give {allowed}")
    return section[key]


def check_listen(path: str, listen: str, port: int) -> None:
    """Bind (without listening) as a start would; a port in use may be our own running daemon's."""
    family = socket.AF_INET6 if ":" in listen else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((listen, port))
        except OSError as err:
            if err.errno != errno.EADDRINUSE:
                raise ConfigError(f"{path}: cannot listen on {listen} port {port}: {err.strerror}") from None


def check_log_file(path: str, log_file: str) -> None:
    """The log file must be one we can append to, or create; the check creates nothing, so that
    a check run as root leaves no root-owned file that the service user could not open."""
    if log_file == "-":
        return
    allowed = "give the absolute path of a file, or - for standard error"
    if not log_file:
        raise ConfigError(f"{path}: log_file is empty; {allowed}")
    problem = f"{path}: log_file {log_file!r}"
    if not os.path.isabs(log_file):
        raise ConfigError(f"{problem} is not an absolute path; {allowed}")
    if os.path.isdir(log_file):
        raise ConfigError(f"{problem} is a directory; {allowed}")
    directory = os.path.dirname(log_file)
    try:
        os.stat(directory + "/")  # the "/" makes a file there fail too, with ENOTDIR
    except FileNotFoundError:
        raise ConfigError(f"{problem}: its directory does not exist") from None
    except OSError as err:
        raise ConfigError(f"{problem}: user {user()} cannot reach {directory}: {err.strerror}") from None
    if os.path.lexists(log_file):
        if not os.access(log_file, os.W_OK):
            raise ConfigError(f"{problem}: user {user()} cannot write it")
    elif not os.access(directory, os.W_OK | os.X_OK):
        raise ConfigError(f"{problem}: user {user()} cannot create files in {directory}")


def user() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())
