"""Answers as the user typed them (RELIABILITY.md H3, H8, H9): legitimate text arrives
byte-exact where a user reads it and runs nowhere; a bad answer, in any mode, is one
ERROR line, exit 1 and nothing on disk; a long name's slug keeps its first words."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
import upstart
from support import TEMPLATE, cookiecutter_cli, render, require_tool, run

CANARY = "h8-canary"
# Every character that the hooks refused before and each format escapes now.
ANSWERS = {
    "project_name": f'Bob\'s "fast" $(touch {CANARY}) `touch {CANARY}` <cache> 100% \\',
    "description": f'Keeps 100% uptime for $HOME, `touch {CANARY}` <b> "q" C:\\data ~^-.\'x',
    "maintainer_name": f'Zoë "Q" O\'Neil <ops> $(touch {CANARY}) 100%',
    "maintainer_email": "zoë@exämple.de",
    "version": "2.0+really1.9~rc1",
    "project_slug": "my-service",
}


def no_canary(*roots: Path) -> None:
    found = [path for root in roots for path in root.rglob(f"{CANARY}*")]
    assert found == [], "an answer ran as a command"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tool("make")
    out = tmp_path_factory.mktemp("h8")
    project = render(out, **ANSWERS)
    result = run(["make", "-C", str(project), "build", "prefix=/usr"], cwd=out)
    assert result.returncode == 0, result.stderr
    no_canary(out)
    return project


def test_h8_help_shows_the_description_as_typed(project: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(project / "src"), "COLUMNS": "200"}
    result = run([sys.executable, "-m", "my_service", "--help"], env=env, cwd=project)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[2] == ANSWERS["description"]
    no_canary(project)


def test_h8_man_page_shows_the_answers_as_typed(project: Path) -> None:
    require_tool("man", "groff")
    env = {**os.environ, "LC_ALL": "C.UTF-8", "MANWIDTH": "300", "MAN_KEEP_FORMATTING": ""}
    result = run(
        ["man", "--no-hyphenation", "--no-justification", "-l", str(project / "build/man/my-service.8")],
        env=env,
    )
    assert result.returncode == 0, result.stderr
    lines = [line.strip() for line in result.stdout.splitlines()]
    assert f"my-service - {ANSWERS['description']}" in lines
    assert f"{ANSWERS['maintainer_name']} <{ANSWERS['maintainer_email']}>" in lines


def test_h8_shell_python_toml_and_upstart_hold_the_answers_as_typed(project: Path) -> None:
    init = (project / "build/init/sysv/my-service").read_text(encoding="utf-8")
    (desc,) = re.findall(r"^DESC=.*$", init, re.MULTILINE)
    result = run(["sh", "-c", f'{desc}\nprintf %s "$DESC"'], cwd=project)
    assert result.stdout == ANSWERS["project_name"]
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["description"] == ANSWERS["description"]
    package = run([sys.executable, "-c", "import my_service; print(my_service.__doc__)"], cwd=project / "src")
    assert package.stdout.splitlines()[:3] == [
        f"{ANSWERS['project_name']}.",
        "",
        f"{ANSWERS['description']}.",
    ]
    errors, _, stanzas = upstart.check((project / "build/init/upstart/my-service.conf").read_text())
    assert errors == []
    assert [json.loads(value) for value in stanzas["description"]] == [ANSWERS["project_name"]]
    no_canary(project)


# H9: a bad answer in every mode.
def assert_one_error(
    result: subprocess.CompletedProcess[str] | tuple[int, str], out: Path, field: str
) -> None:
    code, text = (
        (result.returncode, result.stdout + result.stderr) if not isinstance(result, tuple) else result
    )
    assert code == 1, text
    errors = [line for line in text.splitlines() if line.startswith("ERROR: ")]
    assert len(errors) == 1 and re.match(rf"ERROR: {field}\b.*; ", errors[0]), text
    assert "Traceback" not in text and "Exception" not in text, text
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("choice", ["SYSTEMD", "Systemd", "openrc", ""])
def test_h9_bad_init_system_with_no_input_is_one_error(tmp_path: Path, choice: str) -> None:
    out = tmp_path / "out"
    result = cookiecutter_cli(
        "--no-input", "-o", str(out), str(TEMPLATE), f"init_system={choice}", cwd=tmp_path
    )
    assert_one_error(result, out, "init_system")
    assert "choose one of all, sysv, upstart, systemd, daemontools, supervisord" in result.stderr


@pytest.mark.parametrize(
    ("field", "value"), [("port", "1"), ("init_system", "openrc"), ("service_user", "kvm")]
)
def test_h9_bad_answer_in_a_replay_is_one_error_and_no_directory(
    tmp_path: Path, field: str, value: str
) -> None:
    answers = json.loads((TEMPLATE / "cookiecutter.json").read_text())
    record = {key: value for key, value in answers.items() if not key.startswith("_")}
    record.update(project_slug="my-service", package_name="my_service", service_user="my-service")
    record[field] = value
    replay = tmp_path / "replay.json"
    replay.write_text(json.dumps({"cookiecutter": record}))
    out = tmp_path / "out"
    result = cookiecutter_cli("--replay-file", str(replay), "-o", str(out), str(TEMPLATE), cwd=tmp_path)
    assert_one_error(result, out, field)


PROMPTS = json.loads((TEMPLATE / "cookiecutter.json").read_text())["__prompts__"]


def interact(tmp_path: Path, answers: dict[str, list[str]]) -> tuple[int, str]:
    """cookiecutter's prompts through a pseudo-terminal: each question asked takes the next of
    its answers; Enter (no answer left) takes the default."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: cookiecutter on the terminal, plain text
        env = {**os.environ, "NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "300"}
        command = [sys.executable, "-m", "cookiecutter", "-o", str(tmp_path / "out"), str(TEMPLATE)]
        os.chdir(tmp_path)
        os.execve(sys.executable, command, env)
    transcript, pending = b"", b""
    try:
        while True:
            ready, _, _ = select.select([fd], [], [], 30)
            assert ready, f"cookiecutter waits without a prompt: {transcript.decode(errors='replace')}"
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            transcript, pending = transcript + chunk, pending + chunk
            prompt = re.search(rb"\[\d+/\d+\] (.*): $", pending)
            if prompt:
                question = prompt.group(1).decode()
                key = next(key for key, text in PROMPTS.items() if question.startswith(text))
                typed = answers[key].pop(0) if answers.get(key) else ""
                os.write(fd, typed.encode() + b"\r")
                pending = b""
    except BaseException:  # the test failed while cookiecutter still asks: end it
        os.kill(pid, signal.SIGKILL)
        raise
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), transcript.decode(errors="replace").replace("\r", "")


def recorded(project: Path) -> dict[str, str]:
    return json.loads((project / ".cookiecutter.json").read_text())["cookiecutter"]


def test_h9_interactive_bad_answer_is_refused_and_asked_again(tmp_path: Path) -> None:
    code, text = interact(tmp_path, {"port": ["80", "8443"], "service_user": ["kvm", ""]})
    assert code == 0, text
    errors = [line for line in text.splitlines() if line.startswith("ERROR: ")]
    assert [error.split()[1] for error in errors] == ["service_user", "port"], text
    assert errors[1].startswith("ERROR: port '80' is not allowed; give a number from 1024 to 65535")
    assert text.count("TCP port of the health endpoint") == 2
    assert "Traceback" not in text
    answers = recorded(tmp_path / "out/my-service")
    assert (answers["port"], answers["service_user"]) == ("8443", "my-service")


def test_h9_interactive_synopsis_is_checked_beside_the_slug(tmp_path: Path) -> None:
    code, text = interact(tmp_path, {"description": ["My-service for billing", "Exports billing figures"]})
    assert code == 0, text
    assert "ERROR: description 'My-service for billing' gives the Debian synopsis" in text
    assert recorded(tmp_path / "out/my-service")["description"] == "Exports billing figures"


def test_h9_a_refused_derived_default_is_flagged_before_it_is_offered(tmp_path: Path) -> None:
    code, text = interact(tmp_path, {"project_name": ["7 Service"], "project_slug": ["", "seven-service"]})
    assert code == 0, text
    note = text.index(
        "NOTE: the default '7-service' would be refused: project_slug '7-service' is not allowed"
    )
    assert note < text.index("Package, command and init script name")
    assert recorded(tmp_path / "out/seven-service")["package_name"] == "seven_service"


def test_h9_interactive_good_answers_make_the_project(tmp_path: Path) -> None:
    code, text = interact(tmp_path, {"project_name": ["Billing Exporter"], "init_system": ["systemd"]})
    assert code == 0, text
    answers = recorded(tmp_path / "out/billing-exporter")
    assert (answers["project_slug"], answers["init_system"]) == ("billing-exporter", "systemd")


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Abcdefghij Klmnopqrst Uvwxyzabcd Efgh", "abcdefghij-klmnopqrst"),
        ("Billing Exporter For The Eu Region", "billing-exporter-for-the-eu"),
        ("Abcdefghijklmnopqrstuvwxyzabcdefgh Ij", "abcdefghijklmnopqrstuvwxyzabcde"),
    ],
)
def test_h3_long_names_are_cut_at_the_end_of_the_slug(tmp_path: Path, name: str, slug: str) -> None:
    project = render(tmp_path, project_name=name)
    assert project.name == slug
