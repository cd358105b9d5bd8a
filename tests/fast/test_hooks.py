"""The pre-gen hook's validation, one answer at a time, as a unit."""

from __future__ import annotations

from pathlib import Path

import pre_gen_project as hook
import pytest

GOOD = {
    "project_name": "Billing Exporter",
    "project_slug": "billing-exporter",
    "package_name": "billing_exporter",
    "description": "Exports billing figures; see the wiki (it's #1)",
    "maintainer_name": "Jane O'Neil",
    "maintainer_email": "jane.o-neil+ops@example.co.uk",
    "version": "1.2.3",
    "service_user": "_billing",
    "port": "8443",
    "init_system": "systemd",
}


def test_good_answers_pass() -> None:
    assert hook.validate(GOOD) == []


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("project_slug", "Billing", "lowercase ASCII letters"),
        ("project_slug", "x", "lowercase ASCII letters"),
        ("project_slug", "billing-", "lowercase ASCII letters"),
        ("project_slug", "a" * 32, "at most 31"),
        ("package_name", "billing-exporter", "Python identifier"),
        ("package_name", "json", "taken by Python itself"),
        ("package_name", "class", "taken by Python itself"),
        ("service_user", "Billing", "adduser takes"),
        ("service_user", "9lives", "adduser takes"),
        ("service_user", "u" * 32, "at most 31"),
        ("service_user", "www-data", "reserved system account"),
        ("service_user", "systemd-billing", "reserved system account"),
        ("version", "1.0-1", "separated by . + or ~"),
        ("version", "v1", "separated by . + or ~"),
        ("version", "1..2", "separated by . + or ~"),
        ("version", "1.0~", "separated by . + or ~"),
        ("port", "1023", "from 1024 to 65535"),
        ("port", "65536", "from 1024 to 65535"),
        ("port", "80a", "from 1024 to 65535"),
        ("port", "٨٠٨٠", "from 1024 to 65535"),
        ("maintainer_email", "jane", "name@example.com"),
        ("maintainer_email", "jane@localhost", "name@example.com"),
        ("maintainer_email", "a b@example.com", "name@example.com"),
        ("description", "", "is empty"),
        ("description", " padded", "trim them"),
        ("description", "d" * 81, "at most 80"),
        ("description", "Exporter", "at least two words"),
        ("description", "The exporter.", "at least two words"),
        ("description", "...", "at least two words"),
        ("description", "A the exporter", "must not start with an article"),
        ("description", "Billing-exporter for Prometheus", "package name 'billing-exporter'"),
        ("description", "Billing exporter", "package name 'billing-exporter'"),
        ("project_name", "n" * 65, "at most 64"),
        ("maintainer_name", "root", "lintian keeps"),
        ("maintainer_name", "Debian QA Group", "lintian keeps"),
        ("description", "Feeds billing-exporter data to the bank", "must not name the package"),
        ("description", "Exports billing figures \\", "ends with a backslash"),
        ("maintainer_email", "jane@exämple.de​", "name@example.com"),
        ("init_system", "openrc", "choose one of all, sysv, upstart, systemd, daemontools, supervisord"),
    ],
)
def test_bad_answer_names_the_field_and_what_is_allowed(key: str, value: str, message: str) -> None:
    errors = hook.validate({**GOOD, key: value})
    assert len(errors) == 1
    assert errors[0].startswith(key)
    assert message in errors[0]


@pytest.mark.parametrize("key", ["project_name", "description", "maintainer_name"])
@pytest.mark.parametrize(
    "char",
    [
        "{", "}", "\n", "\r", "\t", "\x1b", "\x85",  # Jinja, C0 and C1 controls
        "\u202e", "\u2066", "\u200f", "\u061c",  # bidi
        "\u2028", "\u2029",  # line and paragraph separators
        "\u200b", "\u200d", "\u2060", "\ufeff", "\u00ad",  # zero-width, BOM, soft hyphen
    ],
)  # fmt: skip
def test_h8_free_text_refuses_what_no_format_can_carry(key: str, char: str) -> None:
    errors = hook.validate({**GOOD, key: f"a{char}b"})
    assert len(errors) == 1
    assert errors[0].startswith(f"{key} contains")
    assert f"U+{ord(char):04X}" in errors[0]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("description", "Keeps 100% uptime for $HOME and `date` <now>"),
        ("description", 'Serves The "fast" cache from C:\\data'),
        ("project_name", 'Bob\'s "fast" cache'),
        ("maintainer_name", 'Jane <Ops> "Q" O\'Neil, 100%'),
        ("maintainer_name", "Zoë Łukasiewicz-Ñúñez"),
        ("version", "1.0~rc1"),
        ("version", "2.0+really1.9"),
        ("maintainer_email", "josé@exämple.de"),
        ("maintainer_email", "用户@例子.广告"),
    ],
)
def test_h8_legitimate_text_is_accepted(key: str, value: str) -> None:
    assert hook.validate({**GOOD, key: value}) == []


def test_h7_base_passwd_names_are_refused_as_the_service_user() -> None:
    """Every user and group that base-passwd (Essential: on every Debian host) allocates."""
    master = Path("/usr/share/base-passwd")
    names = {line.split(":")[0] for name in ("passwd.master", "group.master")
             for line in (master / name).read_text().splitlines()}  # fmt: skip
    assert {"root", "kvm"} - names == {"kvm"}  # the files are real: kvm comes from systemd
    for name in sorted(names):
        assert any("reserved system account" in e for e in hook.validate({"service_user": name})), name


@pytest.mark.parametrize(
    "name", ["video", "kvm", "docker", "disk", "adm", "sudo", "shadow", "staff", "input", "render", "lxd"]
)
def test_h7_privileged_groups_are_refused_as_the_service_user(name: str) -> None:
    errors = hook.validate({**GOOD, "service_user": name})
    assert len(errors) == 1
    assert "reserved system account or group" in errors[0]
    assert "device or admin access" in errors[0]


def test_every_wrong_answer_is_reported_at_once() -> None:
    errors = hook.validate({**GOOD, "port": "1", "version": "x", "service_user": "root"})
    assert [e.split()[0] for e in errors] == ["version", "service_user", "port"]


def test_answers_missing_from_a_replay_are_not_checked_here() -> None:
    assert hook.validate({"port": "8080"}) == []
