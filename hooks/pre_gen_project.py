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
import unicodedata

SLUG = re.compile(r"[a-z][a-z0-9-]*[a-z0-9]")
SLUG_MAX = 31  # it is also the service user's name by default
PACKAGE = re.compile(r"[a-z_][a-z0-9_]*")
USER = re.compile(r"[a-z_][a-z0-9_-]*")
# systemd warns about longer User= names (its strict rule, utmp's 32 bytes with the NUL).
USER_MAX = 31
# A Debian native version that RPM takes too: ~ sorts before (1.0~rc1 < 1.0), + after.
VERSION = re.compile(r"[0-9][A-Za-z0-9]*([.+~][A-Za-z0-9]+)*")
VERSION_RULE = (
    "start with a digit, then letters and digits separated by . + or ~, such as 0.1.0, 1.0~rc1 "
    "or 2.0+really1.9"
)
# International addresses (RFC 6531): any letters in the local part and the domain, whose
# labels IDNA must be able to encode (the RPM spec's URL uses the encoded domain).
EMAIL = re.compile(r"[\w.+'-]+@([^\W_]([\w-]*[^\W_])?\.)+([^\W\d_]{2,}|xn--[a-z0-9-]+)")
PORT_MIN, PORT_MAX = 1024, 65535
INIT_SYSTEMS = ("all", "sysv", "upstart", "systemd", "daemontools", "supervisord")
# Names the service user must not take: the group of that name would be its primary group,
# and with it device or admin access. From base-passwd 3.6 (/usr/share/base-passwd/passwd.master
# and group.master), systemd's sysusers.d and udev rules (basic.conf, 50-udev-default.rules),
# adduser's defaults and the Debian packages that create privileged groups.
RESERVED_USERS = frozenset(
    """
    root daemon bin sys sync games man lp mail news uucp proxy www-data backup list irc gnats _apt
    nobody adm tty disk kmem dialout fax voice cdrom floppy tape sudo audio dip operator src shadow
    utmp video sasl plugdev staff users nogroup
    input kvm render sgx netdev systemd-journal systemd-network systemd-resolve systemd-timesync
    systemd-coredump systemd-oom messagebus polkitd tss uuidd
    wheel admin lpadmin scanner bluetooth i2c gpio spi crontab ssl-cert ssh _ssh sshd mlocate
    docker libvirt libvirt-qemu lxd incus incus-admin wireshark sambashare pulse pulse-access
    rtkit avahi colord geoclue gdm lightdm sddm postfix postdrop ntp ntpsec chrony _chrony syslog
    """.split()  # noqa: SIM905 - a table of words reads better than 90 quoted strings
)
# Free text is escaped for each format it lands in (local_extensions.py); refused are only the
# characters that none can carry: control, format (bidi, zero-width, U+FEFF) and line or
# paragraph separators, which end a line for python-debian and str.splitlines, and { }, which
# cookiecutter renders as Jinja.
TEXT_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Co", "Cs", "Cn"})
TEXT_RULE = (
    "one line of printable text; not allowed: control, bidi, zero-width and line-separator "
    "characters, and { }"
)


def _forbidden(value: str) -> str | None:
    return next((c for c in value if c in "{}" or unicodedata.category(c) in TEXT_FORBIDDEN_CATEGORIES), None)


def _text(name: str, value: str, max_len: int) -> list[str]:
    if not value.strip():
        return [f"{name} is empty; give {TEXT_RULE}"]
    if len(value) > max_len:
        return [f"{name} is {len(value)} characters long; at most {max_len} are allowed"]
    bad = _forbidden(value)
    if bad:
        return [f"{name} contains {bad!r} (U+{ord(bad):04X}); it must be {TEXT_RULE}"]
    if value != value.strip():
        return [f"{name} {value!r} starts or ends with spaces; trim them"]
    return []


def _description(value: str) -> list[str]:
    errors = _text("description", value, 80)
    if not errors and value.endswith("\\"):
        errors.append(
            f"description {value!r} ends with a backslash, which joins the next line of a systemd unit; "
            "end it with another character"
        )
    return errors


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


def _email(value: str) -> list[str]:
    errors = _pattern(
        "maintainer_email", value, EMAIL, "give an address such as name@example.com or josé@exämple.de"
    )
    if not errors:
        try:
            value.split("@")[1].encode("idna")
        except UnicodeError as error:
            errors.append(
                f"maintainer_email {value!r} has a domain that IDNA cannot encode ({error}); give another"
            )
    return errors


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
        errors.append(
            f"service_user {value!r} is a reserved system account or group (of base-passwd, systemd or "
            "a common package; as the primary group it can grant device or admin access); "
            "the service needs its own user"
        )
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
    "description": _description,
    "maintainer_name": _maintainer_name,
    "maintainer_email": _email,
    "version": lambda v: _pattern("version", v, VERSION, VERSION_RULE),
    "service_user": _user,
    "port": _port,
    "init_system": _init_system,
}


def validate(answers: dict[str, object]) -> list[str]:
    """Return one message per wrong answer: what is wrong and what is allowed.

    Checks the answers present; a replay asks, and so passes here, only new questions.
    """
    errors: list[str] = []
    # A refused slug is reported once, not again through the defaults derived from it.
    slug = str(answers.get("project_slug", ""))
    derived = {"package_name": slug.replace("-", "_"), "service_user": slug} if _slug(slug) else {}
    for key, check in CHECKS.items():
        if key in answers and derived.get(key) != str(answers[key]):
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
