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
SLUG_MAX = 31  # it is also the service user's name by default
PACKAGE = re.compile(r"[a-z_][a-z0-9_]*")
USER = re.compile(r"[a-z_][a-z0-9_-]*")
# systemd warns about longer User= names (its strict rule, utmp's 32 bytes with the NUL).
USER_MAX = 31
VERSION = re.compile(r"[0-9]+(\.[0-9]+){0,3}")
EMAIL = re.compile(r"[A-Za-z0-9._+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
PORT_MIN, PORT_MAX = 1024, 65535
INIT_SYSTEMS = ("all", "sysv", "upstart", "systemd", "daemontools")
# Accounts and groups that Debian's base-passwd, adduser and common packages own.
RESERVED_USERS = frozenset(
    {
        "root",
        "daemon",
        "bin",
        "sys",
        "sync",
        "games",
        "man",
        "lp",
        "mail",
        "news",
        "uucp",
        "proxy",
        "www-data",
        "backup",
        "list",
        "irc",
        "gnats",
        "nobody",
        "nogroup",
        "adm",
        "staff",
        "users",
        "operator",
        "sudo",
        "wheel",
        "shadow",
        "utmp",
        "tty",
        "disk",
        "kmem",
        "dialout",
        "systemd-journal",
        "systemd-network",
        "systemd-resolve",
        "systemd-timesync",
        "messagebus",
        "sshd",
        "_apt",
        "postfix",
        "ntp",
        "chrony",
        "syslog",
    }
)
# Free text lands in shell comments, unit files, debian/control, the RPM spec (where %
# expands macros), YAML and roff: plain printable text of one line renders inert in all.
TEXT_FORBIDDEN = re.compile(r'[\x00-\x1f\x7f\u0080-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069%\\`$<>{}"]')
TEXT_RULE = (
    'one line of printable text; not allowed: control or bidi characters, and any of % \\ ` $ < > { } "'
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


def _maintainer_name(value: str) -> list[str]:
    errors = _text("maintainer_name", value, 64)
    if not errors and (value == "root" or re.search(r"\bdebian\s+qa\b", value, re.IGNORECASE)):
        errors.append(
            f"maintainer_name {value!r} is a name that lintian keeps for root or the Debian QA Group; "
            "give a person's or a team's name"
        )
    return errors


def _debian_synopsis(description: str) -> str:
    """Debian's one-line synopsis, as debian/control derives it: no leading article, no full stop."""
    words = description.rstrip(".").split(" ", 1)
    return words[1] if len(words) == 2 and words[0].lower() in ("a", "an", "the") else " ".join(words)


def _synopsis(description: str, slug: str) -> list[str]:
    """What lintian and rpmlint require of the summary line that the description becomes."""
    line = _debian_synopsis(description).strip()
    fuzzy = re.sub(r"\s+", " ", re.sub(r"[-_/\\]", " ", line.lower()))
    if not re.search(r"\s", line):
        problem = "needs at least two words"
    elif re.match(r"(an?|the)\s", line, re.IGNORECASE):
        problem = "must not start with an article"
    elif re.match(rf"{re.escape(slug)}\b", line, re.IGNORECASE) or fuzzy == slug.replace("-", " "):
        problem = f"must not start with the package name {slug!r}, which Debian shows beside it"
    elif re.search(rf"(?:^|\s){re.escape(slug)}(?:[\s,.:;!?]|$)", description, re.IGNORECASE):
        problem = f"must not name the package {slug!r}, which RPM shows beside it (rpmlint)"
    else:
        return []
    return [
        f"description {description!r} gives the Debian synopsis {line!r} (without a leading article "
        f"or full stop), which {problem}; say what the service does, e.g. 'exports billing figures'"
    ]


def _pattern(name: str, value: str, pattern: re.Pattern[str], allowed: str) -> list[str]:
    if pattern.fullmatch(value):
        return []
    return [f"{name} {value!r} is not allowed; {allowed}"]


def _slug(value: str) -> list[str]:
    errors = _pattern(
        "project_slug",
        value,
        SLUG,
        "use lowercase ASCII letters, digits and inner hyphens, starting with a letter "
        "(pattern [a-z][a-z0-9-]*[a-z0-9]); it becomes the package, command and directory name, "
        "and comes from project_name unless you give project_slug",
    )
    if len(value) > SLUG_MAX:
        errors.append(f"project_slug is {len(value)} characters long; at most {SLUG_MAX} are allowed")
    return errors


def _package(value: str) -> list[str]:
    errors = _pattern(
        "package_name", value, PACKAGE, "use a Python identifier of lowercase letters, digits and _"
    )
    if keyword.iskeyword(value) or value in getattr(sys, "stdlib_module_names", ()):
        errors.append(f"package_name {value!r} is taken by Python itself; choose another name")
    return errors


def _user(value: str) -> list[str]:
    errors = _pattern(
        "service_user",
        value,
        USER,
        "adduser takes lowercase ASCII letters, digits, _ and -, starting with a letter or _",
    )
    if len(value) > USER_MAX:
        errors.append(f"service_user is {len(value)} characters long; at most {USER_MAX} are allowed")
    if value in RESERVED_USERS or value.startswith("systemd-"):
        errors.append(f"service_user {value!r} is a reserved system account; the service needs its own user")
    return errors


def _port(value: str) -> list[str]:
    if value.isascii() and value.isdigit() and PORT_MIN <= int(value) <= PORT_MAX:
        return []
    allowed = f"give a number from {PORT_MIN} to {PORT_MAX} (lower ones need privileges the service lacks)"
    return [f"port {value!r} is not allowed; {allowed}"]


def _init_system(value: str) -> list[str]:
    if value in INIT_SYSTEMS:
        return []
    return [f"init_system {value!r} is not allowed; choose one of {', '.join(INIT_SYSTEMS)}"]


CHECKS = {
    "project_name": lambda v: _text("project_name", v, 64),
    "project_slug": _slug,
    "package_name": _package,
    "description": lambda v: _text("description", v, 80),
    "maintainer_name": _maintainer_name,
    "maintainer_email": lambda v: _pattern(
        "maintainer_email", v, EMAIL, "give an address such as name@example.com"
    ),
    "version": lambda v: _pattern("version", v, VERSION, "use 1 to 4 dot-separated numbers such as 0.1.0"),
    "service_user": _user,
    "port": _port,
    "init_system": _init_system,
}


def validate(answers: dict[str, object]) -> list[str]:
    """Return one message per wrong answer: what is wrong and what is allowed.

    Checks the answers present; a replay asks, and so passes here, only new questions.
    """
    errors: list[str] = []
    for key, check in CHECKS.items():
        if key in answers:
            errors += check(str(answers[key]))
    described = {"description", "project_slug"} <= answers.keys()
    if described and not any(error.startswith(("description", "project_slug")) for error in errors):
        errors += _synopsis(str(answers["description"]), str(answers["project_slug"]))
    return errors


def main() -> int:
    answers = json.loads(r"""{{ cookiecutter | tojson }}""")
    errors = validate(answers)
    for error in errors:
        print(f"ERROR: {error}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
