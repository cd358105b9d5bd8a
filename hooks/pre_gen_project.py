"""Validate every answer before anything is written.

cookiecutter runs this file as a hook, with the answers rendered in as JSON data.
local_extensions.py imports validate() from it to refuse bad answers even earlier,
before cookiecutter creates the project directory.
"""

from __future__ import annotations

import json
import keyword
import re
import sys

SLUG = re.compile(r"[a-z][a-z0-9-]*[a-z0-9]")
SLUG_MAX = 32
PACKAGE = re.compile(r"[a-z_][a-z0-9_]*")
USER = re.compile(r"[a-z_][a-z0-9_-]*")
USER_MAX = 32
VERSION = re.compile(r"[0-9]+(\.[0-9]+){0,3}")
EMAIL = re.compile(r"[A-Za-z0-9._+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
PORT_MIN, PORT_MAX = 1024, 65535
INIT_SYSTEMS = ("all", "sysv", "upstart", "systemd", "daemontools")
# Accounts and groups that Debian's base-passwd, adduser and common packages own.
RESERVED_USERS = frozenset(
    "root daemon bin sys sync games man lp mail news uucp proxy www-data backup list irc gnats "
    "nobody nogroup adm staff users operator sudo wheel shadow utmp tty disk kmem dialout "
    "systemd-journal systemd-network systemd-resolve systemd-timesync messagebus sshd _apt "
    "postfix ntp chrony syslog".split()
)
# Free text lands in shell comments, unit files, debian/control, the RPM spec (where %
# expands macros), YAML and roff: plain printable text of one line renders inert in all.
TEXT_FORBIDDEN = re.compile(r'[\x00-\x1f\x7f\u0080-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069%\\`$<>{}"]')
TEXT_RULE = (
    "one line of printable text; not allowed: control or bidi characters, and any of % \\ ` $ < > { } \""
)


def _text(name: str, value: str, max_len: int) -> list[str]:
    if not value.strip():
        return [f"{name} is empty; give {TEXT_RULE}"]
    if len(value) > max_len:
        return [f"{name} is {len(value)} characters long; at most {max_len} are allowed"]
    bad = TEXT_FORBIDDEN.search(value)
    if bad:
        return [f"{name} contains {bad.group()!r}; it must be {TEXT_RULE}"]
    if value != value.strip():
        return [f"{name} {value!r} starts or ends with spaces; trim them"]
    return []


def _pattern(name: str, value: str, pattern: re.Pattern[str], allowed: str) -> list[str]:
    if pattern.fullmatch(value):
        return []
    return [f"{name} {value!r} is not allowed; {allowed}"]


def validate(answers: dict[str, object]) -> list[str]:
    """Return one message per wrong answer: what is wrong and what is allowed."""
    text = {key: str(answers.get(key, "")) for key in answers}
    errors: list[str] = []
    errors += _text("project_name", text["project_name"], 64)
    errors += _text("description", text["description"], 80)
    errors += _text("maintainer_name", text["maintainer_name"], 64)

    slug = text["project_slug"]
    errors += _pattern(
        "project_slug",
        slug,
        SLUG,
        "use lowercase ASCII letters, digits and inner hyphens, starting with a letter "
        f"(pattern [a-z][a-z0-9-]*[a-z0-9]); it becomes the package, command and directory name",
    )
    if len(slug) > SLUG_MAX:
        errors.append(f"project_slug is {len(slug)} characters long; at most {SLUG_MAX} are allowed")

    package = text["package_name"]
    errors += _pattern(
        "package_name", package, PACKAGE, "use a Python identifier of lowercase letters, digits and _"
    )
    if keyword.iskeyword(package) or package in getattr(sys, "stdlib_module_names", ()):
        errors.append(f"package_name {package!r} is taken by Python itself; choose another name")

    user = text["service_user"]
    errors += _pattern(
        "service_user",
        user,
        USER,
        "adduser takes lowercase ASCII letters, digits, _ and -, starting with a letter or _",
    )
    if len(user) > USER_MAX:
        errors.append(f"service_user is {len(user)} characters long; at most {USER_MAX} are allowed")
    if user in RESERVED_USERS or user.startswith("systemd-"):
        errors.append(f"service_user {user!r} is a reserved system account; the service needs its own user")

    errors += _pattern(
        "version", text["version"], VERSION, "use 1 to 4 dot-separated numbers such as 0.1.0"
    )
    errors += _pattern(
        "maintainer_email", text["maintainer_email"], EMAIL, "give an address such as name@example.com"
    )

    port = text["port"]
    if not port.isascii() or not port.isdigit() or not PORT_MIN <= int(port) <= PORT_MAX:
        errors.append(
            f"port {port!r} is not allowed; give a number from {PORT_MIN} to {PORT_MAX} "
            "(lower ports need privileges the service does not have)"
        )

    if text["init_system"] not in INIT_SYSTEMS:
        errors.append(f"init_system {text['init_system']!r} is not allowed; choose one of {', '.join(INIT_SYSTEMS)}")
    return errors


def main() -> int:
    answers = json.loads(r"""{{ cookiecutter | tojson }}""")
    errors = validate(answers)
    for error in errors:
        print(f"ERROR: {error}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
