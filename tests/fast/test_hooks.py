"""The pre-gen hook's validation, one answer at a time, as a unit."""

from __future__ import annotations

import pytest
from support import pre_gen_hook

hook = pre_gen_hook()
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
        ("version", "1.0-1", "dot-separated numbers"),
        ("version", "v1", "dot-separated numbers"),
        ("version", "1.2.3.4.5", "dot-separated numbers"),
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
        ("maintainer_name", "Jane <jane@example.com>", "'<'"),
        ("maintainer_name", "root", "lintian keeps"),
        ("maintainer_name", "Debian QA Group", "lintian keeps"),
        ("description", "Feeds billing-exporter data to the bank", "must not name the package"),
        ("init_system", "openrc", "choose one of all, sysv, upstart, systemd, daemontools"),
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
    ["$", "`", "\\", '"', "%", "{", "}", "<", ">", "\n", "\r", "\t", "\x1b", "\u202e", "\u2066", "\u200f"],
)
def test_free_text_refuses_characters_that_are_live_somewhere(key: str, char: str) -> None:
    errors = hook.validate({**GOOD, key: f"a{char}b"})
    assert len(errors) == 1
    assert errors[0].startswith(f"{key} contains")


def test_every_wrong_answer_is_reported_at_once() -> None:
    errors = hook.validate({**GOOD, "port": "1", "version": "x", "service_user": "root"})
    assert [e.split()[0] for e in errors] == ["version", "service_user", "port"]


def test_answers_missing_from_a_replay_are_not_checked_here() -> None:
    assert hook.validate({"port": "8080"}) == []
