"""The service's configuration file: INI, one [service] section."""

from __future__ import annotations

import configparser
import ipaddress
import os
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
        port = section.getint("port", fallback={{ cookiecutter.port }})
    except ValueError as err:
        raise ConfigError(f"{path}: port: {err}") from err
    if not 0 <= port <= 65535:
        raise ConfigError(f"{path}: port {port} is out of range 0-65535")
    listen = section.get("listen", "127.0.0.1")
    try:
        ipaddress.ip_address(listen)
    except ValueError:
        raise ConfigError(f"{path}: listen {listen!r} is not an IP address, such as 127.0.0.1") from None
    log_file = section.get("log_file", "-")
    if log_file != "-" and not os.path.isdir(os.path.dirname(os.path.abspath(log_file))):
        raise ConfigError(f"{path}: log_file {log_file!r}: its directory does not exist")
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
